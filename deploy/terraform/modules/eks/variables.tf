variable "create" {
  description = "Whether to create the cluster and everything that belongs to it."
  type        = bool
  default     = true
}

variable "name" {
  description = "Cluster name, also the prefix of its IAM roles and log group."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version. Only versions in EKS standard support are accepted: 1.28 (the seeds' choice) left extended support in November 2025."
  type        = string
  default     = "1.33"

  validation {
    condition     = contains(["1.32", "1.33", "1.34"], var.kubernetes_version)
    error_message = "kubernetes_version must be a version in EKS standard support: 1.32, 1.33 or 1.34."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the control plane ENIs and the nodes (at least two AZs)."
  type        = list(string)

  validation {
    condition     = !var.create || length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public_access" {
  description = "Whether the API server endpoint is reachable from the internet (false: only from inside the VPC, through a VPN or a bastion)."
  type        = bool
  default     = false
}

variable "endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the public endpoint when endpoint_public_access is true."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.endpoint_public_access_cidrs, "0.0.0.0/0")
    error_message = "The public endpoint must not be open to 0.0.0.0/0; list your office or VPN ranges."
  }
}

variable "secrets_kms_key_arn" {
  description = "KMS key that encrypts Kubernetes secrets (envelope encryption)."
  type        = string
}

variable "ebs_kms_key_arn" {
  description = "KMS key of the nodes' root volumes and of the EBS CSI driver's volumes."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the control plane log group (null: CloudWatch's own key)."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the control plane logs."
  type        = number
  default     = 365
}

variable "use_spot_instances" {
  description = "Run the node groups that allow it (allow_spot = true) on Spot capacity: about 70% cheaper, but a node can be taken back with two minutes' notice."
  type        = bool
  default     = false
}

variable "node_groups" {
  description = "Managed node groups. Taints keep workloads off a group unless they tolerate it (the trading group runs only the latency-critical engine)."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gb   = optional(number, 50)
    ami_type       = optional(string, "AL2023_x86_64_STANDARD")
    allow_spot     = optional(bool, true)
    labels         = optional(map(string), {})
    taints = optional(list(object({
      key    = string
      value  = string
      effect = string
    })), [])
  }))

  validation {
    condition     = alltrue([for g in values(var.node_groups) : g.min_size <= g.desired_size && g.desired_size <= g.max_size && g.max_size >= 1])
    error_message = "Each node group needs min_size <= desired_size <= max_size and max_size >= 1."
  }

  validation {
    condition     = alltrue(flatten([for g in values(var.node_groups) : [for t in g.taints : contains(["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"], t.effect)]]))
    error_message = "Taint effects must be NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE."
  }
}

variable "admin_role_arns" {
  description = "IAM roles (e.g. the platform team's SSO role, the CI deploy role) given cluster-admin through EKS access entries."
  type        = list(string)
  default     = []
}

variable "addon_versions" {
  description = "Pinned add-on versions by name; an add-on not listed gets the default version for the cluster's Kubernetes version."
  type        = map(string)
  default     = {}
}

variable "external_secrets_secret_arn_prefix" {
  description = "ARN prefix (ending in *) of the Secrets Manager secrets External Secrets may read, e.g. arn:aws:secretsmanager:us-east-1:123456789012:secret:quanttrader-prod/*."
  type        = string
}

variable "external_secrets_kms_key_arn" {
  description = "KMS key of those secrets, which External Secrets must be allowed to decrypt with."
  type        = string
}

variable "external_secrets_extra_secret_arns" {
  description = "Further secrets External Secrets may read, outside the prefix: those AWS services create under their own names (e.g. the RDS-managed master user secret)."
  type        = list(string)
  default     = []
}

variable "external_secrets_extra_kms_key_arns" {
  description = "Further keys External Secrets may decrypt with (those of external_secrets_extra_secret_arns)."
  type        = list(string)
  default     = []
}

variable "workload_roles" {
  description = "Extra IAM roles for workloads, bound to a namespace/service account through EKS Pod Identity; policy_json is the role's inline policy."
  type = map(object({
    namespace       = string
    service_account = string
    policy_json     = string
  }))
  default = {}
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Refuse DeleteCluster while true (prod). false in non-prod environments so that scripts/destroy can remove the cluster."
  type        = bool
  default     = true
}
