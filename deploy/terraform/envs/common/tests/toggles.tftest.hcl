# The cost switches and validations of the shared root (envs/common), planned against
# mocked AWS APIs. Each run starts from the defaults (production-shaped) and flips one thing.

mock_provider "aws" {
  source = "../../tests/mocks"
}

mock_provider "aws" {
  alias  = "replica"
  source = "../../tests/mocks"
}

variables {
  environment        = "dev"
  monthly_budget_usd = 1000
  alert_emails       = ["platform-alerts@quanttrader.example"]
  api_domain_name    = "api.dev.quanttrader.example"
}

run "defaults_are_highly_available" {
  command = plan

  assert {
    condition     = module.vpc.nat_gateway_count == 3
    error_message = "The default is one NAT gateway per zone."
  }

  assert {
    condition     = output.kafka_mode == "msk"
    error_message = "The default event log is MSK."
  }

  assert {
    condition     = module.kafka.security_protocol == "SASL_SSL"
    error_message = "MSK clients speak SASL/SCRAM over TLS (docs/secrets.md): the endpoints secret says SASL_SSL."
  }

  assert {
    condition     = module.eks.node_group_capacity_types == { general = "ON_DEMAND", trading = "ON_DEMAND" }
    error_message = "By default the general and trading groups exist, on demand, and the ml group does not."
  }
}

run "spot_never_reaches_the_trading_nodes" {
  command = plan

  variables {
    use_spot_instances = true
    enable_ml_nodes    = true
  }

  assert {
    condition     = module.eks.node_group_capacity_types == { general = "SPOT", trading = "ON_DEMAND", ml = "SPOT" }
    error_message = "use_spot_instances must move general and ml to Spot and leave trading on demand."
  }
}

run "single_nat_gateway" {
  command = plan

  variables {
    nat_mode = "single_gateway"
  }

  assert {
    condition     = module.vpc.nat_gateway_count == 1
    error_message = "single_gateway must create exactly one NAT gateway."
  }
}

run "nat_instance" {
  command = plan

  variables {
    nat_mode = "instance"
  }

  assert {
    condition     = module.vpc.nat_gateway_count == 0
    error_message = "nat_mode instance must create no NAT gateway."
  }
}

run "self_hosted_kafka" {
  command = plan

  variables {
    enable_msk               = false
    enable_self_hosted_kafka = true
    kafka_broker_count       = 3
  }

  assert {
    condition     = output.kafka_mode == "self_hosted" && length(module.kafka.broker_instance_ids) == 3
    error_message = "enable_self_hosted_kafka must run three brokers on EC2 instead of MSK."
  }

  assert {
    condition     = module.kafka.security_protocol == "PLAINTEXT" && output.kafka_scram_secret_arn == null
    error_message = "The self-hosted brokers are plaintext inside the VPC, with no SCRAM secret."
  }
}

run "no_kafka" {
  command = plan

  variables {
    enable_msk               = false
    enable_self_hosted_kafka = false
  }

  assert {
    condition     = output.kafka_mode == "none" && length(module.kafka.broker_instance_ids) == 0
    error_message = "With both Kafka switches off there is no event log to pay for."
  }
}

run "single_host_lab" {
  command = plan

  variables {
    environment              = "lab"
    monthly_budget_usd       = 30
    compute                  = "single_host"
    az_count                 = 1
    nat_mode                 = "none"
    enable_rds               = false
    enable_redis             = false
    enable_msk               = false
    enable_self_hosted_kafka = false
    enable_alb               = false
    enable_backup            = false
    enable_s3_replication    = false
    api_domain_name          = null
  }

  assert {
    condition     = output.cluster_name == null && length(module.eks.node_group_capacity_types) == 0
    error_message = "The single-host lab must not create an EKS cluster."
  }

  assert {
    condition     = module.vpc.nat_gateway_count == 0 && output.ingress_host == null
    error_message = "The lab has no NAT gateway and no load balancer."
  }
}

run "msk_and_self_hosted_kafka_are_exclusive" {
  command = plan

  variables {
    enable_msk               = true
    enable_self_hosted_kafka = true
  }

  expect_failures = [var.enable_self_hosted_kafka]
}

run "kubernetes_past_standard_support_is_refused" {
  command = plan

  variables {
    kubernetes_version = "1.28"
  }

  expect_failures = [var.kubernetes_version]
}

run "eks_needs_egress" {
  command = plan

  variables {
    nat_mode = "none"
  }

  expect_failures = [var.nat_mode]
}

run "the_load_balancer_needs_a_certificate_name" {
  command = plan

  variables {
    api_domain_name = null
  }

  expect_failures = [var.api_domain_name]
}

run "unknown_environment_is_refused" {
  command = plan

  variables {
    environment = "qa"
  }

  expect_failures = [var.environment]
}

run "the_replica_region_must_differ" {
  command = plan

  variables {
    replica_region = "us-east-1"
  }

  expect_failures = [var.replica_region]
}
