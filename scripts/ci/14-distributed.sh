#!/usr/bin/env bash
# Distributed mode (`quanttrader serve …`) against real servers:
#   - rustfmt and clippy -D warnings of qt-node and the quanttrader binary; qt-node's unit
#     tests
#   - tests/distributed/run: the black-box API suite of crates/api/tests/api.rs, unchanged,
#     against `quanttrader serve all` (Kafka KRaft, PostgreSQL, Redis from
#     scripts/servers/with-servers), then against scripts/dev-up (two ingestion processes,
#     one risk, one matching, one market-data), plus the cross-process check
#   - tests/distributed/fault: on one dev-up, under load, kill -9 of the matching process
#     and its restart, the same for risk, the Kafka broker stopped (SIGTERM, then kill -9)
#     and restarted, Redis stopped and restarted; after each every acknowledged order
#     present exactly once, books equal on three replicas, the ledger conserves, Redis
#     positions equal the API's, /ready false while a server was down and true after
#   - shellcheck of the scripts it adds or changes; fault.py byte-compiled
# Installs what it needs (cmake and zlib for librdkafka, the servers' Debian packages, the
# Kafka jars, shellcheck), cached under ~/.cache/quanttrader; the Rust target dir is the
# shared $QT_CACHE/cargo-target. About 8 minutes warm (the fault scenarios about 3).
#
# Usage: scripts/ci/14-distributed.sh [--help]
set -euo pipefail
case "${1:-}" in
  -h | --help)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$QT_CACHE/cargo-target}"

need_apt build-essential pkg-config cmake zlib1g-dev curl python3 shellcheck
need_apt redis-server redis-tools postgresql postgresql-client
command -v java >/dev/null 2>&1 || need_apt openjdk-17-jre-headless

log "shellcheck of the distributed scripts"
shellcheck -x scripts/ci/14-distributed.sh scripts/dev-up scripts/dev-down tests/distributed/run \
  tests/distributed/cross-process tests/distributed/fault tests/distributed/bench
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' tests/distributed/fault.py
echo "ok   shellcheck"

log "rustfmt and clippy of qt-node and quanttrader (-D warnings)"
cargo fmt --check -p qt-node -p quanttrader
nice -n 10 cargo clippy --locked -p qt-node -p quanttrader --all-targets -- -D warnings

log "qt-node tests (the recovery test against real Kafka and PostgreSQL)"
QT_REQUIRE_SERVERS=1 scripts/servers/with-servers kafka postgres -- \
  nice -n 10 cargo test --locked -p qt-node

log "API suite against the distributed mode"
tests/distributed/run

log "fault: matching and risk kill -9, broker and Redis restarts, under load"
tests/distributed/fault
