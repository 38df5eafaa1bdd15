//! The consumer-lag gauge `qt_kafka_consumer_lag{group,topic,partition}`: for each
//! partition a consumer fetches, its high watermark minus the consumer's position.
//!
//! Contract:
//! - Computed from librdkafka's statistics (`statistics.interval.ms`, every
//!   [`LAG_STATS_INTERVAL_MS`] unless `kafka.extra` sets it), which librdkafka gathers from
//!   the fetch responses it already gets: no broker round trip of its own. The statistics
//!   are delivered by the consumer's own poll (a JSON document of a few KB parsed every few
//!   seconds), so the gauge moves only while the consumer is polled; a consumer stuck
//!   outside its poll keeps its last value.
//! - Position: the offset after the last record handed to the application (`app_offset`),
//!   else the committed offset, else the fetch position (`next_offset`); high watermark:
//!   `hi_offset`. Only partitions in the `active` fetch state are reported; a partition
//!   this process stopped fetching (revoked in a rebalance) is set to 0 once, so that a
//!   stale value does not keep an alert firing.
//! - The `group` label is the consumer group (namespaced like the topics), or the name the
//!   caller gives an assigned consumer that joins no group.

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// How often librdkafka computes the statistics the gauge comes from, unless
/// `kafka.extra` sets `statistics.interval.ms`.
pub const LAG_STATS_INTERVAL_MS: u32 = 5_000;

/// Enables the statistics the gauge needs on a consumer's configuration (before the
/// caller applies `extra`, which may change the interval).
pub fn enable_lag_stats(c: &mut rdkafka::ClientConfig) {
    c.set("statistics.interval.ms", LAG_STATS_INTERVAL_MS.to_string());
}

/// A consumer context that turns librdkafka's statistics into `qt_kafka_consumer_lag`.
#[derive(Debug)]
pub struct LagContext {
    group: String,
    /// Partitions reported active at the last statistics.
    reported: Mutex<BTreeSet<(String, i32)>>,
}

impl LagContext {
    pub fn new(group: impl Into<String>) -> Self {
        LagContext { group: group.into(), reported: Mutex::new(BTreeSet::new()) }
    }

    fn record(&self, json: &[u8]) {
        let lags = match partition_lags(json) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "kafka statistics not understood; consumer lag not updated");
                return;
            }
        };
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let mut now = BTreeSet::new();
        for ((topic, partition), lag) in lags {
            gauge(&self.group, &topic, partition, lag);
            now.insert((topic, partition));
        }
        for (topic, partition) in reported.difference(&now) {
            gauge(&self.group, topic, *partition, 0);
        }
        *reported = now;
    }
}

fn gauge(group: &str, topic: &str, partition: i32, lag: i64) {
    metrics::gauge!("qt_kafka_consumer_lag", "group" => group.to_string(), "topic" => topic.to_string(),
        "partition" => partition.to_string())
    .set(lag as f64);
}

impl ClientContext for LagContext {
    fn stats_raw(&self, statistics: &[u8]) {
        self.record(statistics);
    }
}

impl ConsumerContext for LagContext {}

#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    topics: BTreeMap<String, TopicStats>,
}

#[derive(Deserialize)]
struct TopicStats {
    #[serde(default)]
    partitions: BTreeMap<String, PartitionStats>,
}

#[derive(Deserialize)]
struct PartitionStats {
    partition: i32,
    #[serde(default)]
    fetch_state: String,
    #[serde(default = "invalid")]
    hi_offset: i64,
    #[serde(default = "invalid")]
    app_offset: i64,
    #[serde(default = "invalid")]
    committed_offset: i64,
    #[serde(default = "invalid")]
    next_offset: i64,
}

fn invalid() -> i64 {
    -1001
}

/// The lag of every actively fetched partition in a librdkafka statistics document.
pub(crate) fn partition_lags(json: &[u8]) -> Result<BTreeMap<(String, i32), i64>, serde_json::Error> {
    let stats: Stats = serde_json::from_slice(json)?;
    let mut out = BTreeMap::new();
    for (topic, t) in stats.topics {
        // Partition -1 is librdkafka's internal "unassigned" queue.
        for p in t.partitions.into_values().filter(|p| p.partition >= 0 && p.fetch_state == "active") {
            let position = [p.app_offset, p.committed_offset, p.next_offset].into_iter().find(|o| *o >= 0);
            if let (Some(position), true) = (position, p.hi_offset >= 0) {
                out.insert((topic.clone(), p.partition), (p.hi_offset - position).max(0));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(partitions: &str) -> Vec<u8> {
        format!(r#"{{"name":"c#consumer-1","type":"consumer","ts":1,"brokers":{{}},"topics":{{"orders":{{"topic":"orders","partitions":{{{partitions}}}}}}}}}"#)
            .into_bytes()
    }

    #[test]
    fn lag_is_high_watermark_minus_position_of_active_partitions() {
        let json = stats(
            r#"
            "0":{"partition":0,"fetch_state":"active","hi_offset":120,"app_offset":100,"committed_offset":90,"next_offset":120,"consumer_lag":30},
            "1":{"partition":1,"fetch_state":"active","hi_offset":50,"app_offset":-1001,"committed_offset":45,"next_offset":50},
            "2":{"partition":2,"fetch_state":"active","hi_offset":7,"app_offset":-1001,"committed_offset":-1001,"next_offset":3},
            "3":{"partition":3,"fetch_state":"none","hi_offset":900,"app_offset":-1001,"committed_offset":-1001,"next_offset":-1001},
            "4":{"partition":4,"fetch_state":"offset-query","hi_offset":-1,"app_offset":-1001,"committed_offset":-1001},
            "-1":{"partition":-1,"fetch_state":"none","hi_offset":-1001}"#,
        );
        let lags = partition_lags(&json).unwrap();
        let want: BTreeMap<(String, i32), i64> =
            [(("orders".to_string(), 0), 20), (("orders".to_string(), 1), 5), (("orders".to_string(), 2), 4)]
                .into_iter()
                .collect();
        assert_eq!(lags, want);
    }

    #[test]
    fn a_document_without_topics_has_no_lag_and_garbage_is_an_error() {
        assert!(partition_lags(br#"{"name":"x","topics":{}}"#).unwrap().is_empty());
        assert!(partition_lags(br#"{"name":"x"}"#).unwrap().is_empty());
        assert!(partition_lags(b"not json").is_err());
    }

    #[test]
    fn a_partition_no_longer_fetched_is_reported_once_as_zero() {
        let ctx = LagContext::new("g");
        ctx.record(&stats(r#""0":{"partition":0,"fetch_state":"active","hi_offset":10,"app_offset":4}"#));
        assert_eq!(ctx.reported.lock().unwrap().len(), 1);
        ctx.record(&stats(r#""0":{"partition":0,"fetch_state":"stopped","hi_offset":10,"app_offset":4}"#));
        assert!(ctx.reported.lock().unwrap().is_empty());
    }
}
