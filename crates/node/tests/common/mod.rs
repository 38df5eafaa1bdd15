//! Shared by the qt-node integration tests: the servers' addresses (or a skip) and names
//! of their own for each test's topics and schema.

// Each test binary uses its own subset.
#![allow(dead_code)]

/// `KAFKA_BROKERS` and `DATABASE_URL`, or None (the test skips) unless
/// `QT_REQUIRE_SERVERS=1`.
pub fn servers(test: &str) -> Option<(String, String)> {
    qt_testkit::servers::server_urls(test, ["KAFKA_BROKERS", "DATABASE_URL"]).map(|[k, d]| (k, d))
}

/// A name no other test run uses (pid and time), starting with `tag`.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{tag}{}_{nanos}", std::process::id())
}
