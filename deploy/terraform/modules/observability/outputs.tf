output "alarm_topic_arn" {
  description = "SNS topic every alarm, budget alert and backup failure goes to."
  value       = local.topic
}

output "alarm_names" {
  description = "Names of the alarms created."
  value       = concat([for a in aws_cloudwatch_metric_alarm.simple : a.alarm_name], [for a in aws_cloudwatch_metric_alarm.api_5xx : a.alarm_name])
}

output "app_log_group_names" {
  description = "Application log groups by key."
  value       = { for k, v in aws_cloudwatch_log_group.app : k => v.name }
}
