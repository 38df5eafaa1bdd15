# Seed 004's scenario 1 ("maximum savings", ~$90/month there with ECS Fargate and
# self-hosted Kafka and MongoDB). Here no orchestrator at all: `quanttrader run` (the
# all-in-one engine: SQLite journal, in-process bus) needs neither Kafka nor a database
# server, so one instance without NAT replaces ECS, Kafka, MongoDB and the NAT instance.
# What it gives up: Kubernetes, horizontal scaling, high availability.
environment        = "dev"
monthly_budget_usd = 60
alert_emails       = ["platform-alerts@quanttrader.example"]

az_count            = 1
nat_mode            = "none"
interface_endpoints = []

compute                   = "single_host"
single_host_instance_type = "t4g.medium"
single_host_use_spot      = true

enable_rds               = false
enable_redis             = false
enable_msk               = false
enable_self_hosted_kafka = false
enable_documentdb        = false
enable_alb               = false

enable_s3_replication = false
enable_backup         = false
deletion_protection   = false
log_retention_days    = 30
