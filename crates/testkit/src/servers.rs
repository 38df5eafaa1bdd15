//! The real servers of the adapter and node integration tests: their addresses from the
//! variables `scripts/servers/with-servers` exports, or a skip.
//!
//! Contract: a test whose variables are missing prints `SKIPPED: <test>` and returns early,
//! unless `QT_REQUIRE_SERVERS=1` (CI), where it fails instead: a step meant to run against
//! real servers can never pass by skipping them.

/// The values of `vars`, in order, or `None` when one is missing or empty (the test skips).
///
/// # Panics
/// When one is missing and `QT_REQUIRE_SERVERS=1`.
pub fn server_urls<const N: usize>(test: &str, vars: [&str; N]) -> Option<[String; N]> {
    let values: Vec<String> = vars.iter().filter_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty())).collect();
    if let Ok(all) = <[String; N]>::try_from(values) {
        return Some(all);
    }
    let names = vars.join(" and ");
    if std::env::var("QT_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("{test}: {names} must be set (QT_REQUIRE_SERVERS=1)");
    }
    println!("SKIPPED: {test} (no {names}; run under scripts/servers/with-servers)");
    None
}
