# The three ways of running the event log, planned against mocked AWS APIs.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name        = "test"
  vpc_id      = "vpc-0123456789abcdef0"
  subnet_ids  = ["subnet-0000000000000000a", "subnet-0000000000000000b", "subnet-0000000000000000c"]
  kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  # The Secrets Manager key of the environment: MSK refuses SCRAM secrets under AWS managed keys.
  scram_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000001"
}

run "msk" {
  command = plan

  assert {
    condition     = output.mode == "msk" && length(output.broker_instance_ids) == 0
    error_message = "mode msk must not start EC2 brokers."
  }

  assert {
    condition     = output.security_protocol == "SASL_SSL" && length(aws_msk_single_scram_secret_association.this) == 1
    error_message = "MSK clients authenticate by SASL/SCRAM over TLS, with the credential associated to the cluster."
  }

  assert {
    condition     = startswith(aws_secretsmanager_secret.scram[0].name, "AmazonMSK_")
    error_message = "MSK only associates SCRAM secrets whose name starts with AmazonMSK_."
  }

  assert {
    condition     = aws_msk_cluster.this[0].client_authentication[0].sasl[0].scram == true && aws_msk_cluster.this[0].client_authentication[0].sasl[0].iam != true
    error_message = "MSK must offer SCRAM (librdkafka has no MSK IAM signer), not IAM only."
  }
}

run "msk_without_a_customer_key_is_refused" {
  command = plan

  variables {
    scram_kms_key_arn = null
  }

  expect_failures = [var.scram_kms_key_arn]
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

  assert {
    condition     = output.security_protocol == "PLAINTEXT" && output.scram_secret_arn == null
    error_message = "The self-hosted brokers listen in plaintext inside the VPC, without SCRAM."
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
