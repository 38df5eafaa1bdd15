# Two data domains: one for databases, one for CloudWatch Logs (which must be named in the
# key policy to use the key).
provider "aws" {
  region = "us-east-1"
}

module "kms" {
  source = "../.."

  name = "example"
  domains = {
    data = { description = "Databases and their backups" }
    logs = {
      description        = "CloudWatch log groups"
      service_principals = ["logs.us-east-1.amazonaws.com"]
    }
  }
  deletion_window_in_days = 7
}
