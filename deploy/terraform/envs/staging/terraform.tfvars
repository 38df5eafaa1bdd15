# staging: production's shape at a smaller size (seed 004's scenario 2): EKS on Spot except
# the trading nodes, Kafka self-hosted on EC2, one NAT gateway. Monthly estimate:
# cargo run -p cost-estimate -- staging
environment        = "staging"
region             = "us-east-1"
replica_region     = "us-west-2"
owner              = "platform"
monthly_budget_usd = 850
alert_emails       = ["platform-alerts@quanttrader.example"]

az_count            = 3
nat_mode            = "single_gateway"
interface_endpoints = []

compute            = "eks"
kubernetes_version = "1.33"
use_spot_instances = true
general_node = {
  instance_types = ["m7i.large", "m6i.large", "m7a.large"]
  min_size       = 2
  max_size       = 4
  desired_size   = 2
}
trading_node = {
  instance_types = ["c7i.large"]
  min_size       = 1
  max_size       = 2
  desired_size   = 1
}
enable_ml_nodes = false

enable_rds               = true
rds_instance_class       = "db.t4g.medium"
rds_multi_az             = true
rds_read_replicas        = 0
rds_allocated_storage_gb = 50

enable_redis             = true
redis_node_type          = "cache.t4g.small"
redis_num_cache_clusters = 2

enable_msk               = false
enable_self_hosted_kafka = true
kafka_broker_count       = 3
kafka_ec2_instance_type  = "t4g.medium"
kafka_volume_size_gb     = 50

enable_documentdb = false

enable_alb      = true
api_domain_name = "api.staging.quanttrader.example"

enable_s3_replication = false
enable_backup         = true
deletion_protection   = true
log_retention_days    = 90
