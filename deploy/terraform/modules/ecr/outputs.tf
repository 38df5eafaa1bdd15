output "repository_urls" {
  description = "Repository URLs by name (the image: repository of the Helm values)."
  value       = { for k, v in aws_ecr_repository.this : k => v.repository_url }
}

output "repository_arns" {
  description = "Repository ARNs by name (for the CI push role)."
  value       = { for k, v in aws_ecr_repository.this : k => v.arn }
}
