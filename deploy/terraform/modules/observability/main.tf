locals {
  create = var.create
  topic  = try(aws_sns_topic.alarms[0].arn, null)

  alb_alarms = local.create && var.enable_alb_alarms ? {
    api-5xx = {
      description = "More than 1% of API responses are 5xx"
      threshold   = 1
      expression  = "100 * IF(requests > 0, errors / requests, 0)"
    }
  } : {}

  # Simple threshold alarms: metric, statistic, threshold, comparison, dimensions.
  simple = merge(
    local.create && var.enable_alb_alarms ? {
      api-latency-p99 = {
        description = "API p99 latency above ${var.latency_p99_threshold_seconds}s"
        namespace   = "AWS/ApplicationELB"
        metric      = "TargetResponseTime"
        statistic   = "p99"
        threshold   = var.latency_p99_threshold_seconds
        comparison  = "GreaterThanThreshold"
        dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
      }
      api-unhealthy-targets = {
        description = "API pods failing their readiness check behind the load balancer"
        namespace   = "AWS/ApplicationELB"
        metric      = "UnHealthyHostCount"
        statistic   = "Maximum"
        threshold   = 0
        comparison  = "GreaterThanThreshold"
        dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
      }
    } : {},
    local.create && var.enable_rds_alarms ? {
      rds-cpu = {
        description = "PostgreSQL CPU above 80%"
        namespace   = "AWS/RDS"
        metric      = "CPUUtilization"
        statistic   = "Average"
        threshold   = 80
        comparison  = "GreaterThanThreshold"
        dimensions  = { DBInstanceIdentifier = var.rds_instance_id }
      }
      rds-free-storage = {
        description = "PostgreSQL free storage below 10 GiB"
        namespace   = "AWS/RDS"
        metric      = "FreeStorageSpace"
        statistic   = "Minimum"
        threshold   = 10737418240
        comparison  = "LessThanThreshold"
        dimensions  = { DBInstanceIdentifier = var.rds_instance_id }
      }
    } : {},
    local.create && var.enable_redis_alarms ? {
      redis-memory = {
        description = "Redis memory use above 80%"
        namespace   = "AWS/ElastiCache"
        metric      = "DatabaseMemoryUsagePercentage"
        statistic   = "Maximum"
        threshold   = 80
        comparison  = "GreaterThanThreshold"
        dimensions  = { ReplicationGroupId = var.redis_replication_group_id }
      }
    } : {},
    local.create && var.enable_msk_alarms ? {
      kafka-offline-partitions = {
        description = "Kafka has offline partitions: producers with acks=all are failing"
        namespace   = "AWS/Kafka"
        metric      = "OfflinePartitionsCount"
        statistic   = "Maximum"
        threshold   = 0
        comparison  = "GreaterThanThreshold"
        dimensions  = { "Cluster Name" = var.msk_cluster_name }
      }
      kafka-under-min-isr = {
        description = "Kafka partitions under min.insync.replicas"
        namespace   = "AWS/Kafka"
        metric      = "UnderMinIsrPartitionCount"
        statistic   = "Maximum"
        threshold   = 0
        comparison  = "GreaterThanThreshold"
        dimensions  = { "Cluster Name" = var.msk_cluster_name }
      }
    } : {},
  )
}

resource "aws_sns_topic" "alarms" {
  count = local.create ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "alarms" {
  count = local.create ? 1 : 0

  statement {
    sid       = "CloudWatchAndBudgetsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com", "backup.amazonaws.com"]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  count = local.create ? 1 : 0

  arn    = aws_sns_topic.alarms[0].arn
  policy = data.aws_iam_policy_document.alarms[0].json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = local.create ? toset(var.alarm_emails) : toset([])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_log_group" "app" {
  for_each = local.create ? var.app_log_groups : {}

  name              = "/${var.name}/${each.key}"
  retention_in_days = each.value
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_metric_alarm" "simple" {
  for_each = local.simple

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  extended_statistic  = startswith(each.value.statistic, "p") ? each.value.statistic : null
  statistic           = startswith(each.value.statistic, "p") ? null : each.value.statistic
  dimensions          = each.value.dimensions
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic]
  ok_actions          = [local.topic]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  for_each = local.alb_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic]
  ok_actions          = [local.topic]

  metric_query {
    id          = "rate"
    expression  = each.value.expression
    label       = "5xx percentage"
    return_data = true
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      period      = 60
      stat        = "Sum"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
    }
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      period      = 60
      stat        = "Sum"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
    }
  }

  tags = var.tags
}
