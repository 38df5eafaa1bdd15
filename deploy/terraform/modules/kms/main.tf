data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  domains = var.create ? var.domains : {}
  root    = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

data "aws_iam_policy_document" "this" {
  for_each = local.domains

  # The account keeps full control through IAM, so that a broken key policy can never lock
  # the key away from its owners.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.root]
    }
  }

  # One statement per service, each bound to this account: CloudWatch Logs through the
  # encryption context it always sends, every other service through aws:SourceAccount.
  dynamic "statement" {
    for_each = each.value.service_principals

    content {
      sid = "Service${join("", [for p in split(".", statement.value) : title(p)])}"
      actions = [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
        "kms:CreateGrant",
      ]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = [statement.value]
      }

      condition {
        test     = startswith(statement.value, "logs.") ? "ArnLike" : "StringEquals"
        variable = startswith(statement.value, "logs.") ? "kms:EncryptionContext:aws:logs:arn" : "aws:SourceAccount"
        values = [startswith(statement.value, "logs.")
          ? "arn:${data.aws_partition.current.partition}:logs:*:${data.aws_caller_identity.current.account_id}:*"
        : data.aws_caller_identity.current.account_id]
      }
    }
  }

  # IAM principals that cannot be given rights through IAM policies of their own, such as
  # the Auto Scaling service-linked role that launches EKS nodes with encrypted volumes.
  dynamic "statement" {
    for_each = length(each.value.aws_principals) > 0 ? [1] : []

    content {
      sid = "AllowServiceLinkedRoles"
      actions = [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
        "kms:CreateGrant",
      ]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = each.value.aws_principals
      }
    }
  }
  #checkov:skip=CKV_AWS_109:A KMS key policy's Resource "*" means the key itself; access is bounded by the principals and conditions.
  #checkov:skip=CKV_AWS_111:A KMS key policy's Resource "*" means the key itself; access is bounded by the principals and conditions.
  #checkov:skip=CKV_AWS_356:A KMS key policy's Resource "*" means the key itself; access is bounded by the principals and conditions.
}

resource "aws_kms_key" "this" {
  for_each = local.domains

  description             = each.value.description
  enable_key_rotation     = true
  rotation_period_in_days = var.rotation_period_in_days
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.this[each.key].json

  tags = merge(var.tags, { Name = "${var.name}-${each.key}", DataDomain = each.key })
}

resource "aws_kms_alias" "this" {
  for_each = local.domains

  name          = "alias/${var.name}/${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}
