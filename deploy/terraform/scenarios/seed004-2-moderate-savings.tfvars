# Seed 004's scenario 2 ("moderate savings", ~$211/month there): EKS kept with Spot nodes,
# Kafka self-hosted on EC2, PostgreSQL instead of DocumentDB, one NAT gateway.
environment        = "dev"
monthly_budget_usd = 375
alert_emails       = ["platform-alerts@quanttrader.example"]

az_count            = 2
nat_mode            = "single_gateway"
interface_endpoints = []

compute            = "eks"
use_spot_instances = true
general_node = {
  instance_types = ["t3.medium"]
  min_size       = 1
  max_size       = 2
  desired_size   = 1
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
kafka_ec2_instance_type  = "t4g.medium"
kafka_volume_size_gb     = 30
enable_documentdb        = false

enable_alb      = true
api_domain_name = "api.dev.quanttrader.example"

enable_s3_replication = false
enable_backup         = false
deletion_protection   = false
log_retention_days    = 30
