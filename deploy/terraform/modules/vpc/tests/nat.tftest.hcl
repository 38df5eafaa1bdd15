# NAT modes and subnet layout of the vpc module, planned against mocked AWS APIs.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name = "test"
  azs  = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

run "one_gateway_per_zone" {
  command = plan

  assert {
    condition     = output.nat_gateway_count == 3 && length(output.private_subnet_ids) == 3 && length(output.database_subnet_ids) == 3
    error_message = "gateway_per_az needs a NAT gateway and private and database subnets in every zone."
  }
}

run "single_gateway" {
  command = plan

  variables {
    nat_mode = "single_gateway"
  }

  assert {
    condition     = output.nat_gateway_count == 1
    error_message = "single_gateway must create one NAT gateway."
  }
}

run "nat_instance" {
  command = plan

  variables {
    nat_mode = "instance"
  }

  assert {
    condition     = output.nat_gateway_count == 0
    error_message = "nat_mode instance must not create NAT gateways."
  }
}

run "public_only" {
  command = plan

  variables {
    azs                    = ["us-east-1a"]
    create_private_subnets = false
  }

  assert {
    condition     = output.nat_gateway_count == 0 && length(output.private_subnet_ids) == 0 && length(output.public_subnet_ids) == 1
    error_message = "Without private subnets there is nothing to NAT."
  }
}

run "four_zones_are_refused" {
  command = plan

  variables {
    azs = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
  }

  expect_failures = [var.azs]
}

run "unknown_nat_mode_is_refused" {
  command = plan

  variables {
    nat_mode = "gateway"
  }

  expect_failures = [var.nat_mode]
}
