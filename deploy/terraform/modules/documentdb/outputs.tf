output "endpoint" {
  description = "Cluster (writer) endpoint; null when create = false."
  value       = try(aws_docdb_cluster.this[0].endpoint, null)
}

output "reader_endpoint" {
  description = "Reader endpoint."
  value       = try(aws_docdb_cluster.this[0].reader_endpoint, null)
}

output "arn" {
  description = "ARN of the cluster (for AWS Backup)."
  value       = try(aws_docdb_cluster.this[0].arn, null)
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret DocumentDB manages for the master user."
  value       = try(aws_docdb_cluster.this[0].master_user_secret[0].secret_arn, null)
}
