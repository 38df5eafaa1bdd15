output "cluster_name" {
  description = "Name of the cluster (null when create = false)."
  value       = try(aws_eks_cluster.this[0].name, null)
}

output "cluster_arn" {
  description = "ARN of the cluster."
  value       = try(aws_eks_cluster.this[0].arn, null)
}

output "cluster_endpoint" {
  description = "API server endpoint."
  value       = try(aws_eks_cluster.this[0].endpoint, null)
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the API server."
  value       = try(aws_eks_cluster.this[0].certificate_authority[0].data, null)
}

output "cluster_security_group_id" {
  description = "Security group EKS created for the control plane and the managed nodes; data stores allow it in."
  value       = try(aws_eks_cluster.this[0].vpc_config[0].cluster_security_group_id, null)
}

output "node_role_arn" {
  description = "IAM role of the managed nodes."
  value       = try(aws_iam_role.node[0].arn, null)
}

output "node_group_capacity_types" {
  description = "ON_DEMAND or SPOT, by node group."
  value       = { for k, v in aws_eks_node_group.this : k => v.capacity_type }
}

output "pod_role_arns" {
  description = "IAM roles bound through Pod Identity, by controller or workload name."
  value       = { for k, v in aws_iam_role.pod : k => v.arn }
}
