output "primary_endpoint" {
  description = "Primary endpoint (TLS, AUTH) of the group; null when create = false."
  value       = try(aws_elasticache_replication_group.this[0].primary_endpoint_address, null)
}

output "reader_endpoint" {
  description = "Reader endpoint spread over the replicas."
  value       = try(aws_elasticache_replication_group.this[0].reader_endpoint_address, null)
}

output "auth_token_secret_arn" {
  description = "Secrets Manager secret holding the AUTH token."
  value       = try(aws_secretsmanager_secret.auth[0].arn, null)
}

output "replication_group_id" {
  description = "Id of the replication group (for CloudWatch alarms)."
  value       = try(aws_elasticache_replication_group.this[0].id, null)
}

output "security_group_id" {
  description = "Security group of the cache."
  value       = try(aws_security_group.this[0].id, null)
}
