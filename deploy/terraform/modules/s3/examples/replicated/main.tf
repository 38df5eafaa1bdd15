# A market data bucket replicated to a second region and a WORM compliance bucket.
provider "aws" {
  region = "us-east-1"
}

provider "aws" {
  alias  = "replica"
  region = "us-west-2"
}

module "s3" {
  source = "../.."
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  name        = "example"
  kms_key_arn = var.kms_key_arn
  buckets = {
    market-data = { ia_after_days = 30, glacier_after_days = 180 }
    compliance  = { object_lock_years = 7, object_lock_governance = true }
  }
  enable_replication = true
}
