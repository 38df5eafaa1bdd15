//! Shared by the bus-kafka integration tests: the broker address (or a skip), a
//! configuration with topics of its own, and a command to journal.

// Each test binary uses its own subset.
#![allow(dead_code)]

use qt_bus_kafka::KafkaConfig;
use qt_core::{OrderId, UserId};
use qt_engine::{Command, CommandEnvelope};
use std::sync::atomic::{AtomicU32, Ordering};

/// `KAFKA_BROKERS`, or None (the test skips) unless `QT_REQUIRE_SERVERS=1`.
pub fn brokers(test: &str) -> Option<String> {
    qt_testkit::servers::server_urls(test, ["KAFKA_BROKERS"]).map(|[b]| b)
}

/// A configuration with a topic prefix of its own (pid, time, counter).
pub fn config(brokers: String) -> KafkaConfig {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    KafkaConfig {
        topic_prefix: format!("t{}-{nanos}-{}.", std::process::id(), N.fetch_add(1, Ordering::Relaxed)),
        ..KafkaConfig::single_broker(brokers)
    }
}

/// A journal entry (a cancel: small, valid for any user).
pub fn cancel(seq: u64) -> CommandEnvelope {
    CommandEnvelope::new(
        seq,
        1_700_000_000_000_000_000 + seq as i64,
        Command::Cancel { user: UserId(seq % 7), order_id: OrderId(seq) },
    )
}
