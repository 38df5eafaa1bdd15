# The cheapest VPC that still gives private subnets egress: two zones, one NAT instance
# (about $3 a month instead of $33 per NAT gateway).
provider "aws" {
  region = "us-east-1"
}

module "vpc" {
  source = "../.."

  name                     = "example"
  cidr                     = "10.20.0.0/16"
  azs                      = ["us-east-1a", "us-east-1b"]
  nat_mode                 = "instance"
  flow_logs_retention_days = 30
  tags                     = { Environment = "example" }
}
