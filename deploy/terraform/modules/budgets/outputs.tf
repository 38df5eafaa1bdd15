output "budget_name" {
  description = "Name of the budget (null when create = false)."
  value       = try(aws_budgets_budget.this[0].name, null)
}

output "monthly_budget_usd" {
  description = "The monthly limit, as declared."
  value       = var.monthly_budget_usd
}
