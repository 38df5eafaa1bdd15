# Seed 004's cheap event log: three KRaft brokers on EC2 instead of MSK.
provider "aws" {
  region = "us-east-1"
}

module "kafka" {
  source = "../.."

  mode           = "self_hosted"
  name           = "example"
  vpc_id         = var.vpc_id
  subnet_ids     = var.subnet_ids
  broker_count   = 3
  instance_type  = "t4g.medium"
  volume_size_gb = 50
  kms_key_arn    = var.kms_key_arn
}
