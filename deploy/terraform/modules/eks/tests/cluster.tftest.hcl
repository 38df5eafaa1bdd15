# Node groups, Spot, endpoint access and version policy of the eks module, planned against
# mocked AWS APIs.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name                               = "test"
  subnet_ids                         = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  secrets_kms_key_arn                = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000001"
  ebs_kms_key_arn                    = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000002"
  external_secrets_secret_arn_prefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:quanttrader/test/*"
  external_secrets_kms_key_arn       = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000003"
  node_groups = {
    general = { instance_types = ["m7i.large"], min_size = 1, max_size = 3, desired_size = 2 }
    trading = {
      instance_types = ["c7i.large"], min_size = 1, max_size = 2, desired_size = 1, allow_spot = false
      taints         = [{ key = "quanttrader.io/trading", value = "true", effect = "NO_SCHEDULE" }]
    }
  }
}

run "on_demand_by_default_with_controller_roles" {
  command = plan

  assert {
    condition     = output.node_group_capacity_types == { general = "ON_DEMAND", trading = "ON_DEMAND" }
    error_message = "Without use_spot_instances every group runs on demand."
  }

  assert {
    condition     = toset(keys(output.pod_role_arns)) == toset(["aws-load-balancer-controller", "cluster-autoscaler", "external-secrets"])
    error_message = "The controllers get their Pod Identity roles."
  }
}

run "deletion_protection_defaults_on_and_can_be_turned_off" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this[0].deletion_protection == true
    error_message = "The cluster is protected unless the environment says otherwise."
  }
}

run "deletion_protection_off_for_non_prod" {
  command = plan

  variables {
    deletion_protection = false
  }

  assert {
    condition     = aws_eks_cluster.this[0].deletion_protection == false
    error_message = "deletion_protection = false must reach the cluster, or scripts/destroy cannot delete it."
  }
}

run "spot_respects_allow_spot" {
  command = plan

  variables {
    use_spot_instances = true
  }

  assert {
    condition     = output.node_group_capacity_types == { general = "SPOT", trading = "ON_DEMAND" }
    error_message = "Spot applies to groups that allow it only."
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create     = false
    subnet_ids = []
  }

  assert {
    condition     = length(output.node_group_capacity_types) == 0 && length(output.pod_role_arns) == 0
    error_message = "create = false must make the module a no-op."
  }
}

run "unsupported_version_is_refused" {
  command = plan

  variables {
    kubernetes_version = "1.28"
  }

  expect_failures = [var.kubernetes_version]
}

run "public_endpoint_open_to_the_world_is_refused" {
  command = plan

  variables {
    endpoint_public_access       = true
    endpoint_public_access_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.endpoint_public_access_cidrs]
}

run "one_zone_is_refused" {
  command = plan

  variables {
    subnet_ids = ["subnet-0000000000000000a"]
  }

  expect_failures = [var.subnet_ids]
}
