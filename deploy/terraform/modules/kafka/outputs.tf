output "mode" {
  description = "msk, self_hosted or none."
  value       = var.mode
}

output "bootstrap_brokers" {
  description = "Bootstrap servers for QT_KAFKA__BROKERS: MSK's SASL/SCRAM TLS endpoints (9096), the self-hosted brokers' private addresses (plaintext 9092), or null."
  value = local.msk ? aws_msk_cluster.this[0].bootstrap_brokers_sasl_scram : (
    local.self_hosted ? join(",", [for b in aws_instance.broker : "${b.private_ip}:9092"]) : null
  )
}

output "cluster_arn" {
  description = "ARN of the MSK cluster (null otherwise), for the clients' IAM policy."
  value       = try(aws_msk_cluster.this[0].arn, null)
}

output "cluster_name" {
  description = "Name of the MSK cluster (null otherwise), for CloudWatch alarms."
  value       = try(aws_msk_cluster.this[0].cluster_name, null)
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = try(aws_security_group.this[0].id, null)
}

output "broker_instance_ids" {
  description = "EC2 instances of the self-hosted brokers."
  value       = aws_instance.broker[*].id
}

output "security_protocol" {
  description = "librdkafka security.protocol of the clients (QT_KAFKA__SECURITY_PROTOCOL): SASL_SSL for MSK, PLAINTEXT for the self-hosted brokers, null without Kafka."
  value       = local.msk ? "SASL_SSL" : (local.self_hosted ? "PLAINTEXT" : null)
}

output "scram_secret_arn" {
  description = "ARN of the AmazonMSK_ secret ({username, password}) of the SCRAM credential; null unless mode is msk."
  value       = try(aws_secretsmanager_secret.scram[0].arn, null)
}
