variable "create" {
  description = "Whether to create the Redis replication group."
  type        = bool
  default     = true
}

variable "name" {
  description = "Replication group id and name prefix."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the cache nodes (database subnets)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups of the clients allowed to connect, by a name known at plan time (e.g. { eks = module.eks.cluster_security_group_id }): the ids themselves are unknown until the groups exist."
  type        = map(string)
  default     = {}
}

variable "engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^7\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be a Redis 7 version such as 7.1."
  }
}

variable "node_type" {
  description = "Cache node type, e.g. cache.t4g.micro (dev) or cache.r7g.large (prod)."
  type        = string
  default     = "cache.t4g.small"

  validation {
    condition     = startswith(var.node_type, "cache.")
    error_message = "node_type must be an ElastiCache node type such as cache.t4g.small."
  }
}

variable "num_cache_clusters" {
  description = "Nodes in the group: 1 primary plus replicas. 2 or more enables Multi-AZ with automatic failover."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters must be between 1 and 6."
  }
}

variable "kms_key_arn" {
  description = "KMS key for data at rest, snapshots and the auth token secret."
  type        = string
}

variable "auth_token_secret_name" {
  description = "Name of the Secrets Manager secret holding the AUTH token (null: <name>/redis-auth-token). Put it where the application's secret reader may look, e.g. quanttrader/<env>/redis-auth-token."
  type        = string
  default     = null
}

variable "auth_token_kms_key_arn" {
  description = "Key encrypting the AUTH token secret (null: kms_key_arn). The application's secret reader must be allowed to decrypt with it."
  type        = string
  default     = null
}

variable "snapshot_retention_days" {
  description = "Daily snapshots kept (0 disables them)."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Retention of the slow log and engine log."
  type        = number
  default     = 365
}

variable "logs_kms_key_arn" {
  description = "KMS key of the log groups (null: CloudWatch's own key)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
