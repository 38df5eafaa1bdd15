data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_region" "replica" {
  provider = aws.replica
}
data "aws_elb_service_account" "current" {}

locals {
  suffix   = "${data.aws_caller_identity.current.account_id}-${data.aws_region.current.region}"
  buckets  = var.create ? var.buckets : {}
  replicas = var.create && var.enable_replication ? { for k, v in var.buckets : k => v if v.replicate } : {}
  logs     = var.create ? 1 : 0
}

# ------------------------------------------------------------ access logs

# Server access logs and ALB access logs land here. ALB log delivery only supports SSE-S3,
# hence no KMS key on this one bucket.
resource "aws_s3_bucket" "logs" {
  count = local.logs

  bucket        = "${var.name}-access-logs-${local.suffix}"
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { Purpose = "access-logs" })
  #checkov:skip=CKV_AWS_145:ALB access log delivery supports SSE-S3 only, not SSE-KMS.
  #checkov:skip=CKV_AWS_18:This is the access log bucket; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Access logs are operational data, not worth a second region.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new log objects; they are read on demand.
}

resource "aws_s3_bucket_public_access_block" "logs" {
  count = local.logs

  bucket                  = aws_s3_bucket.logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  count = local.logs

  bucket = aws_s3_bucket.logs[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  count = local.logs

  bucket = aws_s3_bucket.logs[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  count = local.logs

  bucket = aws_s3_bucket.logs[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  count = local.logs

  bucket = aws_s3_bucket.logs[0].id

  rule {
    id     = "expire-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.access_log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "logs" {
  count = local.logs

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs[0].arn, "${aws_s3_bucket.logs[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs[0].arn}/s3/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "AlbAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs[0].arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]

    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }

  statement {
    sid       = "AlbAccessLogsDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs[0].arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  count = local.logs

  bucket = aws_s3_bucket.logs[0].id
  policy = data.aws_iam_policy_document.logs[0].json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# ----------------------------------------------------------- data buckets

resource "aws_s3_bucket" "this" {
  for_each = local.buckets

  bucket              = "${var.name}-${each.key}-${local.suffix}"
  object_lock_enabled = each.value.object_lock_years != null
  # A bucket under object lock cannot be emptied anyway; never force it.
  force_destroy = var.force_destroy && each.value.object_lock_years == null
  tags          = merge(var.tags, { Purpose = each.key })
  #checkov:skip=CKV2_AWS_62:No consumer reacts to new objects yet; add notifications with the first one.
  #checkov:skip=CKV_AWS_144:Replication is configured per bucket by aws_s3_bucket_replication_configuration (enable_replication).
  #checkov:skip=CKV_AWS_21:Checkov does not link for_each companion resources to a for_each bucket: aws_s3_bucket_versioning.this enables versioning on every bucket.
  #checkov:skip=CKV2_AWS_6:Checkov does not link for_each companion resources to a for_each bucket: aws_s3_bucket_public_access_block.this blocks public access on every bucket.
  #checkov:skip=CKV2_AWS_61:Checkov does not link for_each companion resources to a for_each bucket: aws_s3_bucket_lifecycle_configuration.this covers every bucket.
  #checkov:skip=CKV_AWS_18:Checkov does not link for_each companion resources to a for_each bucket: aws_s3_bucket_logging.this logs every bucket to the access log bucket.
  #checkov:skip=CKV_AWS_19:Checkov does not link for_each companion resources to a for_each bucket: aws_s3_bucket_server_side_encryption_configuration.this encrypts every bucket with KMS.
  #checkov:skip=CKV_AWS_145:Checkov does not link for_each companion resources to a for_each bucket: aws_s3_bucket_server_side_encryption_configuration.this uses the storage KMS key.
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One KMS request per bucket and hour instead of one per object: KMS costs drop ~99%.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "this" {
  for_each = aws_s3_bucket.this

  bucket        = each.value.id
  target_bucket = aws_s3_bucket.logs[0].id
  target_prefix = "s3/${each.key}/"
}

resource "aws_s3_bucket_object_lock_configuration" "this" {
  for_each = { for k, v in local.buckets : k => v if v.object_lock_years != null }

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    default_retention {
      mode  = each.value.object_lock_governance ? "GOVERNANCE" : "COMPLIANCE"
      years = each.value.object_lock_years
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    id     = "tiering"
    status = "Enabled"

    filter {}

    dynamic "transition" {
      for_each = var.buckets[each.key].ia_after_days == null ? [] : [var.buckets[each.key].ia_after_days]

      content {
        days          = transition.value
        storage_class = "STANDARD_IA"
      }
    }

    dynamic "transition" {
      for_each = var.buckets[each.key].glacier_after_days == null ? [] : [var.buckets[each.key].glacier_after_days]

      content {
        days          = transition.value
        storage_class = "GLACIER_IR"
      }
    }

    dynamic "expiration" {
      for_each = var.buckets[each.key].expire_after_days == null ? [] : [var.buckets[each.key].expire_after_days]

      content {
        days = expiration.value
      }
    }

    noncurrent_version_expiration {
      noncurrent_days = var.buckets[each.key].noncurrent_expire_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "this" {
  for_each = aws_s3_bucket.this

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  policy = data.aws_iam_policy_document.this[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# ------------------------------------------------------------ replication

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

resource "aws_kms_key" "replica" {
  count    = length(local.replicas) > 0 ? 1 : 0
  provider = aws.replica

  description             = "${var.name} replicated S3 data (${data.aws_region.replica.region})"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.replica_kms.json
  tags                    = var.tags
}

resource "aws_s3_bucket" "replica" {
  for_each = local.replicas
  provider = aws.replica

  bucket              = "${var.name}-${each.key}-${data.aws_caller_identity.current.account_id}-${data.aws_region.replica.region}"
  object_lock_enabled = each.value.object_lock_years != null
  tags                = merge(var.tags, { Purpose = each.key, Role = "replica" })
  #checkov:skip=CKV_AWS_144:This bucket is itself the cross-region replica.
  #checkov:skip=CKV_AWS_18:Only S3 replication writes here; CloudTrail records it.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to replicated objects.
}

resource "aws_s3_bucket_public_access_block" "replica" {
  for_each = aws_s3_bucket.replica
  provider = aws.replica

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "replica" {
  for_each = aws_s3_bucket.replica
  provider = aws.replica

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "replica" {
  for_each = aws_s3_bucket.replica
  provider = aws.replica

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.replica[0].arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_object_lock_configuration" "replica" {
  for_each = { for k, v in local.replicas : k => v if v.object_lock_years != null }
  provider = aws.replica

  bucket = aws_s3_bucket.replica[each.key].id

  rule {
    default_retention {
      mode  = each.value.object_lock_governance ? "GOVERNANCE" : "COMPLIANCE"
      years = each.value.object_lock_years
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "replica" {
  for_each = aws_s3_bucket.replica
  provider = aws.replica

  bucket = each.value.id

  rule {
    id     = "replica-tiering"
    status = "Enabled"

    filter {}

    transition {
      days          = local.replicas[each.key].replica_glacier_after_days
      storage_class = "GLACIER_IR"
    }

    noncurrent_version_expiration {
      noncurrent_days = local.replicas[each.key].noncurrent_expire_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "replication_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "replication" {
  count = length(local.replicas) > 0 ? 1 : 0

  name               = "${var.name}-s3-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "replication" {
  count = length(local.replicas) > 0 ? 1 : 0

  statement {
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [for k in keys(local.replicas) : aws_s3_bucket.this[k].arn]
  }

  statement {
    actions   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:GetObjectRetention", "s3:GetObjectLegalHold"]
    resources = [for k in keys(local.replicas) : "${aws_s3_bucket.this[k].arn}/*"]
  }

  statement {
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"]
    resources = [for b in aws_s3_bucket.replica : "${b.arn}/*"]
  }

  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.replica[0].arn]
  }
}

resource "aws_iam_role_policy" "replication" {
  count = length(local.replicas) > 0 ? 1 : 0

  name   = "replicate"
  role   = aws_iam_role.replication[0].id
  policy = data.aws_iam_policy_document.replication[0].json
}

resource "aws_s3_bucket_replication_configuration" "this" {
  for_each = local.replicas

  bucket = aws_s3_bucket.this[each.key].id
  role   = aws_iam_role.replication[0].arn

  rule {
    id       = "to-${data.aws_region.replica.region}"
    status   = "Enabled"
    priority = 1

    filter {}

    delete_marker_replication {
      status = "Enabled"
    }

    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }

    destination {
      bucket        = aws_s3_bucket.replica[each.key].arn
      storage_class = "STANDARD"

      encryption_configuration {
        replica_kms_key_id = aws_kms_key.replica[0].arn
      }

      # Replication Time Control: 99.99% of objects within 15 minutes, the seed's RPO.
      replication_time {
        status = "Enabled"

        time {
          minutes = 15
        }
      }

      metrics {
        status = "Enabled"

        event_threshold {
          minutes = 15
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this, aws_s3_bucket_versioning.replica]
}
