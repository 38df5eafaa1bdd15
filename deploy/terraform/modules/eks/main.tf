data "aws_partition" "current" {}

locals {
  create = var.create
  arn    = data.aws_partition.current.partition
  policy = "arn:${local.arn}:iam::aws:policy"

  node_groups = local.create ? var.node_groups : {}

  # Controllers installed by Argo CD (deploy/k8s) get their AWS rights through EKS Pod
  # Identity: no OIDC provider, no role ARN annotations, one trust policy for all.
  controllers = local.create ? {
    aws-load-balancer-controller = {
      namespace       = "kube-system"
      service_account = "aws-load-balancer-controller"
      policy_json     = file("${path.module}/policies/aws-load-balancer-controller.json")
    }
    cluster-autoscaler = {
      namespace       = "kube-system"
      service_account = "cluster-autoscaler"
      policy_json     = data.aws_iam_policy_document.cluster_autoscaler.json
    }
    external-secrets = {
      namespace       = "external-secrets"
      service_account = "external-secrets"
      policy_json     = data.aws_iam_policy_document.external_secrets.json
    }
  } : {}
  pod_roles = merge(local.controllers, local.create ? var.workload_roles : {})

  addon_policies = {
    vpc-cni            = "AmazonEKS_CNI_Policy"
    aws-ebs-csi-driver = "service-role/AmazonEBSCSIDriverPolicy"
  }
}

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  count = local.create ? 1 : 0

  name               = "${var.name}-eks-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  count = local.create ? 1 : 0

  role       = aws_iam_role.cluster[0].name
  policy_arn = "${local.policy}/AmazonEKSClusterPolicy"
}

# Created before the cluster so that its retention and key apply from the first line.
resource "aws_cloudwatch_log_group" "cluster" {
  count = local.create ? 1 : 0

  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
  #checkov:skip=CKV_AWS_338:Retention is log_retention_days of the environment: 365 in prod, shorter in lab/dev/staging whose logs have no compliance value.
}

resource "aws_eks_cluster" "this" {
  count = local.create ? 1 : 0

  name                          = var.name
  version                       = var.kubernetes_version
  role_arn                      = aws_iam_role.cluster[0].arn
  enabled_cluster_log_types     = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  bootstrap_self_managed_addons = false
  deletion_protection           = var.deletion_protection

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
    public_access_cidrs     = var.endpoint_public_access ? var.endpoint_public_access_cidrs : null
  }

  # Access entries only: the aws-auth ConfigMap is deprecated and invisible to IAM audits.
  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = false
  }

  encryption_config {
    resources = ["secrets"]

    provider {
      key_arn = var.secrets_kms_key_arn
    }
  }

  # Standard support only: extended support costs six times the control plane fee.
  upgrade_policy {
    support_type = "STANDARD"
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
  #checkov:skip=CKV_AWS_39:The public endpoint is off unless endpoint_public_access is set, and then open only to endpoint_public_access_cidrs, never 0.0.0.0/0 (envs turn it on only when eks_public_endpoint_cidrs is not empty).
}

resource "aws_eks_access_entry" "admin" {
  for_each = local.create ? toset(var.admin_role_arns) : toset([])

  cluster_name  = aws_eks_cluster.this[0].name
  principal_arn = each.value
  tags          = var.tags
}

resource "aws_eks_access_policy_association" "admin" {
  for_each = aws_eks_access_entry.admin

  cluster_name  = aws_eks_cluster.this[0].name
  principal_arn = each.value.principal_arn
  policy_arn    = "arn:${local.arn}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  count = local.create ? 1 : 0

  name               = "${var.name}-eks-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
  tags               = var.tags
}

# No CNI policy here: the VPC CNI gets its rights through Pod Identity (below), so a pod
# that escapes to the node cannot rewrite the network.
resource "aws_iam_role_policy_attachment" "node" {
  for_each = local.create ? toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
  ]) : toset([])

  role       = aws_iam_role.node[0].name
  policy_arn = "${local.policy}/${each.value}"
}

resource "aws_launch_template" "node" {
  for_each = local.node_groups

  name_prefix            = "${var.name}-${each.key}-"
  update_default_version = true

  # Hop limit 1: pods cannot reach the node's instance metadata (and its role); they use
  # Pod Identity instead.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = each.value.disk_size_gb
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.ebs_kms_key_arn
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name}-${each.key}" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = "${var.name}-${each.key}" })
  }

  tags = var.tags
}

resource "aws_eks_node_group" "this" {
  for_each = local.node_groups

  cluster_name    = aws_eks_cluster.this[0].name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node[0].arn
  subnet_ids      = var.subnet_ids
  instance_types  = each.value.instance_types
  ami_type        = each.value.ami_type
  capacity_type   = var.use_spot_instances && each.value.allow_spot ? "SPOT" : "ON_DEMAND"
  labels          = merge(each.value.labels, { "quanttrader.io/node-group" = each.key })

  scaling_config {
    min_size     = each.value.min_size
    max_size     = each.value.max_size
    desired_size = each.value.desired_size
  }

  update_config {
    max_unavailable_percentage = 33
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  dynamic "taint" {
    for_each = each.value.taints

    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = merge(var.tags, {
    "k8s.io/cluster-autoscaler/enabled"     = "true"
    "k8s.io/cluster-autoscaler/${var.name}" = "owned"
  })

  lifecycle {
    # The cluster autoscaler owns the size between min and max.
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

data "aws_iam_policy_document" "pod_identity_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "cluster_autoscaler" {
  statement {
    sid = "Describe"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
      "eks:DescribeNodegroup",
    ]
    resources = ["*"]
  }

  # Only the groups of this cluster can be resized.
  statement {
    sid       = "ScaleOwnGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.name}"
      values   = ["owned"]
    }
  }
  #checkov:skip=CKV_AWS_356:Describe* calls support no resource-level permissions; the two write actions are bound to groups tagged for this cluster.
}

data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid       = "ReadPlatformSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"]
    resources = [var.external_secrets_secret_arn_prefix]
  }

  statement {
    sid       = "DecryptPlatformSecrets"
    actions   = ["kms:Decrypt"]
    resources = concat([var.external_secrets_kms_key_arn], var.external_secrets_extra_kms_key_arns)
  }

  # Secrets that AWS services name themselves (the RDS-managed master password).
  dynamic "statement" {
    for_each = length(var.external_secrets_extra_secret_arns) > 0 ? [1] : []

    content {
      sid       = "ReadServiceManagedSecrets"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = var.external_secrets_extra_secret_arns
    }
  }
}

resource "aws_iam_role" "pod" {
  for_each = local.pod_roles

  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "pod" {
  for_each = local.pod_roles

  name   = each.key
  role   = aws_iam_role.pod[each.key].id
  policy = each.value.policy_json
}

resource "aws_eks_pod_identity_association" "pod" {
  for_each = local.pod_roles

  cluster_name    = aws_eks_cluster.this[0].name
  namespace       = each.value.namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.pod[each.key].arn
  tags            = var.tags
}

# Add-ons whose controllers call AWS get a role of their own, bound through Pod Identity.
resource "aws_iam_role" "addon" {
  for_each = local.create ? local.addon_policies : {}

  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "addon" {
  for_each = aws_iam_role.addon

  role       = each.value.name
  policy_arn = "${local.policy}/${local.addon_policies[each.key]}"
}

data "aws_iam_policy_document" "ebs_csi_kms" {
  statement {
    actions   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"]
    resources = [var.ebs_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "ebs_csi_kms" {
  count = local.create ? 1 : 0

  name   = "encrypt-volumes"
  role   = aws_iam_role.addon["aws-ebs-csi-driver"].id
  policy = data.aws_iam_policy_document.ebs_csi_kms.json
}

locals {
  addons = local.create ? {
    eks-pod-identity-agent = { service_account = null, before_nodes = true }
    vpc-cni                = { service_account = "aws-node", before_nodes = true }
    kube-proxy             = { service_account = null, before_nodes = true }
    coredns                = { service_account = null, before_nodes = false }
    aws-ebs-csi-driver     = { service_account = "ebs-csi-controller-sa", before_nodes = false }
    metrics-server         = { service_account = null, before_nodes = false }
  } : {}
}

# Networking add-ons go in before the nodes, or the nodes never become Ready.
resource "aws_eks_addon" "before_nodes" {
  for_each = { for k, v in local.addons : k => v if v.before_nodes }

  cluster_name                = aws_eks_cluster.this[0].name
  addon_name                  = each.key
  addon_version               = lookup(var.addon_versions, each.key, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"

  dynamic "pod_identity_association" {
    for_each = each.value.service_account == null ? [] : [each.value.service_account]

    content {
      role_arn        = aws_iam_role.addon[each.key].arn
      service_account = pod_identity_association.value
    }
  }

  tags = var.tags
}

resource "aws_eks_addon" "after_nodes" {
  for_each = { for k, v in local.addons : k => v if !v.before_nodes }

  cluster_name                = aws_eks_cluster.this[0].name
  addon_name                  = each.key
  addon_version               = lookup(var.addon_versions, each.key, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"

  dynamic "pod_identity_association" {
    for_each = each.value.service_account == null ? [] : [each.value.service_account]

    content {
      role_arn        = aws_iam_role.addon[each.key].arn
      service_account = pod_identity_association.value
    }
  }

  tags = var.tags

  depends_on = [aws_eks_node_group.this]
}
