# Plans the environment with its own terraform.tfvars against mocked AWS APIs: every
# resource, module input, toggle and validation of the environment is evaluated without
# credentials. Shared by every envs/<env>/tests (a symlink to this directory).

mock_provider "aws" {
  source = "../../tests/mocks"
}

mock_provider "aws" {
  alias  = "replica"
  source = "../../tests/mocks"
}

run "plan" {
  command = plan

  assert {
    condition     = output.environment == var.environment
    error_message = "The plan is not of the environment its tfvars name."
  }

  assert {
    condition     = var.environment != "prod" || (var.deletion_protection && var.enable_backup && var.rds_multi_az && var.az_count == 3)
    error_message = "prod must keep deletion protection, backups, Multi-AZ databases and three zones."
  }

  assert {
    condition     = var.environment != "prod" || !var.use_spot_instances
    error_message = "prod runs on demand: a reclaimed node must never halt trading or the risk checks."
  }

  assert {
    condition     = var.compute == "eks" ? length(module.eks.node_group_capacity_types) >= 2 : length(module.eks.node_group_capacity_types) == 0
    error_message = "An EKS environment needs at least the general and trading node groups."
  }

  assert {
    condition     = var.compute == "eks" ? module.eks.node_group_capacity_types["trading"] == "ON_DEMAND" : true
    error_message = "The trading node group must stay on demand whatever use_spot_instances says."
  }
}
