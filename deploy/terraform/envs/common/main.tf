# The whole platform of one environment, composed from ../modules. Every environment
# (envs/<env>) is this configuration with its own backend key and tfvars, so that dev,
# staging and prod differ only in values and the differences are reviewable in one file.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

data "aws_availability_zones" "available" {
  state = "available"

  # Local Zones and Wavelength Zones lack most of the services used here.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
  #checkov:skip=CKV_AWS_394:Only the first az_count zone names are used (slice); zones AWS adds get later letters, so the subnets never move.
}

# The HTTPS listener's certificate: issued out of band (DNS validation in the team's zone)
# and found by name, so that no account-specific ARN lives in the repository.
data "aws_acm_certificate" "api" {
  count = local.alb ? 1 : 0

  domain      = var.api_domain_name
  statuses    = ["ISSUED"]
  most_recent = true
}

locals {
  name       = "quanttrader-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  tags = merge(var.extra_tags, {
    Project     = "quanttrader"
    Environment = var.environment
    Owner       = var.owner
    ManagedBy   = "terraform"
    Repository  = "quanttrader/deploy/terraform/envs/${var.environment}"
  })

  azs = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  eks         = var.compute == "eks"
  single_host = var.compute == "single_host"
  alb         = local.eks && var.enable_alb
  kafka_mode  = var.enable_msk ? "msk" : var.enable_self_hosted_kafka ? "self_hosted" : "none"

  # Which clients may reach the data stores: the EKS nodes and pods, or the single host.
  client_security_group_ids = merge(
    local.eks ? { eks = module.eks.cluster_security_group_id } : {},
    local.single_host ? { single-host = module.single_host.security_group_id } : {},
  )

  # Gives the Auto Scaling service-linked role use of the EBS key: it launches the EKS
  # nodes, whose root volumes are encrypted with it, and cannot be granted through IAM.
  autoscaling_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

  node_groups = merge(
    {
      general = merge(var.general_node, {
        labels = { "quanttrader.io/pool" = "general" }
      })
      # The matching engine is single-threaded and latency-bound: compute-optimised,
      # on demand whatever use_spot_instances says, and tainted so nothing else lands there.
      trading = merge(var.trading_node, {
        allow_spot = false
        labels     = { "quanttrader.io/pool" = "trading" }
        taints     = [{ key = "quanttrader.io/trading", value = "true", effect = "NO_SCHEDULE" }]
      })
    },
    var.enable_ml_nodes ? {
      ml = merge(var.ml_node, {
        labels = { "quanttrader.io/pool" = "ml" }
        taints = [{ key = "quanttrader.io/ml", value = "true", effect = "NO_SCHEDULE" }]
      })
    } : {},
  )

  # Object storage of seed 001/003: market data (hot, then infrequent access, then
  # Glacier), models, backups, and the 7-year WORM compliance archive.
  buckets = {
    market-data = {
      ia_after_days      = 30
      glacier_after_days = 180
      replicate          = var.enable_s3_replication
    }
    models = {
      ia_after_days = 90
      replicate     = var.enable_s3_replication
    }
    backups = {
      glacier_after_days = 30
      expire_after_days  = 400
      replicate          = var.enable_s3_replication
    }
    compliance = {
      glacier_after_days = 90
      object_lock_years  = 7
      # Governance mode outside prod, so that a lab or dev account can still be closed.
      object_lock_governance = var.environment != "prod"
      replicate              = var.enable_s3_replication
    }
  }
}

# ------------------------------------------------------------------ keys

module "kms" {
  source = "../../modules/kms"

  name = local.name
  domains = {
    data = {
      description = "Databases, caches, event log and their backups"
      # AWS Backup copies and restores encrypted snapshots on behalf of the account.
      service_principals = ["backup.amazonaws.com"]
    }
    logs = {
      description        = "CloudWatch log groups and alarm topics"
      service_principals = ["logs.${local.region}.amazonaws.com", "sns.amazonaws.com", "cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
    }
    eks = {
      description    = "Kubernetes secrets envelope encryption and node volumes"
      aws_principals = local.eks ? [local.autoscaling_role_arn] : []
    }
    storage = {
      description        = "S3 buckets and container images"
      service_principals = ["s3.amazonaws.com"]
    }
    secrets = {
      description = "Secrets Manager secrets of the application"
    }
  }
  deletion_window_in_days = var.environment == "prod" ? 30 : 7
  tags                    = local.tags
}

# ------------------------------------------------------------------ network

module "vpc" {
  source = "../../modules/vpc"

  name                     = local.name
  cidr                     = var.vpc_cidr
  azs                      = local.azs
  create_private_subnets   = local.eks || var.enable_rds || var.enable_redis || local.kafka_mode != "none" || var.enable_documentdb
  nat_mode                 = var.nat_mode
  interface_endpoints      = var.interface_endpoints
  flow_logs_retention_days = var.log_retention_days
  logs_kms_key_arn         = module.kms.key_arns["logs"]
  tags                     = local.tags
}

# ------------------------------------------------------------------ compute

module "eks" {
  source = "../../modules/eks"

  create                             = local.eks
  name                               = local.name
  kubernetes_version                 = var.kubernetes_version
  deletion_protection                = var.deletion_protection
  subnet_ids                         = module.vpc.private_subnet_ids
  endpoint_public_access             = length(var.eks_public_endpoint_cidrs) > 0
  endpoint_public_access_cidrs       = var.eks_public_endpoint_cidrs
  secrets_kms_key_arn                = module.kms.key_arns["eks"]
  ebs_kms_key_arn                    = module.kms.key_arns["eks"]
  logs_kms_key_arn                   = module.kms.key_arns["logs"]
  log_retention_days                 = var.log_retention_days
  use_spot_instances                 = var.use_spot_instances
  node_groups                        = local.node_groups
  admin_role_arns                    = var.eks_admin_role_arns
  external_secrets_secret_arn_prefix = module.secrets.arn_prefix
  external_secrets_kms_key_arn       = module.kms.key_arns["secrets"]
  # Outside quanttrader/<environment>/*: the RDS-managed master secret (username,
  # password) and MSK's AmazonMSK_ SCRAM secret (docs/secrets.md).
  external_secrets_extra_secret_arns = compact([
    var.enable_rds ? module.rds.master_user_secret_arn : "",
    var.enable_msk ? module.kafka.scram_secret_arn : "",
  ])
  external_secrets_extra_kms_key_arns = var.enable_rds ? [module.kms.key_arns["data"]] : []
  tags                                = local.tags
}

module "single_host" {
  source = "../../modules/single-host"

  create                 = local.single_host
  name                   = local.name
  vpc_id                 = module.vpc.vpc_id
  subnet_id              = module.vpc.public_subnet_ids[0]
  instance_type          = var.single_host_instance_type
  use_spot               = var.single_host_use_spot
  image                  = "${module.ecr.repository_urls["quanttrader"]}:${var.image_tag}"
  ingress_cidrs          = var.single_host_ingress_cidrs
  admin_token_secret_arn = module.secrets.secret_arns["admin-token"]
  kms_key_arn            = module.kms.key_arns["data"]
  ecr_repository_arn     = module.ecr.repository_arns["quanttrader"]
  tags                   = local.tags
}

module "ecr" {
  source = "../../modules/ecr"

  repositories = ["quanttrader"]
  kms_key_arn  = module.kms.key_arns["storage"]
  tags         = local.tags
}

# ------------------------------------------------------------------ data

module "rds" {
  source = "../../modules/rds"

  create                     = var.enable_rds
  name                       = local.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.database_subnet_ids
  allowed_security_group_ids = local.client_security_group_ids
  instance_class             = var.rds_instance_class
  allocated_storage_gb       = var.rds_allocated_storage_gb
  multi_az                   = var.rds_multi_az
  read_replica_count         = var.rds_read_replicas
  backup_retention_days      = 30
  deletion_protection        = var.deletion_protection
  kms_key_arn                = module.kms.key_arns["data"]
  tags                       = local.tags
}

module "redis" {
  source = "../../modules/redis"

  create                     = var.enable_redis
  name                       = local.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.database_subnet_ids
  allowed_security_group_ids = local.client_security_group_ids
  node_type                  = var.redis_node_type
  num_cache_clusters         = var.redis_num_cache_clusters
  kms_key_arn                = module.kms.key_arns["data"]
  # Beside the other application secrets, readable by External Secrets.
  auth_token_secret_name = "quanttrader/${var.environment}/redis-auth-token"
  auth_token_kms_key_arn = module.kms.key_arns["secrets"]
  log_retention_days     = var.log_retention_days
  logs_kms_key_arn       = module.kms.key_arns["logs"]
  tags                   = local.tags
}

module "kafka" {
  source = "../../modules/kafka"

  mode                       = local.kafka_mode
  name                       = local.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.private_subnet_ids
  allowed_security_group_ids = local.client_security_group_ids
  broker_count               = var.kafka_broker_count
  instance_type              = var.enable_msk ? var.msk_instance_type : var.kafka_ec2_instance_type
  volume_size_gb             = var.kafka_volume_size_gb
  kms_key_arn                = module.kms.key_arns["data"]
  scram_kms_key_arn          = module.kms.key_arns["secrets"]
  scram_recovery_window_days = var.environment == "lab" ? 0 : 30
  log_retention_days         = var.log_retention_days
  logs_kms_key_arn           = module.kms.key_arns["logs"]
  tags                       = local.tags
}

module "documentdb" {
  source = "../../modules/documentdb"

  create                     = var.enable_documentdb
  name                       = local.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.database_subnet_ids
  allowed_security_group_ids = local.client_security_group_ids
  instance_class             = var.documentdb_instance_class
  instance_count             = var.documentdb_instance_count
  deletion_protection        = var.deletion_protection
  kms_key_arn                = module.kms.key_arns["data"]
  tags                       = local.tags
}

module "s3" {
  source = "../../modules/s3"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  name               = local.name
  buckets            = local.buckets
  kms_key_arn        = module.kms.key_arns["storage"]
  enable_replication = var.enable_s3_replication
  # Only a lab is torn down with its data; everywhere else emptying a bucket is a
  # deliberate act outside Terraform.
  force_destroy = var.environment == "lab"
  tags          = local.tags
}

module "secrets" {
  source = "../../modules/secrets"

  # The Helm chart reads quanttrader/<environment>/<entry> (deploy/helm/quanttrader).
  name              = "quanttrader/${var.environment}"
  generated_secrets = { admin-token = 48 }
  external_secrets  = var.external_secrets
  kms_key_arn       = module.kms.key_arns["secrets"]
  # A lab is rebuilt often; a pending deletion would block re-creating the same name.
  recovery_window_days = var.environment == "lab" ? 0 : 30
  tags                 = local.tags
}

# ------------------------------------------------------------------ edge

module "alb" {
  source = "../../modules/alb"

  create              = local.alb
  name                = local.name
  vpc_id              = module.vpc.vpc_id
  subnet_ids          = module.vpc.public_subnet_ids
  certificate_arn     = local.alb ? data.aws_acm_certificate.api[0].arn : null
  access_logs_bucket  = module.s3.access_logs_bucket
  deletion_protection = var.deletion_protection
  logs_kms_key_arn    = module.kms.key_arns["logs"]
  tags                = local.tags
}

# ------------------------------------------------------------------ operations

module "observability" {
  source = "../../modules/observability"

  name         = local.name
  alarm_emails = var.alert_emails
  kms_key_arn  = module.kms.key_arns["logs"]
  app_log_groups = {
    "/quanttrader/${var.environment}/application" = var.log_retention_days
    # Seed 001: the audit trail of orders and trades is kept seven years.
    "/quanttrader/${var.environment}/audit" = 2557
  }
  enable_alb_alarms          = local.alb
  enable_rds_alarms          = var.enable_rds
  enable_redis_alarms        = var.enable_redis
  enable_msk_alarms          = local.kafka_mode == "msk"
  alb_arn_suffix             = local.alb ? module.alb.arn_suffix : null
  target_group_arn_suffix    = local.alb ? module.alb.target_group_arn_suffix : null
  rds_instance_id            = var.enable_rds ? module.rds.identifier : null
  redis_replication_group_id = var.enable_redis ? module.redis.replication_group_id : null
  msk_cluster_name           = local.kafka_mode == "msk" ? module.kafka.cluster_name : null
  tags                       = local.tags
}

module "budgets" {
  source = "../../modules/budgets"

  name               = local.name
  monthly_budget_usd = var.monthly_budget_usd
  # default_tags put Environment on every resource; activate it as a cost allocation tag.
  cost_filter_tags = { Environment = var.environment }
  alert_topic_arn  = module.observability.alarm_topic_arn
  alert_emails     = var.alert_emails
  tags             = local.tags
}

module "backup" {
  source = "../../modules/backup"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  create      = var.enable_backup
  name        = local.name
  kms_key_arn = module.kms.key_arns["data"]
  # Keys known at plan time (the ARNs are not): the backup selections count on them. The
  # compliance bucket is left out: object lock already makes it immutable.
  resource_arns = merge(
    var.enable_rds ? { rds = module.rds.arn } : {},
    var.enable_documentdb ? { documentdb = module.documentdb.arn } : {},
    { for k, arn in module.s3.bucket_arns : "s3-${k}" => arn if k != "compliance" },
  )
  copy_to_replica_region        = var.enable_s3_replication
  vault_lock_min_retention_days = var.backup_vault_lock_days
  enable_notifications          = true
  notification_topic_arn        = module.observability.alarm_topic_arn
  tags                          = local.tags
}

# ------------------------------------------------------------------ connection facts

# Where the application finds its data stores, as one JSON secret beside the credentials
# (quanttrader/<environment>/endpoints). The Helm chart's ExternalSecrets build
# QT_DATABASE__URL, QT_REDIS__URL, QT_KAFKA__BROKERS and QT_KAFKA__SECURITY_PROTOCOL from its
# properties plus the credential secrets (RDS-managed master secret, redis-auth-token,
# AmazonMSK_ SCRAM secret): the contract is docs/secrets.md. Empty strings where a store is
# switched off (External Secrets cannot template a JSON null).
resource "aws_secretsmanager_secret" "endpoints" {
  name                    = "quanttrader/${var.environment}/endpoints"
  description             = "Host names and ports of the data stores (no credentials)"
  kms_key_id              = module.kms.key_arns["secrets"]
  recovery_window_in_days = var.environment == "lab" ? 0 : 30
  tags                    = local.tags
  #checkov:skip=CKV2_AWS_57:It holds addresses, not credentials: nothing to rotate; Terraform rewrites it when an address changes.
}

resource "aws_secretsmanager_secret_version" "endpoints" {
  secret_id = aws_secretsmanager_secret.endpoints.id
  secret_string = jsonencode({
    database_host           = var.enable_rds ? module.rds.address : ""
    database_port           = var.enable_rds ? "5432" : ""
    database_name           = var.enable_rds ? "quanttrader" : ""
    database_secret_arn     = var.enable_rds ? module.rds.master_user_secret_arn : ""
    redis_host              = var.enable_redis ? module.redis.primary_endpoint : ""
    redis_port              = var.enable_redis ? "6379" : ""
    kafka_mode              = local.kafka_mode
    kafka_bootstrap         = module.kafka.bootstrap_brokers != null ? module.kafka.bootstrap_brokers : ""
    kafka_security_protocol = module.kafka.security_protocol != null ? module.kafka.security_protocol : ""
    kafka_scram_secret_arn  = module.kafka.scram_secret_arn != null ? module.kafka.scram_secret_arn : ""
  })
}
