# prod: everything managed and highly available across three zones (seed 004's scenario 3,
# sized for seed 001's load). Monthly estimate: cargo run -p cost-estimate -- prod
environment        = "prod"
region             = "us-east-1"
replica_region     = "us-west-2"
owner              = "platform"
monthly_budget_usd = 5000
alert_emails       = ["platform-alerts@quanttrader.example"]

az_count = 3
nat_mode = "gateway_per_az"
# Image pulls, logs and secrets stay off the NAT gateways (and their per-GB charge).
interface_endpoints = ["ecr.api", "ecr.dkr", "sts", "logs", "secretsmanager"]

compute            = "eks"
kubernetes_version = "1.33"
use_spot_instances = false
general_node = {
  instance_types = ["m7i.large"]
  min_size       = 3
  max_size       = 9
  desired_size   = 3
}
trading_node = {
  instance_types = ["c7i.xlarge"]
  min_size       = 2
  max_size       = 4
  desired_size   = 2
}
enable_ml_nodes = true
ml_node = {
  instance_types = ["r7i.large"]
  min_size       = 0
  max_size       = 3
  desired_size   = 1
}

enable_rds               = true
rds_instance_class       = "db.r7g.large"
rds_multi_az             = true
rds_read_replicas        = 1
rds_allocated_storage_gb = 200

enable_redis             = true
redis_node_type          = "cache.r7g.large"
redis_num_cache_clusters = 3

enable_msk               = true
enable_self_hosted_kafka = false
kafka_broker_count       = 3
msk_instance_type        = "kafka.m7g.large"
kafka_volume_size_gb     = 500

enable_documentdb = false

enable_alb      = true
api_domain_name = "api.quanttrader.example"

enable_s3_replication  = true
enable_backup          = true
backup_vault_lock_days = 35
deletion_protection    = true
log_retention_days     = 365
