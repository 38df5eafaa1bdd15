# Bucket layout and input validation of the s3 module, planned against mocked AWS APIs.

mock_provider "aws" {
  source = "../../tests/mocks"
}

mock_provider "aws" {
  alias  = "replica"
  source = "../../tests/mocks"
}

variables {
  name        = "test"
  kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  buckets = {
    market-data = { ia_after_days = 30 }
    compliance  = { object_lock_years = 7 }
  }
}

run "replicated_by_default" {
  command = plan

  assert {
    condition     = toset(keys(output.bucket_names)) == toset(["market-data", "compliance"]) && length(output.replica_bucket_arns) == 2
    error_message = "Every bucket gets a replica in the second region by default."
  }
}

run "replication_off" {
  command = plan

  variables {
    enable_replication = false
  }

  assert {
    condition     = length(output.replica_bucket_arns) == 0
    error_message = "enable_replication = false must create no replica bucket."
  }
}

run "object_lock_beyond_ten_years_is_refused" {
  command = plan

  variables {
    buckets = { compliance = { object_lock_years = 99 } }
  }

  expect_failures = [var.buckets]
}

run "bucket_purpose_names_are_checked" {
  command = plan

  variables {
    buckets = { "Market_Data" = {} }
  }

  expect_failures = [var.buckets]
}
