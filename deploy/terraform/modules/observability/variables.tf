variable "create" {
  description = "Whether to create the alarm topic, log groups and alarms."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix of the topic, log groups and alarms."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key of the SNS topic and the application log groups; its policy must let CloudWatch and AWS Budgets use it."
  type        = string
}

variable "app_log_groups" {
  description = "Application log groups to create (the pods' logs are shipped there), with their retention in days."
  type        = map(number)
  default     = {}
}

variable "enable_alb_alarms" {
  description = "Alarms on the load balancer (5xx rate, p99 latency, unhealthy targets): needs alb_arn_suffix and target_group_arn_suffix. A switch of its own because the ids are unknown until apply."
  type        = bool
  default     = false
}

variable "enable_rds_alarms" {
  description = "Alarms on PostgreSQL (CPU, free storage): needs rds_instance_id. A switch of its own because the ids are unknown until apply."
  type        = bool
  default     = false
}

variable "enable_redis_alarms" {
  description = "Alarms on Redis (memory): needs redis_replication_group_id. A switch of its own because the ids are unknown until apply."
  type        = bool
  default     = false
}

variable "enable_msk_alarms" {
  description = "Alarms on MSK (disk use): needs msk_cluster_name. A switch of its own because the ids are unknown until apply."
  type        = bool
  default     = false
}

variable "alb_arn_suffix" {
  description = "Load balancer to watch for 5xx and latency (null: no ALB alarms)."
  type        = string
  default     = null
}

variable "target_group_arn_suffix" {
  description = "Target group of the API (needed with alb_arn_suffix)."
  type        = string
  default     = null
}

variable "rds_instance_id" {
  description = "RDS instance to watch (null: no RDS alarms)."
  type        = string
  default     = null
}

variable "redis_replication_group_id" {
  description = "ElastiCache replication group to watch (null: no Redis alarms)."
  type        = string
  default     = null
}

variable "msk_cluster_name" {
  description = "MSK cluster to watch (null: no MSK alarms)."
  type        = string
  default     = null
}

variable "latency_p99_threshold_seconds" {
  description = "p99 target response time above which the API alarm fires (seed 001: p99 under 100 ms for order placement)."
  type        = number
  default     = 0.1
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
