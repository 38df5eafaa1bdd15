locals {
  create = var.create
  # AWS managed rule groups, in order. Count-only would hide attacks; these block.
  managed_rules = [
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
  ]
}

resource "aws_security_group" "this" {
  count = local.create ? 1 : 0

  name        = "${var.name}-alb"
  description = "Public load balancer: HTTPS in, to the pods"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-alb" })
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  for_each = local.create ? toset(var.ingress_cidrs) : toset([])

  security_group_id = aws_security_group.this[0].id
  description       = "HTTPS from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "http" {
  for_each = local.create ? toset(var.ingress_cidrs) : toset([])

  security_group_id = aws_security_group.this[0].id
  description       = "HTTP from ${each.value}, only to be redirected to HTTPS"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

data "aws_vpc" "this" {
  count = local.create ? 1 : 0

  id = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "to_targets" {
  count = local.create ? 1 : 0

  security_group_id = aws_security_group.this[0].id
  description       = "To the pods (IP targets) on the application port"
  cidr_ipv4         = data.aws_vpc.this[0].cidr_block
  ip_protocol       = "tcp"
  from_port         = 8080
  to_port           = 8080
}

resource "aws_lb" "this" {
  count = local.create ? 1 : 0

  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.subnet_ids
  security_groups            = [aws_security_group.this[0].id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # WebSocket market data keeps connections open; the server pings every 30 s.
  idle_timeout = 120

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "alb"
    enabled = true
  }

  tags = var.tags
  #checkov:skip=CKV_AWS_150:deletion_protection is a variable: true in staging and prod, false in lab and dev, which are torn down.
  #checkov:skip=CKV2_AWS_76:The web ACL is given as rule_json, which Checkov does not read: AWSManagedRulesKnownBadInputsRuleSet (Log4j) is its second rule.
}

# Pods register through the AWS Load Balancer Controller's TargetGroupBinding (Helm chart),
# so the load balancer, its TLS and its WAF stay under Terraform's review.
resource "aws_lb_target_group" "api" {
  count = local.create ? 1 : 0

  name                 = "${var.name}-api"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = "/ready"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  stickiness {
    type    = "lb_cookie"
    enabled = false
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  count = local.create ? 1 : 0

  load_balancer_arn = aws_lb.this[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api[0].arn
  }

  tags = var.tags
}

resource "aws_lb_listener" "http_redirect" {
  count = local.create ? 1 : 0

  load_balancer_arn = aws_lb.this[0].arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }

  tags = var.tags
}

# The rules are given as the WAF API's JSON: their statement blocks nest too deeply for
# HCL to stay readable, and rule_json is what the console exports.
resource "aws_wafv2_web_acl" "this" {
  count = local.create ? 1 : 0

  name        = var.name
  description = "QuantTrader public API: AWS managed rules and a per-IP rate limit"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  rule_json = jsonencode(concat(
    [for i, group in local.managed_rules : {
      Name           = group
      Priority       = i
      OverrideAction = { None = {} }
      Statement = {
        ManagedRuleGroupStatement = { VendorName = "AWS", Name = group }
      }
      VisibilityConfig = {
        CloudWatchMetricsEnabled = true
        MetricName               = group
        SampledRequestsEnabled   = true
      }
    }],
    [{
      Name     = "rate-limit-per-ip"
      Priority = length(local.managed_rules)
      Action   = { Block = {} }
      Statement = {
        RateBasedStatement = { Limit = var.rate_limit_per_5min, AggregateKeyType = "IP" }
      }
      VisibilityConfig = {
        CloudWatchMetricsEnabled = true
        MetricName               = "rate-limit-per-ip"
        SampledRequestsEnabled   = true
      }
    }],
  ))

  tags = var.tags
  #checkov:skip=CKV_AWS_175:The rules are in rule_json, which Checkov does not read: four AWS managed rule groups and a rate limit.
  #checkov:skip=CKV_AWS_192:The rules are in rule_json, which Checkov does not read: AWSManagedRulesKnownBadInputsRuleSet blocks Log4j lookups.
}

resource "aws_wafv2_web_acl_association" "this" {
  count = local.create ? 1 : 0

  resource_arn = aws_lb.this[0].arn
  web_acl_arn  = aws_wafv2_web_acl.this[0].arn
}

# WAF requires the log group name to start with aws-waf-logs-.
resource "aws_cloudwatch_log_group" "waf" {
  count = local.create ? 1 : 0

  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.waf_log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  count = local.create ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.this[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  # API keys must never reach the logs.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}
