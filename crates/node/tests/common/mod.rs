//! Shared by the qt-node integration tests: the servers' addresses (or a skip) and names
//! of their own for each test's topics and schema.

// Each test binary uses its own subset.
#![allow(dead_code)]

/// `KAFKA_BROKERS` and `DATABASE_URL`, or None (the test skips) unless
/// `QT_REQUIRE_SERVERS=1`.
pub fn servers(test: &str) -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("KAFKA_BROKERS"), var("DATABASE_URL")) {
        (Some(k), Some(d)) => Some((k, d)),
        _ if std::env::var("QT_REQUIRE_SERVERS").as_deref() == Ok("1") => {
            panic!("{test}: KAFKA_BROKERS or DATABASE_URL is not set and QT_REQUIRE_SERVERS=1")
        }
        _ => {
            println!("SKIPPED: {test} (run under scripts/servers/with-servers kafka postgres -- …)");
            None
        }
    }
}

/// A name no other test run uses (pid and time), starting with `tag`.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{tag}{}_{nanos}", std::process::id())
}
