variable "create" {
  description = "Whether to create the DocumentDB cluster (seed 004's enable_documentdb; QuantTrader itself needs none, it is there for the ML and analytics side)."
  type        = bool
  default     = false
}

variable "name" {
  description = "Cluster identifier and name prefix."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets in at least two AZs."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups of the clients allowed to connect, by a name known at plan time (e.g. { eks = module.eks.cluster_security_group_id }): the ids themselves are unknown until the groups exist."
  type        = map(string)
  default     = {}
}

variable "engine_version" {
  description = "DocumentDB engine version."
  type        = string
  default     = "5.0.0"

  validation {
    condition     = contains(["4.0.0", "5.0.0"], var.engine_version)
    error_message = "engine_version must be 4.0.0 or 5.0.0."
  }
}

variable "instance_class" {
  description = "Instance class, e.g. db.t4g.medium."
  type        = string
  default     = "db.t4g.medium"
}

variable "instance_count" {
  description = "Instances: 1 primary plus replicas (2 or more for failover)."
  type        = number
  default     = 2

  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 16
    error_message = "instance_count must be between 1 and 16."
  }
}

variable "backup_retention_days" {
  description = "Continuous backup window (1-35 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  description = "Refuse deletion and take a final snapshot."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key for storage and the managed master password."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
