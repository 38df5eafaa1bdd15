# dev: the distributed mode at its smallest (seed 004's "maximum savings" kept on EKS): two
# zones, one NAT instance, Spot nodes, one self-hosted Kafka broker, single-AZ databases.
# Monthly estimate: cargo run -p cost-estimate -- dev
environment        = "dev"
region             = "us-east-1"
replica_region     = "us-west-2"
owner              = "platform"
monthly_budget_usd = 400
alert_emails       = ["platform-alerts@quanttrader.example"]

# RDS and ElastiCache subnet groups need two zones.
az_count            = 2
nat_mode            = "instance"
interface_endpoints = []

compute            = "eks"
kubernetes_version = "1.33"
use_spot_instances = true
general_node = {
  instance_types = ["t3.large", "t3a.large", "m7i.large"]
  min_size       = 1
  max_size       = 3
  desired_size   = 2
}
trading_node = {
  instance_types = ["c7i.large"]
  min_size       = 1
  max_size       = 1
  desired_size   = 1
}
enable_ml_nodes = false

enable_rds               = true
rds_instance_class       = "db.t4g.micro"
rds_multi_az             = false
rds_read_replicas        = 0
rds_allocated_storage_gb = 20

enable_redis             = true
redis_node_type          = "cache.t4g.micro"
redis_num_cache_clusters = 1

enable_msk               = false
enable_self_hosted_kafka = true
kafka_broker_count       = 1
kafka_ec2_instance_type  = "t4g.small"
kafka_volume_size_gb     = 20

enable_documentdb = false

enable_alb      = true
api_domain_name = "api.dev.quanttrader.example"

enable_s3_replication = false
enable_backup         = false
deletion_protection   = false
log_retention_days    = 30
