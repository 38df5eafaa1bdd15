variable "mode" {
  description = "How the event log is run: msk (Amazon MSK, managed, TLS + SASL/SCRAM auth: librdkafka cannot sign MSK IAM;), self_hosted (Apache Kafka in KRaft mode on EC2: cheaper, you patch and back it up) or none (the all-in-one engine journals to SQLite and needs no Kafka)."
  type        = string
  default     = "msk"

  validation {
    condition     = contains(["msk", "self_hosted", "none"], var.mode)
    error_message = "mode must be msk, self_hosted or none."
  }
}

variable "name" {
  description = "Cluster name and name prefix."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per AZ; the broker count must be a multiple of their number for MSK."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups of the clients allowed to connect, by a name known at plan time (e.g. { eks = module.eks.cluster_security_group_id }): the ids themselves are unknown until the groups exist."
  type        = map(string)
  default     = {}
}

variable "kafka_version" {
  description = "Apache Kafka version (MSK: a version MSK offers; self-hosted: the release downloaded from the Apache archive)."
  type        = string
  default     = "3.8.1"

  validation {
    condition     = can(regex("^[34]\\.[0-9]+\\.[0-9]+$", var.kafka_version))
    error_message = "kafka_version must look like 3.8.1."
  }
}

variable "broker_count" {
  description = "Number of brokers: 3 spread over 3 AZs is the minimum for replication factor 3 with min.insync.replicas 2."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 1 && var.broker_count <= 30
    error_message = "broker_count must be between 1 and 30."
  }
}

variable "instance_type" {
  description = "Broker instance type: kafka.m7g.large for MSK, e.g. t4g.medium or m7g.large for self-hosted."
  type        = string
  default     = "kafka.m7g.large"
}

variable "volume_size_gb" {
  description = "Data volume per broker."
  type        = number
  default     = 100
}

variable "retention_hours" {
  description = "Default topic retention (seed 004: 7 days)."
  type        = number
  default     = 168
}

variable "kms_key_arn" {
  description = "KMS key for data at rest (broker volumes)."
  type        = string
}

variable "scram_kms_key_arn" {
  description = "Customer-managed KMS key of the AmazonMSK_ SCRAM secret (MSK refuses secrets under the AWS managed key). Required in mode msk."
  type        = string
  default     = null

  validation {
    condition     = var.mode != "msk" || var.scram_kms_key_arn != null
    error_message = "mode msk needs scram_kms_key_arn: MSK accepts SCRAM secrets only under a customer-managed key."
  }
}

variable "scram_username" {
  description = "SASL/SCRAM user name of the platform's clients."
  type        = string
  default     = "quanttrader"
}

variable "scram_recovery_window_days" {
  description = "Days a deleted SCRAM secret can still be restored (0 deletes at once: labs only)."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Retention of the broker logs in CloudWatch."
  type        = number
  default     = 365
}

variable "logs_kms_key_arn" {
  description = "KMS key of the broker log group (null: CloudWatch's own key)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
