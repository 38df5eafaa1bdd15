variable "create" {
  description = "Whether to create the keys (false makes the module a no-op)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Prefix of the key aliases, e.g. quanttrader-prod (alias/<name>/<domain>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "name must be 2-41 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "domains" {
  description = "One customer-managed key per data domain: key = domain name, value = description, the AWS services (e.g. logs.us-east-1.amazonaws.com) allowed to use it on behalf of this account, and IAM principals such as service-linked roles allowed to use it."
  type = map(object({
    description        = string
    service_principals = optional(list(string), [])
    aws_principals     = optional(list(string), [])
  }))

  validation {
    condition     = alltrue([for k in keys(var.domains) : can(regex("^[a-z][a-z0-9-]{1,30}$", k))])
    error_message = "domain names must be lowercase letters, digits or dashes."
  }
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled key deletion takes effect (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "rotation_period_in_days" {
  description = "Automatic rotation period of the key material (90-2560 days)."
  type        = number
  default     = 365

  validation {
    condition     = var.rotation_period_in_days >= 90 && var.rotation_period_in_days <= 2560
    error_message = "rotation_period_in_days must be between 90 and 2560."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
