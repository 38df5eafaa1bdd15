output "instance_id" {
  description = "Instance id (for `aws ssm start-session --target`)."
  value       = try(aws_instance.this[0].id, null)
}

output "public_ip" {
  description = "Public address of the host; the API is at http://<ip>:8080 for ingress_cidrs."
  value       = try(aws_instance.this[0].public_ip, null)
}

output "security_group_id" {
  description = "Security group of the host."
  value       = try(aws_security_group.this[0].id, null)
}
