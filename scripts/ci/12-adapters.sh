#!/usr/bin/env bash
# Infrastructure adapters against real servers:
#   - qt-resilience unit tests (retry, backoff, circuit breaker; no servers)
#   - qt-bus-kafka, qt-store-postgres and qt-cache-redis integration tests against a real
#     Kafka broker (KRaft), PostgreSQL and Redis started by scripts/servers/with-servers,
#     with QT_REQUIRE_SERVERS=1 so that a missing server fails instead of skipping
#   - clippy -D warnings and rustfmt of these four crates
# Installs what it needs (cmake to build librdkafka, the servers' Debian packages and the
# Kafka jars), all cached under ~/.cache/quanttrader; the Rust target dir is the shared
# $QT_CACHE/cargo-target.
#
# Usage: scripts/ci/12-adapters.sh [--help]
set -euo pipefail
case "${1:-}" in
  -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$QT_CACHE/cargo-target}"

# librdkafka is built from source by rdkafka-sys (cmake-build feature); zlib for its libz.
need_apt build-essential pkg-config cmake zlib1g-dev
# The private redis-server of the breaker test, and what with-servers starts.
need_apt redis-server redis-tools postgresql postgresql-client
command -v java >/dev/null 2>&1 || need_apt openjdk-17-jre-headless

packages=(-p qt-resilience -p qt-bus-kafka -p qt-store-postgres -p qt-cache-redis)
crates=(crates/resilience crates/bus-kafka crates/store-postgres crates/cache-redis)

log "rustfmt of the adapter crates"
cargo fmt --check "${packages[@]}"
echo "ok   rustfmt: ${crates[*]}"

log "clippy of the adapter crates (-D warnings)"
nice -n 10 cargo clippy --locked "${packages[@]}" --all-targets -- -D warnings

log "build the adapter tests"
nice -n 10 cargo test --locked "${packages[@]}" --no-run

log "adapter tests against real Kafka, PostgreSQL and Redis"
# --nocapture: the tests print their measured figures (FIGURE lines).
set +e
QT_REQUIRE_SERVERS=1 scripts/servers/with-servers kafka postgres redis -- \
  nice -n 10 cargo test --locked "${packages[@]}" -- --nocapture 2>&1 | tee "${TMPDIR:-/tmp}/qt-adapters-test.log"
status=${PIPESTATUS[0]}
set -e
grep '^FIGURE' "${TMPDIR:-/tmp}/qt-adapters-test.log" || true
exit "$status"
