variable "kms_key_arn" {
  description = "Key of the buckets in the primary region."
  type        = string
}
