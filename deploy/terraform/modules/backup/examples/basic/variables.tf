variable "kms_key_arn" {
  description = "Key of the primary vault."
  type        = string
}

variable "database_arn" {
  description = "RDS instance to protect."
  type        = string
}
