# The three ways of running the event log, planned against mocked AWS APIs.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name        = "test"
  vpc_id      = "vpc-0123456789abcdef0"
  subnet_ids  = ["subnet-0000000000000000a", "subnet-0000000000000000b", "subnet-0000000000000000c"]
  kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
}

run "msk" {
  command = plan

  assert {
    condition     = output.mode == "msk" && length(output.broker_instance_ids) == 0
    error_message = "mode msk must not start EC2 brokers."
  }
}

run "self_hosted" {
  command = plan

  variables {
    mode          = "self_hosted"
    instance_type = "t4g.medium"
  }

  assert {
    condition     = length(output.broker_instance_ids) == 3
    error_message = "mode self_hosted must start one broker per requested count."
  }
}

run "none" {
  command = plan

  variables {
    mode = "none"
  }

  assert {
    condition     = length(output.broker_instance_ids) == 0 && output.cluster_arn == null
    error_message = "mode none must create nothing."
  }
}

run "unknown_mode_is_refused" {
  command = plan

  variables {
    mode = "kinesis"
  }

  expect_failures = [var.mode]
}
