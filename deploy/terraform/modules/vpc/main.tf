data "aws_region" "current" {}

locals {
  create  = var.create
  az_keys = local.create ? { for i, az in var.azs : az => i } : {}
  private = local.create && var.create_private_subnets ? local.az_keys : {}

  # Public /24s at the bottom, database /24s from .10, private /20s from .16: room for
  # thousands of pods per AZ (the VPC CNI gives every pod a VPC address).
  public_cidrs   = [for i in range(length(var.azs)) : cidrsubnet(var.cidr, 8, i)]
  database_cidrs = [for i in range(length(var.azs)) : cidrsubnet(var.cidr, 8, 10 + i)]
  private_cidrs  = [for i in range(length(var.azs)) : cidrsubnet(var.cidr, 4, 1 + i)]

  nat_gateway_azs = !local.create || !var.create_private_subnets ? [] : (
    var.nat_mode == "gateway_per_az" ? var.azs : var.nat_mode == "single_gateway" ? [var.azs[0]] : []
  )
  nat_instance = local.create && var.create_private_subnets && var.nat_mode == "instance"
}

resource "aws_vpc" "this" {
  count = local.create ? 1 : 0

  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(var.tags, { Name = var.name })
}

# The default security group allows all traffic between its members; nothing should use it.
resource "aws_default_security_group" "this" {
  count = local.create ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name}-default-unused" })
}

resource "aws_internet_gateway" "this" {
  count = local.create ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  for_each = local.az_keys

  vpc_id            = aws_vpc.this[0].id
  availability_zone = each.key
  cidr_block        = local.public_cidrs[each.value]
  # Nothing gets a public address by accident; what needs one asks for it.
  map_public_ip_on_launch = false

  tags = merge(var.tags, {
    Name                     = "${var.name}-public-${each.key}"
    Tier                     = "public"
    "kubernetes.io/role/elb" = "1"
  })
}

resource "aws_subnet" "private" {
  for_each = local.private

  vpc_id            = aws_vpc.this[0].id
  availability_zone = each.key
  cidr_block        = local.private_cidrs[each.value]

  tags = merge(var.tags, {
    Name                              = "${var.name}-private-${each.key}"
    Tier                              = "private"
    "kubernetes.io/role/internal-elb" = "1"
    "karpenter.sh/discovery"          = var.name
  })
}

resource "aws_subnet" "database" {
  for_each = local.private

  vpc_id            = aws_vpc.this[0].id
  availability_zone = each.key
  cidr_block        = local.database_cidrs[each.value]

  tags = merge(var.tags, { Name = "${var.name}-database-${each.key}", Tier = "database" })
}

resource "aws_route_table" "public" {
  count = local.create ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  count = local.create ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public[0].id
}

# One private route table per AZ, so that each AZ can use its own NAT gateway.
resource "aws_route_table" "private" {
  for_each = local.private

  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name}-private-${each.key}" })
}

resource "aws_route_table_association" "private" {
  for_each = aws_subnet.private

  subnet_id      = each.value.id
  route_table_id = aws_route_table.private[each.key].id
}

# Databases never route to the internet.
resource "aws_route_table" "database" {
  count = length(local.private) > 0 ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name}-database" })
}

resource "aws_route_table_association" "database" {
  for_each = aws_subnet.database

  subnet_id      = each.value.id
  route_table_id = aws_route_table.database[0].id
}

resource "aws_eip" "nat" {
  for_each = toset(local.nat_gateway_azs)

  domain = "vpc"
  tags   = merge(var.tags, { Name = "${var.name}-nat-${each.key}" })
}

resource "aws_nat_gateway" "this" {
  for_each = toset(local.nat_gateway_azs)

  allocation_id = aws_eip.nat[each.key].id
  subnet_id     = aws_subnet.public[each.key].id
  tags          = merge(var.tags, { Name = "${var.name}-${each.key}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route" "private_nat_gateway" {
  for_each = length(local.nat_gateway_azs) > 0 ? local.private : {}

  route_table_id         = aws_route_table.private[each.key].id
  destination_cidr_block = "0.0.0.0/0"
  # Per-AZ mode uses the AZ's own gateway; single mode sends every AZ to the first one.
  nat_gateway_id = aws_nat_gateway.this[var.nat_mode == "gateway_per_az" ? each.key : local.nat_gateway_azs[0]].id
}

data "aws_ssm_parameter" "nat_ami" {
  count = local.nat_instance ? 1 : 0

  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

resource "aws_security_group" "nat" {
  count = local.nat_instance ? 1 : 0

  name        = "${var.name}-nat-instance"
  description = "NAT instance: forwards traffic from the VPC to the internet"
  vpc_id      = aws_vpc.this[0].id
  tags        = merge(var.tags, { Name = "${var.name}-nat-instance" })
}

resource "aws_vpc_security_group_ingress_rule" "nat_from_vpc" {
  count = local.nat_instance ? 1 : 0

  security_group_id = aws_security_group.nat[0].id
  description       = "Everything from inside the VPC, to be forwarded"
  cidr_ipv4         = var.cidr
  ip_protocol       = "-1"
}

resource "aws_vpc_security_group_egress_rule" "nat_to_internet" {
  count = local.nat_instance ? 1 : 0

  security_group_id = aws_security_group.nat[0].id
  description       = "Forwarded traffic to the internet"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_instance" "nat" {
  count = local.nat_instance ? 1 : 0

  ami                    = data.aws_ssm_parameter.nat_ami[0].value
  instance_type          = var.nat_instance_type
  subnet_id              = aws_subnet.public[var.azs[0]].id
  vpc_security_group_ids = [aws_security_group.nat[0].id]
  source_dest_check      = false
  #checkov:skip=CKV_AWS_88:A NAT instance needs a public address: that is its job.
  associate_public_ip_address = true
  monitoring                  = true
  ebs_optimized               = true
  #checkov:skip=CKV2_AWS_41:The NAT instance needs no AWS API access; an instance profile would only widen its rights.

  user_data_replace_on_change = true
  user_data                   = <<-EOT
    #!/bin/bash
    set -euo pipefail
    dnf install -y nftables
    echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat.conf
    sysctl --system
    iface="$(ip route show default | awk '{print $5; exit}')"
    nft add table ip nat
    nft add chain ip nat postrouting '{ type nat hook postrouting priority 100; }'
    nft add rule ip nat postrouting oifname "$iface" ip saddr ${var.cidr} masquerade
    nft list ruleset > /etc/sysconfig/nftables.conf
    systemctl enable --now nftables
  EOT

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  root_block_device {
    encrypted   = true
    volume_type = "gp3"
    volume_size = 8
  }

  tags = merge(var.tags, { Name = "${var.name}-nat-instance" })

  lifecycle {
    # A new AMI every week must not replace the instance (and cut egress) on every apply.
    ignore_changes = [ami]
  }
}

resource "aws_route" "private_nat_instance" {
  for_each = local.nat_instance ? local.private : {}

  route_table_id         = aws_route_table.private[each.key].id
  destination_cidr_block = "0.0.0.0/0"
  network_interface_id   = aws_instance.nat[0].primary_network_interface_id
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = local.create ? toset(["s3", "dynamodb"]) : toset([])

  vpc_id            = aws_vpc.this[0].id
  service_name      = "com.amazonaws.${data.aws_region.current.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids = concat(
    [for rt in aws_route_table.private : rt.id],
    aws_route_table.database[*].id,
    aws_route_table.public[*].id,
  )
  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_security_group" "endpoints" {
  count = length(local.private) > 0 && length(var.interface_endpoints) > 0 ? 1 : 0

  name        = "${var.name}-vpc-endpoints"
  description = "Interface endpoints: HTTPS from inside the VPC"
  vpc_id      = aws_vpc.this[0].id
  tags        = merge(var.tags, { Name = "${var.name}-vpc-endpoints" })
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  count = length(aws_security_group.endpoints)

  security_group_id = aws_security_group.endpoints[0].id
  description       = "HTTPS from the VPC"
  cidr_ipv4         = var.cidr
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_endpoint" "interface" {
  for_each = length(local.private) > 0 ? toset(var.interface_endpoints) : toset([])

  vpc_id              = aws_vpc.this[0].id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = [for s in aws_subnet.private : s.id]
  security_group_ids  = aws_security_group.endpoints[*].id
  tags                = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  count = local.create ? 1 : 0

  name              = "/aws/vpc/${var.name}/flow-logs"
  retention_in_days = var.flow_logs_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
  #checkov:skip=CKV_AWS_338:Retention is log_retention_days of the environment: 365 in prod, shorter in lab/dev/staging whose logs have no compliance value.
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  count = local.create ? 1 : 0

  name               = "${var.name}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "flow_logs" {
  count = local.create ? 1 : 0

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count = local.create ? 1 : 0

  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}

resource "aws_flow_log" "this" {
  count = local.create ? 1 : 0

  vpc_id               = aws_vpc.this[0].id
  traffic_type         = var.flow_logs_traffic_type
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn
  tags                 = var.tags
}
