locals {
  create = var.create
}

resource "aws_docdb_subnet_group" "this" {
  count = local.create ? 1 : 0

  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "this" {
  count = local.create ? 1 : 0

  name        = "${var.name}-docdb"
  description = "DocumentDB: only from the platform's workloads"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-docdb" })
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = local.create ? var.allowed_security_group_ids : {}

  security_group_id            = aws_security_group.this[0].id
  description                  = "DocumentDB from ${each.key}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 27017
  to_port                      = 27017
}

resource "aws_docdb_cluster_parameter_group" "this" {
  count = local.create ? 1 : 0

  name   = "${var.name}-docdb${replace(var.engine_version, ".", "-")}"
  family = "docdb${join(".", slice(split(".", var.engine_version), 0, 2))}"

  parameter {
    name  = "tls"
    value = "enabled"
  }

  parameter {
    name  = "audit_logs"
    value = "enabled"
  }

  parameter {
    name  = "profiler"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_docdb_cluster" "this" {
  count = local.create ? 1 : 0

  cluster_identifier              = var.name
  engine                          = "docdb"
  engine_version                  = var.engine_version
  master_username                 = "quanttrader_admin"
  manage_master_user_password     = true
  db_subnet_group_name            = aws_docdb_subnet_group.this[0].name
  db_cluster_parameter_group_name = aws_docdb_cluster_parameter_group.this[0].name
  vpc_security_group_ids          = [aws_security_group.this[0].id]
  storage_encrypted               = true
  kms_key_id                      = var.kms_key_arn
  backup_retention_period         = var.backup_retention_days
  preferred_backup_window         = "03:00-04:00"
  preferred_maintenance_window    = "sun:05:00-sun:06:00"
  enabled_cloudwatch_logs_exports = ["audit", "profiler"]
  deletion_protection             = var.deletion_protection
  skip_final_snapshot             = !var.deletion_protection
  final_snapshot_identifier       = var.deletion_protection ? "${var.name}-final" : null
  tags                            = var.tags
}

resource "aws_docdb_cluster_instance" "this" {
  count = local.create ? var.instance_count : 0

  identifier                 = "${var.name}-${count.index + 1}"
  cluster_identifier         = aws_docdb_cluster.this[0].id
  instance_class             = var.instance_class
  auto_minor_version_upgrade = true
  tags                       = var.tags
}
