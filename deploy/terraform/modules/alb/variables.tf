variable "create" {
  description = "Whether to create the load balancer and its web ACL."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the load balancer (at most 32 characters with the suffixes)."
  type        = string

  validation {
    condition     = length(var.name) <= 26
    error_message = "name must be at most 26 characters (ALB names are limited to 32)."
  }
}

variable "vpc_id" {
  description = "VPC of the load balancer."
  type        = string
}

variable "subnet_ids" {
  description = "Public subnets in at least two AZs."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener. Required when create is true: the platform serves HTTPS only."
  type        = string
  default     = null

  validation {
    condition     = !var.create || can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.2 minimum, 1.3 preferred)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "ingress_cidrs" {
  description = "Networks allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "access_logs_bucket" {
  description = "S3 bucket for access logs (the s3 module's access log bucket), written under alb/."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse deletion of the load balancer."
  type        = bool
  default     = true
}

variable "rate_limit_per_5min" {
  description = "Requests per client IP per 5 minutes before WAF blocks it (the API's own per-key limits come first)."
  type        = number
  default     = 6000

  validation {
    condition     = var.rate_limit_per_5min >= 100
    error_message = "rate_limit_per_5min must be at least 100 (the WAF minimum)."
  }
}

variable "waf_log_retention_days" {
  description = "Retention of the WAF logs."
  type        = number
  default     = 365
}

variable "logs_kms_key_arn" {
  description = "KMS key of the WAF log group (null: CloudWatch's own key)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
