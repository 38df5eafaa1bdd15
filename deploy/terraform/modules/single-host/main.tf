locals {
  create = var.create
  arch   = can(regex("^[a-z][0-9]+g", var.instance_type)) ? "arm64" : "x86_64"
}

data "aws_ssm_parameter" "al2023" {
  count = local.create ? 1 : 0

  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${local.arch}"
}

data "aws_region" "current" {}

resource "aws_security_group" "this" {
  count = local.create ? 1 : 0

  name        = "${var.name}-host"
  description = "Lab host: the API on 8080 from the operator only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-host" })
}

resource "aws_vpc_security_group_ingress_rule" "api" {
  for_each = local.create ? toset(var.ingress_cidrs) : toset([])

  security_group_id = aws_security_group.this[0].id
  description       = "QuantTrader API and WebSocket from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 8080
  to_port           = 8080
}

resource "aws_vpc_security_group_egress_rule" "https" {
  count = local.create ? 1 : 0

  security_group_id = aws_security_group.this[0].id
  description       = "ECR, SSM, Secrets Manager, CloudWatch, package updates"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  count = local.create ? 1 : 0

  name               = "${var.name}-host"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = local.create ? 1 : 0

  role       = aws_iam_role.this[0].name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "host" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid       = "AdminToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.admin_token_secret_arn]
  }

  statement {
    sid       = "Decrypt"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "host" {
  count = local.create ? 1 : 0

  name   = "run-quanttrader"
  role   = aws_iam_role.this[0].id
  policy = data.aws_iam_policy_document.host.json
}

resource "aws_iam_instance_profile" "this" {
  count = local.create ? 1 : 0

  name = "${var.name}-host"
  role = aws_iam_role.this[0].name
  tags = var.tags
}

resource "aws_instance" "this" {
  count = local.create ? 1 : 0

  ami                    = data.aws_ssm_parameter.al2023[0].value
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.this[0].id]
  iam_instance_profile   = aws_iam_instance_profile.this[0].name
  #checkov:skip=CKV_AWS_88:The lab host has no NAT gateway to hide behind (that alone would triple the lab's cost); its security group admits only the operator.
  associate_public_ip_address = true
  monitoring                  = false
  #checkov:skip=CKV_AWS_126:Detailed monitoring costs more than the lab's whole compute; 5-minute metrics are enough.
  ebs_optimized = true

  dynamic "instance_market_options" {
    for_each = var.use_spot ? [1] : []

    content {
      market_type = "spot"

      spot_options {
        instance_interruption_behavior = "stop"
        spot_instance_type             = "persistent"
      }
    }
  }

  metadata_options {
    http_tokens                 = "required"
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 2
  }

  root_block_device {
    encrypted   = true
    kms_key_id  = var.kms_key_arn
    volume_type = "gp3"
    volume_size = 20
  }

  ebs_block_device {
    device_name           = "/dev/sdf"
    encrypted             = true
    kms_key_id            = var.kms_key_arn
    volume_type           = "gp3"
    volume_size           = var.data_volume_gb
    delete_on_termination = false
    tags                  = merge(var.tags, { Name = "${var.name}-data", Backup = "true" })
  }

  user_data_replace_on_change = false
  user_data = templatefile("${path.module}/host.sh.tftpl", {
    image        = var.image
    region       = data.aws_region.current.region
    registry     = split("/", var.image)[0]
    admin_secret = var.admin_token_secret_arn
  })

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    ignore_changes = [ami]
  }
}
