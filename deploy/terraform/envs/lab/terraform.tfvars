# lab: seed 002's "under $30 a month", honestly. EKS alone is $73 a month (control plane
# $0.10/h), so the lab runs no Kubernetes: `quanttrader run` (all-in-one: SQLite journal,
# in-process bus) on one t4g.small in a public subnet of a one-zone VPC, no NAT, no managed
# databases, no load balancer. What it keeps: encryption (KMS), secrets, S3, logs,
# alarms and the budget. Monthly estimate: cargo run -p cost-estimate -- lab
# The smallest EKS lab (control plane, one t3.medium Spot node, one on-demand trading
# node, a NAT instance, two zones) is estimated at about $140 a month: docs/cost.md.
environment        = "lab"
region             = "us-east-1"
replica_region     = "us-west-2"
owner              = "platform"
monthly_budget_usd = 30
alert_emails       = ["platform-alerts@quanttrader.example"]

az_count            = 1
nat_mode            = "none"
interface_endpoints = []

compute                   = "single_host"
single_host_instance_type = "t4g.small"
single_host_use_spot      = false
# Nobody reaches port 8080 until an operator adds their own /32 here (or uses SSM port
# forwarding, which needs no inbound rule at all).
single_host_ingress_cidrs = []
image_tag                 = "latest"

enable_rds               = false
enable_redis             = false
enable_msk               = false
enable_self_hosted_kafka = false
enable_documentdb        = false
enable_alb               = false

enable_s3_replication = false
enable_backup         = false
deletion_protection   = false
log_retention_days    = 14
