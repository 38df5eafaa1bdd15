//! Topic administration: creates the topics of the topology from the configuration, and is
//! idempotent when they exist.
//!
//! An existing topic is never altered (Kafka's AlterConfigs resets every setting not given,
//! and adding partitions would move symbols between matching shards): fewer partitions than
//! configured is an error, other differences of the managed settings are reported as drift.

use crate::{topic, BusError, KafkaConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What [`ensure_topics`] found or did for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicReport {
    pub topic: String,
    pub created: bool,
    pub partitions: i32,
    /// `(setting, actual, wanted)` for the managed settings that differ on an existing topic.
    pub drift: Vec<(String, String, String)>,
}

fn managed_settings(cfg: &KafkaConfig) -> Vec<(&'static str, String)> {
    vec![
        ("retention.ms", cfg.retention_ms.to_string()),
        ("compression.type", cfg.compression.clone()),
        ("min.insync.replicas", cfg.min_insync_replicas.to_string()),
        // Acknowledged data must never be lost to an out-of-sync leader.
        ("unclean.leader.election.enable", "false".into()),
        ("cleanup.policy", "delete".into()),
    ]
}

/// Creates every topic of [`topic::ALL`] that is missing; checks those that exist; then
/// waits until every partition has a leader, so that producers and readers started right
/// after do not fail with "not leader" while the controller is still electing.
pub async fn ensure_topics(cfg: &KafkaConfig) -> Result<Vec<TopicReport>, BusError> {
    cfg.validate()?;
    let mut cc = cfg.client_config("admin");
    cfg.apply_extra(&mut cc);
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(cc.create()?);
    let opts = AdminOptions::new().operation_timeout(Some(cfg.request_timeout()));
    let names: Vec<String> = topic::ALL.iter().map(|t| cfg.topic(t)).collect();
    let settings = managed_settings(cfg);
    let new_topics: Vec<NewTopic<'_>> = topic::ALL
        .iter()
        .zip(&names)
        .map(|(short, full)| {
            let mut t = NewTopic::new(full, cfg.partitions_of(short), TopicReplication::Fixed(cfg.replication_factor));
            for (k, v) in &settings {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    let results = admin.create_topics(&new_topics, &opts).await?;
    let mut reports = Vec::with_capacity(names.len());
    for (result, short) in results.into_iter().zip(topic::ALL) {
        let wanted = cfg.partitions_of(short);
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions = wanted, "created kafka topic");
                reports.push(TopicReport { topic: name, created: true, partitions: wanted, drift: vec![] });
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                reports.push(check_existing(&admin, cfg, &name, wanted, &opts).await?);
            }
            Err((name, code)) => return Err(BusError::Topic { topic: name, code }),
        }
    }
    wait_for_leaders(&admin, cfg, &reports).await?;
    Ok(reports)
}

/// Metadata round trips happen on the blocking pool: librdkafka's call blocks its thread.
async fn metadata(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    topic: Option<String>,
    timeout: Duration,
) -> Result<rdkafka::metadata::Metadata, BusError> {
    let admin = Arc::clone(admin);
    tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(topic.as_deref(), timeout))
        .await
        .map_err(|e| BusError::Task(e.to_string()))?
        .map_err(BusError::from)
}

async fn wait_for_leaders(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    cfg: &KafkaConfig,
    reports: &[TopicReport],
) -> Result<(), BusError> {
    let deadline = Instant::now() + cfg.request_timeout();
    loop {
        let md = metadata(admin, None, cfg.request_timeout()).await?;
        let ready = reports.iter().all(|r| {
            md.topics().iter().any(|t| {
                t.name() == r.topic
                    && t.error().is_none()
                    && i32::try_from(t.partitions().len()).is_ok_and(|n| n >= r.partitions)
                    && t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0)
            })
        });
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(BusError::Timeout(cfg.request_timeout(), "waiting for partition leaders"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn check_existing(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    cfg: &KafkaConfig,
    name: &str,
    wanted: i32,
    opts: &AdminOptions,
) -> Result<TopicReport, BusError> {
    let md = metadata(admin, Some(name.to_string()), cfg.request_timeout()).await?;
    let actual = md
        .topics()
        .iter()
        .find(|t| t.name() == name)
        .map_or(0, |t| i32::try_from(t.partitions().len()).unwrap_or(i32::MAX));
    if actual < wanted {
        return Err(BusError::PartitionMismatch { topic: name.to_string(), actual, wanted });
    }
    let described = admin.describe_configs([&ResourceSpecifier::Topic(name)], opts).await?;
    let mut drift = Vec::new();
    if let Some(Ok(resource)) = described.first() {
        for (key, want) in managed_settings(cfg) {
            let have = resource.get(key).and_then(|e| e.value.clone()).unwrap_or_default();
            if have != want {
                drift.push((key.to_string(), have, want));
            }
        }
    }
    if !drift.is_empty() {
        tracing::warn!(topic = %name, ?drift, "kafka topic settings differ from the configuration");
    }
    Ok(TopicReport { topic: name.to_string(), created: false, partitions: actual, drift })
}
