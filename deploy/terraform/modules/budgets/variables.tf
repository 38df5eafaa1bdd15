variable "create" {
  description = "Whether to create the budget."
  type        = bool
  default     = true
}

variable "name" {
  description = "Budget name."
  type        = string
}

variable "monthly_budget_usd" {
  description = "Monthly cost budget in USD for everything tagged with this environment."
  type        = number

  validation {
    condition     = var.monthly_budget_usd > 0
    error_message = "monthly_budget_usd must be positive."
  }
}

variable "cost_filter_tags" {
  description = "Only costs of resources with these tags count (activate them as cost allocation tags in Billing first), e.g. { Environment = \"prod\" }. Empty: the whole account."
  type        = map(string)
  default     = {}
}

variable "actual_alert_percentages" {
  description = "Alert when actual spend passes these percentages of the budget (seed 002 asks for alerts at $20, $30 and $50 of a $30 budget: 67, 100, 167)."
  type        = list(number)
  default     = [50, 80, 100]
}

variable "forecast_alert_percentage" {
  description = "Alert when the month's forecast passes this percentage of the budget (null: no forecast alert)."
  type        = number
  default     = 100
}

variable "alert_topic_arn" {
  description = "SNS topic of the alerts."
  type        = string
  default     = null
}

variable "alert_emails" {
  description = "Addresses alerted directly by AWS Budgets as well."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
