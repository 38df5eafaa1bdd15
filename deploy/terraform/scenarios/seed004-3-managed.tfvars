# Seed 004's scenario 3 ("keep managed services", ~$483/month there): MSK with two
# brokers, PostgreSQL instead of DocumentDB, Spot nodes except trading, one NAT gateway.
environment        = "dev"
monthly_budget_usd = 750
alert_emails       = ["platform-alerts@quanttrader.example"]

az_count            = 2
nat_mode            = "single_gateway"
interface_endpoints = []

compute            = "eks"
use_spot_instances = true
general_node = {
  instance_types = ["t3.medium"]
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
rds_instance_class       = "db.t4g.medium"
rds_multi_az             = false
rds_read_replicas        = 0
rds_allocated_storage_gb = 20
enable_redis             = true
redis_node_type          = "cache.t4g.micro"
redis_num_cache_clusters = 1
enable_msk               = true
enable_self_hosted_kafka = false
kafka_broker_count       = 2
msk_instance_type        = "kafka.m7g.large"
kafka_volume_size_gb     = 100
enable_documentdb        = false

enable_alb      = true
api_domain_name = "api.dev.quanttrader.example"

enable_s3_replication = false
enable_backup         = false
deletion_protection   = false
log_retention_days    = 30
