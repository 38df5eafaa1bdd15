variable "create" {
  description = "Whether to create the database."
  type        = bool
  default     = true
}

variable "name" {
  description = "Identifier prefix of the instance, its replicas and groups."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets (no internet route), in at least two AZs."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups of the clients allowed to connect, by a name known at plan time (e.g. { eks = module.eks.cluster_security_group_id }): the ids themselves are unknown until the groups exist."
  type        = map(string)
  default     = {}
}

variable "engine_version" {
  description = "PostgreSQL major version; minor versions are applied in the maintenance window."
  type        = string
  default     = "17"

  validation {
    condition     = contains(["15", "16", "17"], var.engine_version)
    error_message = "engine_version must be a supported PostgreSQL major version: 15, 16 or 17."
  }
}

variable "instance_class" {
  description = "Instance class, e.g. db.t4g.micro (lab), db.t4g.medium (dev), db.r7g.large (prod)."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "instance_class must be an RDS class such as db.t4g.medium."
  }
}

variable "allocated_storage_gb" {
  description = "Initial gp3 storage."
  type        = number
  default     = 50
}

variable "max_allocated_storage_gb" {
  description = "Ceiling for storage autoscaling."
  type        = number
  default     = 500
}

variable "multi_az" {
  description = "Synchronous standby in a second AZ with automatic failover (production: true)."
  type        = bool
  default     = true
}

variable "read_replica_count" {
  description = "Asynchronous read replicas for the read model and reporting."
  type        = number
  default     = 0

  validation {
    condition     = var.read_replica_count >= 0 && var.read_replica_count <= 5
    error_message = "read_replica_count must be between 0 and 5."
  }
}

variable "backup_retention_days" {
  description = "Automated backups and point-in-time recovery window (seed 001: 30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35 (0 would disable point-in-time recovery)."
  }
}

variable "deletion_protection" {
  description = "Refuse deletion (and take a final snapshot); true in prod."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the managed master password."
  type        = string
}

variable "performance_insights_retention_days" {
  description = "Performance Insights retention: 7 is free, longer is charged."
  type        = number
  default     = 7
}

variable "monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds (0 disables it)."
  type        = number
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.monitoring_interval)
    error_message = "monitoring_interval must be one of 0, 1, 5, 10, 15, 30, 60."
  }
}

variable "database_name" {
  description = "Name of the initial database."
  type        = string
  default     = "quanttrader"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
