terraform {
  # Environments pin patch ranges (modules only floors): a plan means the same everywhere.
  # 1.11: S3 native state locking (use_lockfile) is generally available.
  required_version = "~> 1.11.4"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.25.0"
    }
  }

  # Partial configuration: the bucket carries the account id, which the code must not
  # hard-code. Initialise an environment with
  #   scripts/deploy infra <env>   (scripts/lib/ops.sh tf_init passes bucket, key, region)
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
