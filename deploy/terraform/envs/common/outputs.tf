# scripts/deploy reads cluster_name, ingress_host and certificate_arn (terraform output -raw).

output "environment" {
  description = "Environment name."
  value       = var.environment
}

output "account_id" {
  description = "AWS account the environment lives in."
  value       = local.account_id
}

output "region" {
  description = "Primary region."
  value       = local.region
}

output "vpc_id" {
  description = "VPC of the environment."
  value       = module.vpc.vpc_id
}

output "cluster_name" {
  description = "EKS cluster name (null when compute = single_host)."
  value       = local.eks ? module.eks.cluster_name : null
}

output "cluster_endpoint" {
  description = "EKS API endpoint."
  value       = local.eks ? module.eks.cluster_endpoint : null
}

output "pod_role_arns" {
  description = "IAM roles of the controllers and workloads bound through EKS Pod Identity, by name."
  value       = local.eks ? module.eks.pod_role_arns : {}
}

output "ingress_host" {
  description = "DNS name of the public load balancer (null without one); point the API's DNS record at it."
  value       = local.alb ? module.alb.dns_name : null
}

output "certificate_arn" {
  description = "ACM certificate of the public endpoint, for the ingress annotations."
  value       = local.alb ? data.aws_acm_certificate.api[0].arn : null
}

output "single_host_public_ip" {
  description = "Public IP of the lab host (compute = single_host): http://<ip>:8080."
  value       = local.single_host ? module.single_host.public_ip : null
}

output "ecr_repository_url" {
  description = "Repository of the quanttrader image."
  value       = module.ecr.repository_urls["quanttrader"]
}

output "database_endpoint" {
  description = "PostgreSQL writer endpoint (host:port)."
  value       = var.enable_rds ? module.rds.endpoint : null
}

output "database_secret_arn" {
  description = "Secret with the PostgreSQL master credentials, managed and rotated by RDS."
  value       = var.enable_rds ? module.rds.master_user_secret_arn : null
}

output "redis_primary_endpoint" {
  description = "Redis primary endpoint (TLS)."
  value       = var.enable_redis ? module.redis.primary_endpoint : null
}

output "kafka_mode" {
  description = "How the event log runs: msk, self_hosted or none."
  value       = local.kafka_mode
}

output "kafka_bootstrap_brokers" {
  description = "Kafka bootstrap brokers (TLS / SASL IAM for MSK)."
  value       = module.kafka.bootstrap_brokers
}

output "bucket_names" {
  description = "S3 buckets by purpose."
  value       = module.s3.bucket_names
}

output "secret_arns" {
  description = "Application secrets by name."
  value       = module.secrets.secret_arns
}

output "alarm_topic_arn" {
  description = "SNS topic of alarms and budget alerts."
  value       = module.observability.alarm_topic_arn
}

output "monthly_budget_usd" {
  description = "The budget the environment declares (AWS Budgets alerts on it; CI's cost estimate enforces it)."
  value       = var.monthly_budget_usd
}

output "endpoints_secret_arn" {
  description = "Secret quanttrader/<environment>/endpoints: JSON with the data stores' hosts, ports, Kafka security protocol and credential secret ARNs (docs/secrets.md)."
  value       = aws_secretsmanager_secret.endpoints.arn
}

output "kafka_scram_secret_arn" {
  description = "AmazonMSK_ secret of the SASL/SCRAM credential (JSON username, password); null unless enable_msk. The chart reads it as AmazonMSK_<cluster name>."
  value       = module.kafka.scram_secret_arn
}
