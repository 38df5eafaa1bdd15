# Continuous and daily backups of one database, copied to a second region.
provider "aws" {
  region = "us-east-1"
}

provider "aws" {
  alias  = "replica"
  region = "us-west-2"
}

module "backup" {
  source = "../.."
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  name                   = "example"
  kms_key_arn            = var.kms_key_arn
  resource_arns          = { database = var.database_arn }
  copy_to_replica_region = true
}
