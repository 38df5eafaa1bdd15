output "dns_name" {
  description = "DNS name of the load balancer (the target of the public CNAME/alias)."
  value       = try(aws_lb.this[0].dns_name, null)
}

output "zone_id" {
  description = "Hosted zone of the load balancer, for Route 53 alias records."
  value       = try(aws_lb.this[0].zone_id, null)
}

output "arn_suffix" {
  description = "ARN suffix of the load balancer (CloudWatch dimension)."
  value       = try(aws_lb.this[0].arn_suffix, null)
}

output "target_group_arn" {
  description = "Target group of the API pods, for the Helm chart's TargetGroupBinding."
  value       = try(aws_lb_target_group.api[0].arn, null)
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the target group (CloudWatch dimension)."
  value       = try(aws_lb_target_group.api[0].arn_suffix, null)
}

output "security_group_id" {
  description = "Security group of the load balancer; the pods' security group allows it on 8080."
  value       = try(aws_security_group.this[0].id, null)
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL."
  value       = try(aws_wafv2_web_acl.this[0].arn, null)
}
