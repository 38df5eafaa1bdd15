output "key_arns" {
  description = "ARN of each domain's key, by domain."
  value       = { for k, v in aws_kms_key.this : k => v.arn }
}

output "key_ids" {
  description = "Key id of each domain's key, by domain."
  value       = { for k, v in aws_kms_key.this : k => v.key_id }
}

output "alias_names" {
  description = "Alias of each domain's key, by domain."
  value       = { for k, v in aws_kms_alias.this : k => v.name }
}
