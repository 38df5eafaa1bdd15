# Seed 004's starting point (~$514/month in its table): every service managed, DocumentDB
# included, two zones, one NAT gateway, two small on-demand nodes.
# Price it: cargo run -p cost-estimate -- deploy/terraform/scenarios/seed004-0-baseline.tfvars
# Plan it:  terraform -chdir=deploy/terraform/envs/dev test -var-file=../../scenarios/seed004-0-baseline.tfvars
environment        = "dev"
monthly_budget_usd = 750
alert_emails       = ["platform-alerts@quanttrader.example"]

az_count            = 2
nat_mode            = "single_gateway"
interface_endpoints = ["ecr.api", "ecr.dkr"]

compute            = "eks"
use_spot_instances = false
general_node = {
  instance_types = ["t3.small"]
  min_size       = 1
  max_size       = 2
  desired_size   = 1
}
trading_node = {
  instance_types = ["t3.small"]
  min_size       = 1
  max_size       = 1
  desired_size   = 1
}
enable_ml_nodes = false

enable_rds                = false
enable_redis              = true
redis_node_type           = "cache.t4g.micro"
redis_num_cache_clusters  = 1
enable_msk                = true
enable_self_hosted_kafka  = false
kafka_broker_count        = 2
msk_instance_type         = "kafka.m5.large"
kafka_volume_size_gb      = 100
enable_documentdb         = true
documentdb_instance_class = "db.t4g.medium"
documentdb_instance_count = 1

enable_alb      = true
api_domain_name = "api.dev.quanttrader.example"

enable_s3_replication = false
enable_backup         = false
deletion_protection   = false
log_retention_days    = 30
