provider "aws" {
  region              = var.region
  allowed_account_ids = var.allowed_account_ids

  # Every resource carries these, so that Cost Explorer and the budget can split the bill
  # by environment and component.
  default_tags {
    tags = local.tags
  }
}

# Disaster recovery copies (S3 replication, backup copies) go to a second region.
provider "aws" {
  alias               = "replica"
  region              = var.replica_region
  allowed_account_ids = var.allowed_account_ids

  default_tags {
    tags = local.tags
  }
}
