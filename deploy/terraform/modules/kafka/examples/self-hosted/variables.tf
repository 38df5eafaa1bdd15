variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per zone."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Key of the broker volumes."
  type        = string
}
