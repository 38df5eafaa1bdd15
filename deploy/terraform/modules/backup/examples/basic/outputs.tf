output "vault_arn" {
  description = "Primary backup vault."
  value       = module.backup.vault_arn
}
