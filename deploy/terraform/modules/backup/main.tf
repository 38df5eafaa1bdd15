# Seed 001 asks for RPO 15 minutes and RTO 4 hours:
# - RPO: continuous backups of RDS and S3 restore to any second of the last
#   continuous_retention_days (RDS ships its transaction log every 5 minutes); S3
#   replication adds a second-region copy within 15 minutes (s3 module).
# - RTO: a point-in-time restore of the database takes well under an hour for our sizes,
#   and the daily copies in the replica region cover the loss of a whole region; the
#   restore steps are in deploy/terraform/README.md ("Restore").

data "aws_region" "replica" {
  provider = aws.replica
}

locals {
  create  = var.create
  replica = local.create && var.copy_to_replica_region
}

resource "aws_backup_vault" "this" {
  count = local.create ? 1 : 0

  name        = var.name
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}

resource "aws_backup_vault_lock_configuration" "this" {
  count = local.create && var.vault_lock_min_retention_days != null ? 1 : 0

  backup_vault_name  = aws_backup_vault.this[0].name
  min_retention_days = var.vault_lock_min_retention_days
  # Compliance mode after three days of grace to fix a mistake; then it is immutable.
  changeable_for_days = 3
}

resource "aws_backup_vault_notifications" "this" {
  count = local.create && var.enable_notifications ? 1 : 0

  backup_vault_name   = aws_backup_vault.this[0].name
  sns_topic_arn       = var.notification_topic_arn
  backup_vault_events = ["BACKUP_JOB_FAILED", "RESTORE_JOB_FAILED", "COPY_JOB_FAILED", "S3_BACKUP_OBJECT_FAILED"]
}

data "aws_iam_policy_document" "replica_kms" {
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  #checkov:skip=CKV_AWS_109:A KMS key policy's Resource "*" means the key itself; access is bounded by the principals and conditions.
  #checkov:skip=CKV_AWS_111:A KMS key policy's Resource "*" means the key itself; access is bounded by the principals and conditions.
  #checkov:skip=CKV_AWS_356:A KMS key policy's Resource "*" means the key itself; access is bounded by the principals and conditions.
}

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "replica" {
  count    = local.replica ? 1 : 0
  provider = aws.replica

  description             = "${var.name} backup copies (${data.aws_region.replica.region})"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.replica_kms.json
  tags                    = var.tags
}

resource "aws_backup_vault" "replica" {
  count    = local.replica ? 1 : 0
  provider = aws.replica

  name        = "${var.name}-replica"
  kms_key_arn = aws_kms_key.replica[0].arn
  tags        = var.tags
}

resource "aws_backup_plan" "this" {
  count = local.create ? 1 : 0

  name = var.name

  rule {
    rule_name                = "continuous"
    target_vault_name        = aws_backup_vault.this[0].name
    schedule                 = "cron(0 * ? * * *)"
    enable_continuous_backup = true
    start_window             = 60
    completion_window        = 180

    lifecycle {
      delete_after = var.continuous_retention_days
    }
  }

  rule {
    rule_name         = "daily"
    target_vault_name = aws_backup_vault.this[0].name
    schedule          = "cron(0 3 * * ? *)"
    start_window      = 60
    completion_window = 360

    lifecycle {
      delete_after       = var.daily_retention_days
      cold_storage_after = var.cold_storage_after_days
    }

    dynamic "copy_action" {
      for_each = local.replica ? [1] : []

      content {
        destination_vault_arn = aws_backup_vault.replica[0].arn

        lifecycle {
          delete_after = var.daily_retention_days
        }
      }
    }
  }

  tags = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["backup.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  count = local.create ? 1 : 0

  name               = "${var.name}-backup"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "this" {
  for_each = local.create ? toset([
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
  ]) : toset([])

  role       = aws_iam_role.this[0].name
  policy_arn = "arn:aws:iam::aws:policy/${each.value}"
}

resource "aws_backup_selection" "this" {
  count = local.create && length(var.resource_arns) > 0 ? 1 : 0

  name         = "${var.name}-resources"
  plan_id      = aws_backup_plan.this[0].id
  iam_role_arn = aws_iam_role.this[0].arn
  resources    = values(var.resource_arns)
}

# Anything tagged Backup = true is protected too, so that a resource added outside this
# list (a restored database, a new bucket) is never silently left out.
resource "aws_backup_selection" "tagged" {
  count = local.create ? 1 : 0

  name         = "${var.name}-tagged"
  plan_id      = aws_backup_plan.this[0].id
  iam_role_arn = aws_iam_role.this[0].arn
  resources    = ["*"]

  selection_tag {
    type  = "STRINGEQUALS"
    key   = "Backup"
    value = "true"
  }
}
