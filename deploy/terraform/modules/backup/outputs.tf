output "vault_arn" {
  description = "Primary backup vault."
  value       = try(aws_backup_vault.this[0].arn, null)
}

output "replica_vault_arn" {
  description = "Vault in the replica region holding the daily copies."
  value       = try(aws_backup_vault.replica[0].arn, null)
}

output "plan_id" {
  description = "Backup plan id."
  value       = try(aws_backup_plan.this[0].id, null)
}
