variable "create" {
  description = "Whether to create the vaults, plan and selections."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix of the vaults, plan and role."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the primary vault."
  type        = string
}

variable "resource_arns" {
  description = "Resources to protect by a name known at plan time (RDS instances, DocumentDB clusters, S3 buckets), e.g. { rds = module.rds.arn }. Resources tagged Backup = true are protected as well."
  type        = map(string)
  default     = {}
}

variable "continuous_retention_days" {
  description = "Point-in-time recovery window of continuous backups (RDS, S3): 1-35 days."
  type        = number
  default     = 35

  validation {
    condition     = var.continuous_retention_days >= 1 && var.continuous_retention_days <= 35
    error_message = "continuous_retention_days must be between 1 and 35."
  }
}

variable "daily_retention_days" {
  description = "Retention of the daily snapshots (and of their copies in the replica region)."
  type        = number
  default     = 90
}

variable "cold_storage_after_days" {
  description = "Move daily snapshots to cold storage after this many days (null: never). Cold storage keeps them at least 90 days more."
  type        = number
  default     = null
}

variable "copy_to_replica_region" {
  description = "Copy the daily snapshots to a vault in the replica region (regional disaster recovery, seed 001)."
  type        = bool
  default     = true
}

variable "vault_lock_min_retention_days" {
  description = "Vault Lock minimum retention: nobody, root included, can delete a recovery point younger than this (null: no lock)."
  type        = number
  default     = null
}

variable "enable_notifications" {
  description = "Tell notification_topic_arn about failed backup, copy and restore jobs (a separate switch because the topic ARN is unknown until apply)."
  type        = bool
  default     = false
}

variable "notification_topic_arn" {
  description = "SNS topic told about failed backup and restore jobs."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
