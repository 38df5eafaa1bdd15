variable "create" {
  description = "Whether to create the buckets."
  type        = bool
  default     = true
}

variable "name" {
  description = "Bucket name prefix; names end in -<account>-<region> to be globally unique."
  type        = string
}

variable "buckets" {
  description = "Buckets by purpose. Transitions move current objects to cheaper classes; object_lock_years makes the bucket WORM (compliance mode, seed 001's 7-year audit trail); replicate copies every object to the replica region."
  type = map(object({
    ia_after_days              = optional(number)
    glacier_after_days         = optional(number)
    expire_after_days          = optional(number)
    noncurrent_expire_days     = optional(number, 90)
    object_lock_years          = optional(number)
    object_lock_governance     = optional(bool, false)
    replicate                  = optional(bool, true)
    replica_glacier_after_days = optional(number, 30)
  }))

  validation {
    condition     = alltrue([for k in keys(var.buckets) : can(regex("^[a-z][a-z0-9-]{1,20}$", k))])
    error_message = "bucket purposes must be short lowercase names such as market-data."
  }

  validation {
    condition     = alltrue([for b in values(var.buckets) : b.object_lock_years == null || try(b.object_lock_years >= 1 && b.object_lock_years <= 10, false)])
    error_message = "object_lock_years must be between 1 and 10."
  }
}

variable "kms_key_arn" {
  description = "KMS key of the buckets in the primary region."
  type        = string
}

variable "enable_replication" {
  description = "Replicate the buckets marked replicate = true to the replica region (disaster recovery, seed 001)."
  type        = bool
  default     = true
}

variable "access_log_retention_days" {
  description = "How long the server access logs (and ALB logs) are kept."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Allow destroying non-empty buckets: only for throwaway labs."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
