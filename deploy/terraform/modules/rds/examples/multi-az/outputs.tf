output "endpoint" {
  description = "Writer endpoint."
  value       = module.rds.endpoint
}
