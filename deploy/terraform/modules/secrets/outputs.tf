output "secret_arns" {
  description = "ARNs of all secrets by name."
  value = merge(
    { for k, v in aws_secretsmanager_secret.generated : k => v.arn },
    { for k, v in aws_secretsmanager_secret.external : k => v.arn },
  )
}

output "arn_prefix" {
  description = "What External Secrets may read: every secret under <name>/."
  value       = "arn:${data.aws_partition.current.partition}:secretsmanager:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:secret:${var.name}/*"
}
