//! The monthly cost of an environment: one line per billed item, each with the quantity
//! and unit price it was computed from, so that a reviewer can check any figure by hand.
//!
//! The formulas follow what `envs/common/main.tf` creates for the given variables
//! (e.g. the trading node group never runs on Spot, NAT exists only when private subnets
//! do). Charges that depend on traffic use the usage assumptions of the price table.

use serde::Serialize;

use crate::inputs::{NodeGroup, Settings};
use crate::prices::{PriceError, PriceTable, Usage};

/// Root volume of an EKS node (the eks module's `disk_size_gb` default).
const EKS_NODE_DISK_GB: f64 = 50.0;
/// Root volume of a self-hosted Kafka broker and of the single host (their modules).
const HOST_ROOT_GB: f64 = 20.0;
/// Data volume of the single host (the single-host module's default).
const SINGLE_HOST_DATA_GB: f64 = 10.0;
/// NAT instance type and root volume (the vpc module's defaults).
const NAT_INSTANCE_TYPE: &str = "t4g.nano";
const NAT_INSTANCE_ROOT_GB: f64 = 8.0;
/// KMS keys: one per data domain of envs/common/main.tf.
const KMS_DOMAINS: f64 = 5.0;
/// WAF: the alb module's four AWS managed rule groups plus the rate limit.
const WAF_RULES: f64 = 5.0;
/// The application log groups of the observability module that keep logs 7 years.
const AUDIT_RETENTION_DAYS: f64 = 2557.0;

/// One billed item.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    pub component: &'static str,
    pub item: String,
    pub quantity: f64,
    pub unit: String,
    pub unit_usd: f64,
    pub monthly_usd: f64,
}

/// The estimate of one environment.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub environment: String,
    pub region: String,
    pub lines: Vec<Line>,
    pub components: Vec<(String, f64)>,
    pub total_usd: f64,
    pub budget_usd: f64,
    pub within_budget: bool,
}

struct Builder<'a> {
    prices: &'a PriceTable,
    hours: f64,
    lines: Vec<Line>,
}

impl Builder<'_> {
    /// A line of `quantity` × the price under `key`.
    fn add(
        &mut self,
        component: &'static str,
        item: impl Into<String>,
        quantity: f64,
        key: &str,
    ) -> Result<(), PriceError> {
        let unit_usd = self.prices.get(key)?;
        if quantity > 0.0 {
            let unit = self.prices.prices.get(key).map(|p| p.unit.clone()).unwrap_or_default();
            self.lines.push(Line {
                component,
                item: item.into(),
                quantity,
                unit,
                unit_usd,
                monthly_usd: quantity * unit_usd,
            });
        }
        Ok(())
    }

    /// `count` resources billed by the hour for the whole month.
    fn hourly(
        &mut self,
        component: &'static str,
        item: impl Into<String>,
        count: f64,
        key: &str,
    ) -> Result<(), PriceError> {
        self.add(component, item, count * self.hours, key)
    }

    /// Like `hourly`, at the Spot price when `spot`.
    fn instances(
        &mut self,
        component: &'static str,
        item: &str,
        count: f64,
        instance_type: &str,
        spot: bool,
    ) -> Result<(), PriceError> {
        let key = format!("ec2:{instance_type}");
        let on_demand = self.prices.get(&key)?;
        if count <= 0.0 {
            return Ok(());
        }
        let (factor, label) = if spot { (self.prices.spot.price_factor, "Spot") } else { (1.0, "on demand") };
        let quantity = count * self.hours;
        self.lines.push(Line {
            component,
            item: format!("{item}: {count} x {instance_type} ({label})"),
            quantity,
            unit: "instance-hour".into(),
            unit_usd: on_demand * factor,
            monthly_usd: quantity * on_demand * factor,
        });
        Ok(())
    }
}

fn node_group(b: &mut Builder<'_>, name: &str, group: &NodeGroup, spot: bool) -> Result<(), PriceError> {
    // Cluster Autoscaler keeps the desired size at rest; the first listed type is the one
    // a managed node group launches first.
    let instance_type = group
        .instance_types
        .first()
        .ok_or_else(|| PriceError::Unknown(format!("{name} node group has no instance type")))?;
    let count = f64::from(group.desired_size);
    b.instances("eks", &format!("{name} nodes"), count, instance_type, spot)?;
    b.add(
        "eks",
        format!("{name} node volumes ({EKS_NODE_DISK_GB} GB gp3 each)"),
        count * EKS_NODE_DISK_GB,
        "ebs:gp3-gb",
    )
}

/// Computes the estimate of `s` with `prices`.
pub fn estimate(s: &Settings, prices: &PriceTable) -> Result<Estimate, PriceError> {
    let usage: &Usage = prices.usage(&s.environment)?;
    let mut b = Builder { prices, hours: prices.hours_per_month, lines: Vec::new() };
    let eks = s.compute == "eks";
    let single_host = s.compute == "single_host";
    let kafka = if s.enable_msk {
        "msk"
    } else if s.enable_self_hosted_kafka {
        "self_hosted"
    } else {
        "none"
    };
    let azs = f64::from(s.az_count);
    let private_subnets = eks || s.enable_rds || s.enable_redis || kafka != "none" || s.enable_documentdb;
    let alb = eks && s.enable_alb;

    // ---------------------------------------------------------------- network
    let nat_gateways = match (private_subnets, s.nat_mode.as_str()) {
        (true, "gateway_per_az") => azs,
        (true, "single_gateway") => 1.0,
        _ => 0.0,
    };
    let nat_instance = private_subnets && s.nat_mode == "instance";
    b.hourly("network", "NAT gateways", nat_gateways, "vpc:nat-gateway")?;
    if nat_gateways > 0.0 {
        b.add("network", "NAT gateway data processed (assumed)", usage.nat_processed_gb, "vpc:nat-gateway-gb")?;
    }
    if nat_instance {
        b.instances("network", "NAT instance", 1.0, NAT_INSTANCE_TYPE, false)?;
        b.add("network", "NAT instance volume", NAT_INSTANCE_ROOT_GB, "ebs:gp3-gb")?;
    }
    let endpoints = if private_subnets { s.interface_endpoints.len() as f64 } else { 0.0 };
    b.hourly(
        "network",
        format!("interface endpoints ({endpoints} services x {azs} AZs)"),
        endpoints * azs,
        "vpc:interface-endpoint",
    )?;
    if endpoints > 0.0 {
        b.add(
            "network",
            "interface endpoint data processed (assumed)",
            usage.endpoint_processed_gb,
            "vpc:interface-endpoint-gb",
        )?;
    }
    let public_ips = nat_gateways
        + if nat_instance { 1.0 } else { 0.0 }
        + if single_host { 1.0 } else { 0.0 }
        + if alb { azs } else { 0.0 };
    b.hourly("network", "public IPv4 addresses", public_ips, "vpc:public-ipv4")?;
    b.add(
        "network",
        "data transfer out to the internet (assumed)",
        usage.data_transfer_out_gb,
        "ec2:data-transfer-out-gb",
    )?;

    // ---------------------------------------------------------------- compute
    if eks {
        b.hourly("eks", "control plane", 1.0, "eks:cluster")?;
        node_group(&mut b, "general", &s.general_node, s.use_spot_instances)?;
        // The trading group never runs on Spot (envs/common/main.tf).
        node_group(&mut b, "trading", &s.trading_node, false)?;
        if s.enable_ml_nodes {
            node_group(&mut b, "ml", &s.ml_node, s.use_spot_instances)?;
        }
    }
    if single_host {
        b.instances(
            "compute",
            "single host (quanttrader run)",
            1.0,
            &s.single_host_instance_type,
            s.single_host_use_spot,
        )?;
        b.add("compute", "single host volumes (root + data, gp3)", HOST_ROOT_GB + SINGLE_HOST_DATA_GB, "ebs:gp3-gb")?;
    }
    b.add("compute", "container images (ECR, assumed)", usage.ecr_stored_gb, "ecr:storage-gb")?;

    // ---------------------------------------------------------------- data
    if s.enable_rds {
        let key = format!("rds:{}", s.rds_instance_class);
        let copies = if s.rds_multi_az { 2.0 } else { 1.0 };
        let replicas = f64::from(s.rds_read_replicas);
        b.hourly(
            "postgresql",
            format!(
                "{} ({})",
                s.rds_instance_class,
                if s.rds_multi_az { "Multi-AZ: primary + standby" } else { "Single-AZ" }
            ),
            copies,
            &key,
        )?;
        b.hourly("postgresql", format!("read replicas ({replicas} x {})", s.rds_instance_class), replicas, &key)?;
        b.add(
            "postgresql",
            format!("storage ({} GB gp3, every copy)", s.rds_allocated_storage_gb),
            s.rds_allocated_storage_gb * (copies + replicas),
            "rds:gp3-gb",
        )?;
    }
    if s.enable_redis {
        b.hourly(
            "redis",
            format!("{} x {} nodes", s.redis_num_cache_clusters, s.redis_node_type),
            f64::from(s.redis_num_cache_clusters),
            &format!("elasticache:{}", s.redis_node_type),
        )?;
    }
    let brokers = f64::from(s.kafka_broker_count);
    match kafka {
        "msk" => {
            b.hourly(
                "kafka",
                format!("MSK brokers ({brokers} x {})", s.msk_instance_type),
                brokers,
                &format!("msk:{}", s.msk_instance_type),
            )?;
            b.add(
                "kafka",
                format!("MSK storage ({} GB per broker)", s.kafka_volume_size_gb),
                brokers * s.kafka_volume_size_gb,
                "msk:storage-gb",
            )?;
        }
        "self_hosted" => {
            b.instances("kafka", "self-hosted brokers", brokers, &s.kafka_ec2_instance_type, false)?;
            b.add(
                "kafka",
                format!("broker volumes ({HOST_ROOT_GB} GB root + {} GB data each)", s.kafka_volume_size_gb),
                brokers * (HOST_ROOT_GB + s.kafka_volume_size_gb),
                "ebs:gp3-gb",
            )?;
        }
        _ => {}
    }
    if s.enable_documentdb {
        b.hourly(
            "documentdb",
            format!("{} x {} instances", s.documentdb_instance_count, s.documentdb_instance_class),
            f64::from(s.documentdb_instance_count),
            &format!("docdb:{}", s.documentdb_instance_class),
        )?;
        b.add("documentdb", "storage (assumed)", usage.docdb_storage_gb, "docdb:storage-gb")?;
        b.add("documentdb", "I/O (assumed)", usage.docdb_io_million, "docdb:io-million")?;
    }

    // ---------------------------------------------------------------- edge
    if alb {
        b.hourly("edge", "application load balancer", 1.0, "elb:alb")?;
        b.hourly(
            "edge",
            format!("load balancer capacity units ({} LCU, assumed)", usage.alb_lcu),
            usage.alb_lcu,
            "elb:alb-lcu",
        )?;
        b.add("edge", "WAF web ACL", 1.0, "waf:web-acl")?;
        b.add("edge", "WAF rules", WAF_RULES, "waf:rule")?;
        b.add("edge", "WAF requests (assumed)", usage.waf_requests_million, "waf:requests-million")?;
    }

    // ---------------------------------------------------------------- storage
    let s3_copies = if s.enable_s3_replication { 2.0 } else { 1.0 };
    b.add(
        "storage",
        if s.enable_s3_replication {
            format!("S3 data (assumed {} GB, and its replica)", usage.s3_stored_gb)
        } else {
            format!("S3 data (assumed {} GB)", usage.s3_stored_gb)
        },
        usage.s3_stored_gb * s3_copies,
        "s3:standard-gb",
    )?;
    if s.enable_s3_replication {
        b.add("storage", "S3 cross-region replication transfer (assumed)", usage.s3_changed_gb, "s3:replication-gb")?;
    }

    // ---------------------------------------------------------------- security
    let backup_replica_key = if s.enable_backup && s.enable_s3_replication { 1.0 } else { 0.0 };
    b.add("security", "KMS customer managed keys", KMS_DOMAINS + backup_replica_key, "kms:key")?;
    b.add("security", "KMS requests (assumed)", usage.kms_requests_10k, "kms:requests-10k")?;
    let secrets = 2.0 // admin-token, endpoints
        + s.external_secrets.len() as f64
        + if s.enable_redis { 1.0 } else { 0.0 } // auth token
        + if s.enable_rds { 1.0 } else { 0.0 } // RDS-managed master secret
        + if s.enable_documentdb { 1.0 } else { 0.0 };
    b.add("security", "Secrets Manager secrets", secrets, "secretsmanager:secret")?;

    // ---------------------------------------------------------------- observability
    // Metrics per alarm: the 5xx-rate alarm is metric math over two metrics.
    let alarm_metrics = if alb { 4.0 } else { 0.0 }
        + if s.enable_rds { 2.0 } else { 0.0 }
        + if s.enable_redis { 1.0 } else { 0.0 }
        + if kafka == "msk" { 2.0 } else { 0.0 };
    b.add("observability", "CloudWatch alarm metrics", alarm_metrics, "cloudwatch:alarm-metric")?;
    b.add(
        "observability",
        "log ingestion: flow logs, control plane, application (assumed)",
        usage.log_ingest_gb,
        "cloudwatch:logs-ingest-gb",
    )?;
    // At steady state a log group holds retention/30 months of ingestion; the audit
    // group (a tenth of the volume) keeps 7 years.
    let stored_gb = usage.log_ingest_gb * 0.9 * (s.log_retention_days / 30.0)
        + usage.log_ingest_gb * 0.1 * (AUDIT_RETENTION_DAYS / 30.0);
    b.add("observability", "log storage at steady state", stored_gb, "cloudwatch:logs-storage-gb")?;

    // ---------------------------------------------------------------- backup
    if s.enable_backup {
        let copies = if s.enable_s3_replication { 2.0 } else { 1.0 };
        if s.enable_rds {
            b.add(
                "backup",
                "RDS backups in AWS Backup (and their replica region copy, if any)",
                s.rds_allocated_storage_gb * copies,
                "backup:rds-gb",
            )?;
        }
        b.add(
            "backup",
            "S3 backups (and their replica region copy, if any)",
            usage.s3_stored_gb * copies,
            "backup:s3-gb",
        )?;
        if copies > 1.0 {
            b.add(
                "backup",
                "cross-region copy transfer (assumed changed data)",
                usage.s3_changed_gb,
                "backup:cross-region-gb",
            )?;
        }
    }

    let mut components: Vec<(String, f64)> = Vec::new();
    for line in &b.lines {
        match components.iter_mut().find(|(c, _)| c == line.component) {
            Some((_, sum)) => *sum += line.monthly_usd,
            None => components.push((line.component.to_owned(), line.monthly_usd)),
        }
    }
    let total_usd: f64 = b.lines.iter().map(|l| l.monthly_usd).sum();
    Ok(Estimate {
        environment: s.environment.clone(),
        region: prices.region.clone(),
        lines: b.lines,
        components,
        total_usd,
        budget_usd: s.monthly_budget_usd,
        within_budget: total_usd <= s.monthly_budget_usd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::DEFAULT_TABLE;

    /// Settings of a small EKS environment; tests change what they look at.
    fn base() -> Settings {
        serde_json::from_value(serde_json::json!({
            "environment": "dev",
            "monthly_budget_usd": 1000,
            "az_count": 2,
            "nat_mode": "single_gateway",
            "interface_endpoints": [],
            "compute": "eks",
            "use_spot_instances": false,
            "general_node": {"instance_types": ["m7i.large"], "min_size": 1, "max_size": 3, "desired_size": 2},
            "trading_node": {"instance_types": ["c7i.large"], "min_size": 1, "max_size": 1, "desired_size": 1},
            "enable_ml_nodes": false,
            "ml_node": {"instance_types": ["r7i.large"], "min_size": 0, "max_size": 1, "desired_size": 1},
            "single_host_instance_type": "t4g.small",
            "single_host_use_spot": false,
            "enable_rds": true,
            "rds_instance_class": "db.t4g.micro",
            "rds_multi_az": false,
            "rds_read_replicas": 0,
            "rds_allocated_storage_gb": 20,
            "enable_redis": true,
            "redis_node_type": "cache.t4g.micro",
            "redis_num_cache_clusters": 1,
            "enable_msk": false,
            "enable_self_hosted_kafka": true,
            "kafka_broker_count": 1,
            "msk_instance_type": "kafka.m7g.large",
            "kafka_ec2_instance_type": "t4g.small",
            "kafka_volume_size_gb": 20,
            "enable_documentdb": false,
            "documentdb_instance_class": "db.t4g.medium",
            "documentdb_instance_count": 1,
            "external_secrets": {},
            "enable_alb": true,
            "enable_s3_replication": false,
            "enable_backup": false,
            "log_retention_days": 30
        }))
        .unwrap()
    }

    fn prices() -> PriceTable {
        PriceTable::parse(DEFAULT_TABLE).unwrap()
    }

    fn component(e: &Estimate, name: &str) -> f64 {
        e.components.iter().find(|(c, _)| c == name).map_or(0.0, |(_, v)| *v)
    }

    #[test]
    fn the_eks_control_plane_costs_73_dollars() {
        let e = estimate(&base(), &prices()).unwrap();
        let line = e.lines.iter().find(|l| l.item == "control plane").unwrap();
        assert!((line.monthly_usd - 73.0).abs() < 1e-9);
    }

    #[test]
    fn total_is_the_sum_of_lines_and_of_components() {
        let e = estimate(&base(), &prices()).unwrap();
        let lines: f64 = e.lines.iter().map(|l| l.monthly_usd).sum();
        let comps: f64 = e.components.iter().map(|(_, v)| v).sum();
        assert!((e.total_usd - lines).abs() < 1e-6);
        assert!((e.total_usd - comps).abs() < 1e-6);
    }

    #[test]
    fn spot_lowers_general_nodes_but_never_trading_nodes() {
        let on_demand = estimate(&base(), &prices()).unwrap();
        let mut s = base();
        s.use_spot_instances = true;
        let spot = estimate(&s, &prices()).unwrap();
        assert!(component(&spot, "eks") < component(&on_demand, "eks"));
        let trading = |e: &Estimate| e.lines.iter().find(|l| l.item.starts_with("trading nodes")).unwrap().monthly_usd;
        assert_eq!(trading(&spot), trading(&on_demand));
        assert!(spot.lines.iter().any(|l| l.item.starts_with("trading nodes") && l.item.contains("on demand")));
    }

    #[test]
    fn msk_costs_more_than_self_hosted_kafka_and_none_costs_nothing() {
        let mut msk = base();
        msk.enable_msk = true;
        msk.enable_self_hosted_kafka = false;
        msk.kafka_broker_count = 3;
        let mut own = base();
        own.kafka_broker_count = 3;
        let mut none = base();
        none.enable_self_hosted_kafka = false;
        let p = prices();
        let k = |s: &Settings| component(&estimate(s, &p).unwrap(), "kafka");
        assert!(k(&msk) > k(&own));
        assert_eq!(k(&none), 0.0);
    }

    #[test]
    fn nat_modes_order_by_cost() {
        let p = prices();
        let network = |mode: &str| {
            let mut s = base();
            s.az_count = 3;
            s.nat_mode = mode.into();
            component(&estimate(&s, &p).unwrap(), "network")
        };
        assert!(network("gateway_per_az") > network("single_gateway"));
        assert!(network("single_gateway") > network("instance"));
        assert!(network("instance") > network("none"));
    }

    #[test]
    fn multi_az_doubles_the_database() {
        let p = prices();
        let mut s = base();
        let single = component(&estimate(&s, &p).unwrap(), "postgresql");
        s.rds_multi_az = true;
        let multi = component(&estimate(&s, &p).unwrap(), "postgresql");
        assert!((multi - 2.0 * single).abs() < 1e-6);
    }

    #[test]
    fn a_single_host_lab_has_no_cluster_nat_or_load_balancer() {
        let mut s = base();
        s.environment = "lab".into();
        s.compute = "single_host".into();
        s.nat_mode = "none".into();
        s.enable_rds = false;
        s.enable_redis = false;
        s.enable_self_hosted_kafka = false;
        s.monthly_budget_usd = 30.0;
        let e = estimate(&s, &prices()).unwrap();
        assert_eq!(component(&e, "eks"), 0.0);
        assert_eq!(component(&e, "edge"), 0.0);
        assert!(!e.lines.iter().any(|l| l.item.contains("NAT")));
        assert!(e.within_budget, "lab estimate {} over $30", e.total_usd);
    }

    #[test]
    fn over_budget_is_reported() {
        let mut s = base();
        s.monthly_budget_usd = 10.0;
        let e = estimate(&s, &prices()).unwrap();
        assert!(!e.within_budget);
    }

    #[test]
    fn an_unpriced_instance_type_fails_instead_of_costing_nothing() {
        let mut s = base();
        s.general_node.instance_types = vec!["x99.huge".into()];
        assert!(matches!(
            estimate(&s, &prices()),
            Err(PriceError::Unknown(ref k)) if k == "ec2:x99.huge"
        ));
    }

    /// The repository's own environments and scenarios load and are priced completely.
    #[test]
    fn every_environment_of_the_repository_is_priced() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/terraform");
        let variables = root.join("envs/common/variables.tf");
        let p = prices();
        for env in ["lab", "dev", "staging", "prod"] {
            let tfvars = root.join("envs").join(env).join("terraform.tfvars");
            let s = crate::inputs::load(&variables, &tfvars).unwrap();
            assert_eq!(s.environment, env);
            let e = estimate(&s, &p).unwrap();
            assert!(e.total_usd > 0.0);
        }
        let lab = crate::inputs::load(&variables, &root.join("envs/lab/terraform.tfvars")).unwrap();
        assert!(lab.monthly_budget_usd <= 30.0, "seed 002: the lab must stay under $30");
    }
}
