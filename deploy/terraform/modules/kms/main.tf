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

  dynamic "statement" {
    for_each = length(each.value.service_principals) > 0 ? [1] : []

    content {
      sid = "AllowServicesOfThisAccount"
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
        identifiers = each.value.service_principals
      }

      # Services may only use the key for resources of this account (confused deputy).
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }
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
