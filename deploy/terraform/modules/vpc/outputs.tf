output "vpc_id" {
  description = "Id of the VPC (null when create = false)."
  value       = try(aws_vpc.this[0].id, null)
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = var.cidr
}

output "public_subnet_ids" {
  description = "Public subnets, one per AZ, in the order of var.azs."
  value       = [for az in var.azs : aws_subnet.public[az].id if contains(keys(aws_subnet.public), az)]
}

output "private_subnet_ids" {
  description = "Private (workload) subnets, one per AZ, in the order of var.azs."
  value       = [for az in var.azs : aws_subnet.private[az].id if contains(keys(aws_subnet.private), az)]
}

output "database_subnet_ids" {
  description = "Database subnets (no route to the internet), one per AZ."
  value       = [for az in var.azs : aws_subnet.database[az].id if contains(keys(aws_subnet.database), az)]
}

output "nat_gateway_count" {
  description = "Number of NAT gateways created (0 with nat_mode instance or none)."
  value       = length(aws_nat_gateway.this)
}

output "nat_instance_id" {
  description = "Id of the NAT instance (nat_mode = instance), else null."
  value       = try(aws_instance.nat[0].id, null)
}

output "interface_endpoint_ids" {
  description = "Interface endpoint ids by service."
  value       = { for k, v in aws_vpc_endpoint.interface : k => v.id }
}
