output "key_arns" {
  description = "Key ARNs by domain."
  value       = module.kms.key_arns
}
