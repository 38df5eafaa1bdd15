variable "create" {
  description = "Whether to create the repositories."
  type        = bool
  default     = true
}

variable "repositories" {
  description = "Repository names, e.g. [\"quanttrader\"] (the one image of the platform)."
  type        = list(string)
  default     = ["quanttrader"]
}

variable "kms_key_arn" {
  description = "KMS key encrypting the images."
  type        = string
}

variable "keep_tagged_images" {
  description = "Release images kept per repository (older ones expire); images Argo CD still deploys must be among them."
  type        = number
  default     = 100
}

variable "untagged_expire_days" {
  description = "Days after which untagged images (superseded build layers) are removed."
  type        = number
  default     = 7
}

variable "pull_principal_arns" {
  description = "Extra accounts or roles allowed to pull (e.g. the prod account pulling from a shared registry)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
