output "private_subnet_ids" {
  description = "Private subnets, routed through the NAT instance."
  value       = module.vpc.private_subnet_ids
}
