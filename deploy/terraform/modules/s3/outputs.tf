output "bucket_names" {
  description = "Bucket names by purpose."
  value       = { for k, v in aws_s3_bucket.this : k => v.bucket }
}

output "bucket_arns" {
  description = "Bucket ARNs by purpose."
  value       = { for k, v in aws_s3_bucket.this : k => v.arn }
}

output "replica_bucket_arns" {
  description = "Replica bucket ARNs (replica region) by purpose."
  value       = { for k, v in aws_s3_bucket.replica : k => v.arn }
}

output "access_logs_bucket" {
  description = "Name of the bucket holding S3 and ALB access logs."
  value       = try(aws_s3_bucket.logs[0].bucket, null)
}
