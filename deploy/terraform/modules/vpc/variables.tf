variable "create" {
  description = "Whether to create the VPC and everything in it."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix of every resource, e.g. quanttrader-prod."
  type        = string
}

variable "cidr" {
  description = "IPv4 CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && tonumber(split("/", var.cidr)[1]) <= 20
    error_message = "cidr must be a valid IPv4 block of /20 or larger."
  }
}

variable "azs" {
  description = "Availability zones to spread the subnets over (1 to 3; 3 for production)."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 1 && length(var.azs) <= 3
    error_message = "azs must list 1 to 3 availability zones."
  }
}

variable "create_private_subnets" {
  description = "Whether to create private (workload) and database subnets; a lab without them runs everything in the public subnets."
  type        = bool
  default     = true
}

variable "nat_mode" {
  description = "How private subnets reach the internet: gateway_per_az (HA, one NAT gateway per AZ), single_gateway (one NAT gateway, AZ failure cuts egress), instance (one small EC2 NAT instance, cheapest, you patch it) or none (no egress: VPC endpoints only)."
  type        = string
  default     = "gateway_per_az"

  validation {
    condition     = contains(["gateway_per_az", "single_gateway", "instance", "none"], var.nat_mode)
    error_message = "nat_mode must be one of gateway_per_az, single_gateway, instance, none."
  }
}

variable "nat_instance_type" {
  description = "Instance type of the NAT instance (nat_mode = instance); Graviton types need an arm64 AMI, which is what the module picks."
  type        = string
  default     = "t4g.nano"
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints in every AZ (each costs about $7.30 a month per AZ), e.g. [\"ecr.api\", \"ecr.dkr\", \"sts\", \"logs\"]. S3 and DynamoDB always get free gateway endpoints."
  type        = list(string)
  default     = []
}

variable "flow_logs_retention_days" {
  description = "Retention of the VPC flow logs in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs_retention_days)
    error_message = "flow_logs_retention_days must be a retention CloudWatch Logs accepts."
  }
}

variable "flow_logs_traffic_type" {
  description = "Which traffic the flow logs record: ALL, ACCEPT or REJECT (REJECT is the cheap choice for a lab)."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ACCEPT", "REJECT"], var.flow_logs_traffic_type)
    error_message = "flow_logs_traffic_type must be ALL, ACCEPT or REJECT."
  }
}

variable "logs_kms_key_arn" {
  description = "KMS key that encrypts the flow log group (null: CloudWatch's own key)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
