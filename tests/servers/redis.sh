#!/usr/bin/env bash
# Smoke test of scripts/servers/redis: start, SET/GET and a TTL with redis-cli, idempotent
# start, recovery from a kill -9 (to an empty server: no persistence), and stop.
set -euo pipefail
# shellcheck source=tests/servers/lib.sh
source "$(dirname "$0")/lib.sh"
R="$SERVERS/redis"

out="$("$R" start)"
check "start prints REDIS_URL" grep -Eq '^REDIS_URL=redis://127\.0\.0\.1:[0-9]+/0$' <<<"$out"
check "start prints QT_REDIS__URL" grep -q '^QT_REDIS__URL=redis://' <<<"$out"
check_eq "second start is idempotent" "$out" "$("$R" start 2>/dev/null)"
env_of redis

check_eq "SET" OK "$(redis-cli -u "$REDIS_URL" SET idempotency:abc '{"order_id":"42"}')"
check_eq "GET returns what was SET" '{"order_id":"42"}' "$(redis-cli -u "$REDIS_URL" GET idempotency:abc)"
redis-cli -u "$REDIS_URL" SET order:42 x EX 3600 >/dev/null
ttl="$(redis-cli -u "$REDIS_URL" TTL order:42)"
check "keys expire (TTL set)" test "$ttl" -gt 3500
check_eq "no persistence configured" "" "$(redis-cli -u "$REDIS_URL" CONFIG GET save | sed -n 2p)"

kill -9 "$(cat "$QT_SERVERS_DIR/redis/pid")"
for _ in $(seq 50); do "$R" status >/dev/null 2>&1 || break; sleep 0.1; done
set +e
"$R" status >/dev/null 2>&1
rc=$?
set -e
check_eq "status after kill -9 says stopped (exit 3)" 3 "$rc"
"$R" start >/dev/null
env_of redis
check_eq "start after kill -9 gives an empty server" 0 "$(redis-cli -u "$REDIS_URL" DBSIZE)"

"$R" stop
check "stop is idempotent" "$R" stop
check_nothing_left
