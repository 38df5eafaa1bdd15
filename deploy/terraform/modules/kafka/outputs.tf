output "mode" {
  description = "msk, self_hosted or none."
  value       = var.mode
}

output "bootstrap_brokers" {
  description = "Bootstrap servers for QT_KAFKA__BROKERS: MSK's SASL/IAM TLS endpoints, the self-hosted brokers' private addresses, or null."
  value = local.msk ? aws_msk_cluster.this[0].bootstrap_brokers_sasl_iam : (
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
