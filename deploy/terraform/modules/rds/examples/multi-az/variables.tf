variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets in at least two zones."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Key of the storage, backups and Performance Insights."
  type        = string
}
