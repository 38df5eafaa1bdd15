resource "aws_budgets_budget" "this" {
  count = var.create ? 1 : 0

  name         = var.name
  budget_type  = "COST"
  limit_amount = format("%.2f", var.monthly_budget_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  dynamic "cost_filter" {
    for_each = length(var.cost_filter_tags) > 0 ? [1] : []

    content {
      name   = "TagKeyValue"
      values = [for k, v in var.cost_filter_tags : format("user:%s$%s", k, v)]
    }
  }

  dynamic "notification" {
    for_each = toset(var.actual_alert_percentages)

    content {
      comparison_operator        = "GREATER_THAN"
      threshold                  = notification.value
      threshold_type             = "PERCENTAGE"
      notification_type          = "ACTUAL"
      subscriber_email_addresses = var.alert_emails
      subscriber_sns_topic_arns  = var.alert_topic_arn == null ? [] : [var.alert_topic_arn]
    }
  }

  dynamic "notification" {
    for_each = var.forecast_alert_percentage == null ? [] : [var.forecast_alert_percentage]

    content {
      comparison_operator        = "GREATER_THAN"
      threshold                  = notification.value
      threshold_type             = "PERCENTAGE"
      notification_type          = "FORECASTED"
      subscriber_email_addresses = var.alert_emails
      subscriber_sns_topic_arns  = var.alert_topic_arn == null ? [] : [var.alert_topic_arn]
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = length(var.alert_emails) > 0 || var.alert_topic_arn != null
      error_message = "A budget nobody hears about is useless: give alert_emails or alert_topic_arn."
    }
  }
}
