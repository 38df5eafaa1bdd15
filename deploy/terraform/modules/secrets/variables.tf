variable "create" {
  description = "Whether to create the secrets."
  type        = bool
  default     = true
}

variable "name" {
  description = "Path prefix of the secrets (<name>/<secret>); External Secrets may read <name>/*."
  type        = string
}

variable "generated_secrets" {
  description = "Secrets whose value Secrets Manager generates once (length in characters), e.g. { admin-token = 48 } for QT_ADMIN_TOKEN. Later applies keep the value."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for n in values(var.generated_secrets) : n >= 32 && n <= 4096])
    error_message = "generated secret lengths must be between 32 and 4096."
  }
}

variable "external_secrets" {
  description = "Secrets created empty, whose value an operator puts in (e.g. a market data vendor's API key): name => description."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "KMS key encrypting the secrets."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once: labs only)."
  type        = number
  default     = 30

  validation {
    condition     = var.recovery_window_days == 0 || (var.recovery_window_days >= 7 && var.recovery_window_days <= 30)
    error_message = "recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
