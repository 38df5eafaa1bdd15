output "bucket_names" {
  description = "Buckets by purpose."
  value       = module.s3.bucket_names
}
