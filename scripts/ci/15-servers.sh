#!/usr/bin/env bash
# Local servers and container packaging:
#   - shellcheck and --help of every script under scripts/servers, tests/servers,
#     scripts/dev-up, scripts/dev-down and deploy/docker
#   - smoke tests of the real Kafka (KRaft), PostgreSQL and Redis servers (tests/servers)
#   - static checks of the Dockerfile, compose.yaml and gateway config (deploy/docker/check)
# Installs what it needs (Debian packages, the Kafka jars from Maven Central, the linters
# from PyPI), all cached under ~/.cache/quanttrader.
#
# Usage: scripts/ci/15-servers.sh [--help]
set -euo pipefail
case "${1:-}" in
  -h | --help)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

need_apt shellcheck postgresql postgresql-client redis-server redis-tools maven
command -v java >/dev/null 2>&1 || need_apt openjdk-17-jre-headless

scripts=(scripts/servers/kafka scripts/servers/postgres scripts/servers/redis
  scripts/servers/with-servers scripts/dev-up scripts/dev-down
  tests/servers/run deploy/docker/check scripts/ci/15-servers.sh)

log "shellcheck"
shellcheck -x "${scripts[@]}" scripts/servers/lib/servers.sh tests/servers/*.sh
echo "ok   shellcheck: ${#scripts[@]} scripts and their libraries are clean"

log "--help of every script"
for s in "${scripts[@]}"; do
  out="$(bash "$s" --help)" || { echo "FAIL $s --help exited non-zero" >&2; exit 1; }
  grep -qi 'usage' <<<"$out" || { echo "FAIL $s --help prints no usage" >&2; exit 1; }
done
echo "ok   --help of ${#scripts[@]} scripts"

log "python syntax of the helpers"
python3 -c 'import ast, sys
for path in sys.argv[1:]:
    ast.parse(open(path).read(), path)' scripts/servers/lib/kafka_ready.py deploy/docker/policy.py
echo "ok   kafka_ready.py and policy.py parse"

log "packaging checks (deploy/docker/check)"
deploy/docker/check

log "server smoke tests (tests/servers/run)"
tests/servers/run
