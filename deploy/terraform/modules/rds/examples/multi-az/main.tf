# PostgreSQL 17 with a Multi-AZ standby and one read replica.
provider "aws" {
  region = "us-east-1"
}

module "rds" {
  source = "../.."

  name               = "example"
  vpc_id             = var.vpc_id
  subnet_ids         = var.subnet_ids
  instance_class     = "db.t4g.medium"
  multi_az           = true
  read_replica_count = 1
  kms_key_arn        = var.kms_key_arn
}
