variable "create" {
  description = "Whether to create the host (the lab's whole platform: `quanttrader run` on one instance)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the instance and prefix of its role and security group."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the host."
  type        = string
}

variable "subnet_id" {
  description = "Public subnet of the host (it needs an internet route for ECR and SSM, without paying for NAT)."
  type        = string
}

variable "instance_type" {
  description = "Instance type; the all-in-one engine runs comfortably on a t4g.small (2 vCPU, 2 GiB)."
  type        = string
  default     = "t4g.small"
}

variable "use_spot" {
  description = "Run on Spot capacity (about 70% cheaper; the instance may be stopped with two minutes' notice, the data volume survives)."
  type        = bool
  default     = false
}

variable "data_volume_gb" {
  description = "gp3 volume holding the SQLite journal and snapshots (/var/lib/quanttrader)."
  type        = number
  default     = 10
}

variable "image" {
  description = "Container image to run, e.g. <account>.dkr.ecr.us-east-1.amazonaws.com/quanttrader:1.2.3."
  type        = string
}

variable "ingress_cidrs" {
  description = "Who may reach port 8080 (your own address, /32). Empty: nobody; use `aws ssm start-session` port forwarding instead."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.ingress_cidrs, "0.0.0.0/0")
    error_message = "The lab host speaks plain HTTP on 8080: never open it to 0.0.0.0/0."
  }
}

variable "admin_token_secret_arn" {
  description = "Secrets Manager secret holding QT_ADMIN_TOKEN."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the volumes and of the admin token secret."
  type        = string
}

variable "ecr_repository_arn" {
  description = "Repository the host pulls its image from."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
