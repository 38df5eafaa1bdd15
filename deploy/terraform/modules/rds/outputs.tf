output "endpoint" {
  description = "host:port of the primary (null when create = false)."
  value       = try(aws_db_instance.this[0].endpoint, null)
}

output "address" {
  description = "Host name of the primary."
  value       = try(aws_db_instance.this[0].address, null)
}

output "replica_addresses" {
  description = "Host names of the read replicas."
  value       = aws_db_instance.replica[*].address
}

output "arn" {
  description = "ARN of the primary (for AWS Backup)."
  value       = try(aws_db_instance.this[0].arn, null)
}

output "identifier" {
  description = "Identifier of the primary (for CloudWatch alarms)."
  value       = try(aws_db_instance.this[0].identifier, null)
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret RDS manages for the master user."
  value       = try(aws_db_instance.this[0].master_user_secret[0].secret_arn, null)
}

output "security_group_id" {
  description = "Security group of the database."
  value       = try(aws_security_group.this[0].id, null)
}
