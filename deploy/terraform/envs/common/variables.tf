# ------------------------------------------------------------------ identity

variable "environment" {
  description = "Environment name: lab, dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["lab", "dev", "staging", "prod"], var.environment)
    error_message = "environment must be lab, dev, staging or prod."
  }
}

variable "region" {
  description = "Primary AWS region."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "replica_region" {
  description = "Second region for S3 replication and backup copies; must differ from region."
  type        = string
  default     = "us-west-2"

  validation {
    condition     = var.replica_region != var.region
    error_message = "replica_region must differ from region: it is the disaster recovery copy."
  }
}

variable "allowed_account_ids" {
  description = "Accounts this configuration may touch: a guard against applying prod to the wrong credentials. Empty: any."
  type        = list(string)
  default     = []
}

variable "owner" {
  description = "Team owning the environment (tag Owner)."
  type        = string
  default     = "platform"
}

variable "extra_tags" {
  description = "Tags added to every resource besides Project, Environment, Owner, ManagedBy and Repository (e.g. CostCenter)."
  type        = map(string)
  default     = {}
}

variable "monthly_budget_usd" {
  description = "Monthly budget of the environment in USD: AWS Budgets alerts on it, and CI's cost estimate fails when the estimate exceeds it."
  type        = number

  validation {
    condition     = var.monthly_budget_usd > 0
    error_message = "monthly_budget_usd must be positive."
  }
}

variable "alert_emails" {
  description = "Addresses receiving alarms and budget alerts."
  type        = list(string)

  validation {
    condition     = length(var.alert_emails) > 0 && alltrue([for e in var.alert_emails : can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", e))])
    error_message = "alert_emails must list at least one valid address."
  }
}

# ------------------------------------------------------------------ network

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "az_count" {
  description = "Availability zones used (3 for production HA; the lab uses 1)."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 1 && var.az_count <= 3
    error_message = "az_count must be 1, 2 or 3."
  }
}

variable "nat_mode" {
  description = "Egress of the private subnets: gateway_per_az, single_gateway, instance or none (seed 004's NAT switch)."
  type        = string
  default     = "gateway_per_az"

  validation {
    condition     = contains(["gateway_per_az", "single_gateway", "instance", "none"], var.nat_mode)
    error_message = "nat_mode must be gateway_per_az, single_gateway, instance or none."
  }

  validation {
    condition     = var.nat_mode != "none" || var.compute == "single_host"
    error_message = "EKS nodes pull images and join the cluster through the private subnets' egress: nat_mode none is for compute = single_host only."
  }
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints (about $7.30 per service per AZ a month)."
  type        = list(string)
  default     = []
}

# ------------------------------------------------------------------ compute

variable "compute" {
  description = "Where QuantTrader runs: eks (distributed roles on Kubernetes) or single_host (`quanttrader run` all-in-one on one EC2 instance: the lab)."
  type        = string
  default     = "eks"

  validation {
    condition     = contains(["eks", "single_host"], var.compute)
    error_message = "compute must be eks or single_host."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (standard support only)."
  type        = string
  default     = "1.33"

  validation {
    condition     = contains(["1.32", "1.33", "1.34"], var.kubernetes_version)
    error_message = "kubernetes_version must be a version in EKS standard support (1.32, 1.33 or 1.34); older ones cost $0.60 an hour in extended support."
  }
}

variable "use_spot_instances" {
  description = "Run the general and ml node groups on Spot (seed 004's switch). The trading group stays on demand: a reclaimed matching node halts trading."
  type        = bool
  default     = false
}

variable "eks_public_endpoint_cidrs" {
  description = "Networks allowed to reach the EKS API over the internet; empty keeps the endpoint private."
  type        = list(string)
  default     = []
}

variable "eks_admin_role_arns" {
  description = "IAM roles given cluster-admin (platform team SSO role, CI deploy role)."
  type        = list(string)
  default     = []
}

variable "general_node" {
  description = "General node group (ingestion, risk, market data, controllers)."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
  })
  default = {
    instance_types = ["m7i.large"]
    min_size       = 2
    max_size       = 6
    desired_size   = 3
  }
}

variable "trading_node" {
  description = "Trading node group: compute-optimised, tainted so that only the matching engine runs there."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
  })
  default = {
    instance_types = ["c7i.xlarge"]
    min_size       = 2
    max_size       = 4
    desired_size   = 2
  }
}

variable "enable_ml_nodes" {
  description = "Create the ml node group (seed 003's model training and inference)."
  type        = bool
  default     = false
}

variable "ml_node" {
  description = "ML node group, tainted for ML workloads."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
  })
  default = {
    instance_types = ["r7i.large"]
    min_size       = 0
    max_size       = 3
    desired_size   = 1
  }
}

variable "single_host_instance_type" {
  description = "Instance type of the single host (compute = single_host)."
  type        = string
  default     = "t4g.small"
}

variable "single_host_use_spot" {
  description = "Run the single host on Spot."
  type        = bool
  default     = false
}

variable "single_host_ingress_cidrs" {
  description = "Who may reach the single host's port 8080 (your /32)."
  type        = list(string)
  default     = []
}

variable "image_tag" {
  description = "Image tag the single host runs (EKS takes its tag from deploy/helm/quanttrader/values-<env>.yaml instead)."
  type        = string
  default     = "latest"
}

# ------------------------------------------------------------------ data

variable "enable_rds" {
  description = "Create the PostgreSQL read model (the distributed mode needs it; the all-in-one uses SQLite)."
  type        = bool
  default     = true
}

variable "rds_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.r7g.large"
}

variable "rds_multi_az" {
  description = "Multi-AZ standby with automatic failover."
  type        = bool
  default     = true
}

variable "rds_read_replicas" {
  description = "Read replicas."
  type        = number
  default     = 1

  validation {
    condition     = var.rds_read_replicas >= 0 && var.rds_read_replicas <= 5
    error_message = "rds_read_replicas must be between 0 and 5."
  }
}

variable "rds_allocated_storage_gb" {
  description = "Initial RDS storage (gp3)."
  type        = number
  default     = 100
}

variable "enable_redis" {
  description = "Create the ElastiCache Redis replication group."
  type        = bool
  default     = true
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_num_cache_clusters" {
  description = "Redis nodes (primary + replicas); 2 or more gives Multi-AZ failover."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_num_cache_clusters >= 1 && var.redis_num_cache_clusters <= 6
    error_message = "redis_num_cache_clusters must be between 1 and 6."
  }
}

variable "enable_msk" {
  description = "Run Kafka as Amazon MSK (seed 004's switch)."
  type        = bool
  default     = true
}

variable "enable_self_hosted_kafka" {
  description = "Run Kafka on EC2 instead (seed 004's switch); exclusive with enable_msk."
  type        = bool
  default     = false

  validation {
    condition     = !(var.enable_self_hosted_kafka && var.enable_msk)
    error_message = "enable_msk and enable_self_hosted_kafka are exclusive: pick one way of running Kafka (or neither for the all-in-one)."
  }
}

variable "kafka_broker_count" {
  description = "Kafka brokers (MSK or self-hosted)."
  type        = number
  default     = 3

  validation {
    condition     = var.kafka_broker_count >= 1 && var.kafka_broker_count <= 15
    error_message = "kafka_broker_count must be between 1 and 15 (MSK needs a multiple of the AZ count)."
  }
}

variable "msk_instance_type" {
  description = "MSK broker type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "kafka_ec2_instance_type" {
  description = "Self-hosted broker instance type."
  type        = string
  default     = "t4g.medium"
}

variable "kafka_volume_size_gb" {
  description = "Data volume per broker."
  type        = number
  default     = 100
}

variable "enable_documentdb" {
  description = "Create DocumentDB (seed 004's switch)."
  type        = bool
  default     = false
}

variable "documentdb_instance_class" {
  description = "DocumentDB instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "documentdb_instance_count" {
  description = "DocumentDB instances."
  type        = number
  default     = 2
}

variable "external_secrets" {
  description = "Secrets created empty under quanttrader/<environment>/ for an operator to fill (name => description), e.g. a market data vendor's API key."
  type        = map(string)
  default     = {}
}

# ------------------------------------------------------------------ edge

variable "enable_alb" {
  description = "Create the public ALB with WAF in front of the API (EKS only)."
  type        = bool
  default     = true
}

variable "api_domain_name" {
  description = "Public name of the API, e.g. api.staging.example.com. With enable_alb, the issued ACM certificate of this name (in region) is looked up, so no account-specific ARN is committed."
  type        = string
  default     = null

  validation {
    condition     = !(var.enable_alb && var.compute == "eks") || can(regex("^[a-z0-9.-]+\\.[a-z]{2,}$", var.api_domain_name))
    error_message = "enable_alb needs api_domain_name, the DNS name whose issued ACM certificate the HTTPS listener serves."
  }
}

# ------------------------------------------------------------------ resilience

variable "enable_s3_replication" {
  description = "Replicate the data buckets to replica_region."
  type        = bool
  default     = true
}

variable "enable_backup" {
  description = "AWS Backup plans (continuous + daily with copies to replica_region)."
  type        = bool
  default     = true
}

variable "backup_vault_lock_days" {
  description = "Vault Lock minimum retention in days (null: no lock). Irreversible after 3 days."
  type        = number
  default     = null
}

variable "deletion_protection" {
  description = "Deletion protection of the EKS cluster, databases and the load balancer (true in prod; false lets scripts/destroy remove a non-prod environment)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of infrastructure and application logs."
  type        = number
  default     = 365
}
