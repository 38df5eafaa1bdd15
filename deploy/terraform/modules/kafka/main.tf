locals {
  msk         = var.mode == "msk"
  self_hosted = var.mode == "self_hosted"
  any         = var.mode != "none"

  # Seed 004: acks=all needs replicas that can fail one at a time; snappy as the seed
  # asks, applied by the broker so that a producer without compression cannot bloat disk.
  min_isr = min(2, var.broker_count)
  rf      = min(3, var.broker_count)
  server_properties = {
    "auto.create.topics.enable"      = "false"
    "default.replication.factor"     = tostring(local.rf)
    "min.insync.replicas"            = tostring(local.min_isr)
    "num.partitions"                 = "3"
    "unclean.leader.election.enable" = "false"
    "log.retention.hours"            = tostring(var.retention_hours)
    "compression.type"               = "snappy"
    "message.max.bytes"              = "1048588"
  }
  # MSK: the SASL/SCRAM over TLS listener (librdkafka, and so the binary, cannot sign
  # MSK IAM requests). Self-hosted: the plaintext client listener inside the VPC.
  ports = local.msk ? [9096] : [9092, 9093]
}

resource "aws_security_group" "this" {
  count = local.any ? 1 : 0

  name        = "${var.name}-kafka"
  description = "Kafka brokers: clients of the platform and the brokers themselves"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-kafka" })
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = local.any ? { for p in setproduct(keys(var.allowed_security_group_ids), local.ports) : "${p[0]}-${p[1]}" => p } : {}

  security_group_id            = aws_security_group.this[0].id
  description                  = "Kafka from ${each.value[0]}"
  referenced_security_group_id = var.allowed_security_group_ids[each.value[0]]
  ip_protocol                  = "tcp"
  from_port                    = each.value[1]
  to_port                      = each.value[1]
}

resource "aws_vpc_security_group_ingress_rule" "brokers" {
  count = local.any ? 1 : 0

  security_group_id            = aws_security_group.this[0].id
  description                  = "Replication and controller traffic between brokers"
  referenced_security_group_id = aws_security_group.this[0].id
  ip_protocol                  = "tcp"
  from_port                    = 9092
  to_port                      = 9098
}

resource "aws_vpc_security_group_egress_rule" "self_hosted" {
  count = local.self_hosted ? 1 : 0

  security_group_id = aws_security_group.this[0].id
  description       = "Package and Kafka downloads at boot, SSM, CloudWatch"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "brokers" {
  count = local.self_hosted ? 1 : 0

  security_group_id            = aws_security_group.this[0].id
  description                  = "Replication and controller traffic between brokers"
  referenced_security_group_id = aws_security_group.this[0].id
  ip_protocol                  = "tcp"
  from_port                    = 9092
  to_port                      = 9093
}

resource "aws_cloudwatch_log_group" "this" {
  count = local.any ? 1 : 0

  name              = "/aws/kafka/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}

# ---------------------------------------------------------------- Amazon MSK

resource "aws_msk_configuration" "this" {
  count = local.msk ? 1 : 0

  name           = "${var.name}-${replace(var.kafka_version, ".", "-")}"
  kafka_versions = [var.kafka_version]
  description    = "QuantTrader brokers: 7-day retention, snappy, RF 3, min ISR 2"

  server_properties = join("\n", [for k, v in local.server_properties : "${k}=${v}"])

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_msk_cluster" "this" {
  count = local.msk ? 1 : 0

  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  enhanced_monitoring    = "PER_TOPIC_PER_BROKER"

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this[0].id]

    storage_info {
      ebs_storage_info {
        volume_size = var.volume_size_gb
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this[0].arn
    revision = aws_msk_configuration.this[0].latest_revision
  }

  # SASL/SCRAM-SHA-512 over TLS: what librdkafka speaks (it has no MSK IAM signer). The
  # credential is the AmazonMSK_ secret below, associated with the cluster.
  client_authentication {
    unauthenticated = false

    sasl {
      scram = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn

    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }

      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.this[0].name
      }
    }
  }

  tags = var.tags
}

# SCRAM credential of the platform. MSK requires the secret's name to start with
# AmazonMSK_ and a customer-managed KMS key; its JSON is {"username", "password"}.
data "aws_secretsmanager_random_password" "scram" {
  count = local.msk ? 1 : 0

  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "scram" {
  count = local.msk ? 1 : 0

  name                    = "AmazonMSK_${var.name}"
  description             = "SASL/SCRAM credential of the QuantTrader clients of MSK ${var.name}; read by External Secrets"
  kms_key_id              = var.scram_kms_key_arn
  recovery_window_in_days = var.scram_recovery_window_days
  tags                    = var.tags
  #checkov:skip=CKV2_AWS_57:MSK SCRAM credentials rotate by a deliberate apply (taint the version) followed by a restart of the pods; docs/secrets.md.
}

# The data source yields a fresh value on every plan; ignore_changes keeps the first one.
resource "aws_secretsmanager_secret_version" "scram" {
  count = local.msk ? 1 : 0

  secret_id = aws_secretsmanager_secret.scram[0].id
  secret_string = jsonencode({
    username = var.scram_username
    password = data.aws_secretsmanager_random_password.scram[0].random_password
  })

  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_msk_single_scram_secret_association" "this" {
  count = local.msk ? 1 : 0

  cluster_arn = aws_msk_cluster.this[0].arn
  secret_arn  = aws_secretsmanager_secret.scram[0].arn

  depends_on = [aws_secretsmanager_secret_version.scram]
}

# ------------------------------------------------------- Self-hosted on EC2

data "aws_ssm_parameter" "al2023" {
  count = local.self_hosted ? 1 : 0

  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${startswith(var.instance_type, "t4g") || can(regex("^[a-z][0-9]+g", var.instance_type)) ? "arm64" : "x86_64"}"
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "broker" {
  count = local.self_hosted ? 1 : 0

  name               = "${var.name}-kafka-broker"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

# Shell access through SSM only (no SSH keys, no port 22); logs to CloudWatch.
resource "aws_iam_role_policy_attachment" "broker" {
  for_each = local.self_hosted ? toset(["AmazonSSMManagedInstanceCore", "CloudWatchAgentServerPolicy"]) : toset([])

  role       = aws_iam_role.broker[0].name
  policy_arn = "arn:aws:iam::aws:policy/${each.value}"
}

# Each broker finds its peers by tag to build the KRaft quorum.
data "aws_iam_policy_document" "broker_discovery" {
  statement {
    actions   = ["ec2:DescribeInstances"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "broker_discovery" {
  count = local.self_hosted ? 1 : 0

  name   = "discover-peers"
  role   = aws_iam_role.broker[0].id
  policy = data.aws_iam_policy_document.broker_discovery.json
}

resource "aws_iam_instance_profile" "broker" {
  count = local.self_hosted ? 1 : 0

  name = "${var.name}-kafka-broker"
  role = aws_iam_role.broker[0].name
  tags = var.tags
}

resource "aws_instance" "broker" {
  count = local.self_hosted ? var.broker_count : 0

  ami                    = data.aws_ssm_parameter.al2023[0].value
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids = [aws_security_group.this[0].id]
  iam_instance_profile   = aws_iam_instance_profile.broker[0].name
  monitoring             = true
  ebs_optimized          = true

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  root_block_device {
    encrypted   = true
    kms_key_id  = var.kms_key_arn
    volume_type = "gp3"
    volume_size = 20
  }

  ebs_block_device {
    device_name = "/dev/sdf"
    encrypted   = true
    kms_key_id  = var.kms_key_arn
    volume_type = "gp3"
    volume_size = var.volume_size_gb
  }

  user_data_replace_on_change = false
  user_data = templatefile("${path.module}/kafka-broker.sh.tftpl", {
    node_id           = count.index + 1
    broker_count      = var.broker_count
    name              = var.name
    kafka_version     = var.kafka_version
    server_properties = local.server_properties
  })

  tags = merge(var.tags, { Name = "${var.name}-kafka-${count.index + 1}", "quanttrader.io/kafka-node-id" = tostring(count.index + 1) })

  lifecycle {
    # A newer AMI must not replace a broker (and its data) behind the operator's back.
    ignore_changes = [ami, user_data]
  }
}
