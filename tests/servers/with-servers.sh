#!/usr/bin/env bash
# Test of scripts/servers/with-servers: the command sees the servers' variables and can use
# them, its exit code is passed on, and the servers are stopped afterwards whether the
# command succeeded, failed, or with-servers itself was interrupted.
# (PostgreSQL and Redis only: Kafka's script is covered by kafka.sh, and it is the slow one.)
set -euo pipefail
# shellcheck source=tests/servers/lib.sh
source "$(dirname "$0")/lib.sh"
W="$SERVERS/with-servers"

# shellcheck disable=SC2016 # expanded by the inner shell, on purpose
out="$("$W" postgres redis -- bash -c '
  set -euo pipefail
  echo "db=$(psql "$QT_DATABASE__URL" -X -tAc "select 40 + 2")"
  echo "redis=$(redis-cli -u "$QT_REDIS__URL" ping)"' 2>/dev/null)"
check "command ran SQL through QT_DATABASE__URL" grep -qx 'db=42' <<<"$out"
check "command reached Redis through QT_REDIS__URL" grep -qx 'redis=PONG' <<<"$out"
check_nothing_left

set +e
"$W" redis -- bash -c 'exit 7' 2>/dev/null
rc=$?
set -e
check_eq "exit code of a failing command is passed on" 7 "$rc"
check_nothing_left

# Interrupted while the command runs: SIGTERM to with-servers (the command gets it too,
# as a shell's foreground job in the same process group would on Ctrl-C).
setsid "$W" redis -- sleep 60 >/dev/null 2>&1 &
wpid=$!
for _ in $(seq 100); do
  [ -s "$QT_SERVERS_DIR/redis.env" ] && break
  sleep 0.1
done
check "redis came up under with-servers" test -s "$QT_SERVERS_DIR/redis.env"
kill -TERM -- "-$wpid"
set +e
wait "$wpid"
rc=$?
set -e
check_eq "interrupted with-servers exits 143" 143 "$rc"
check_nothing_left

set +e
"$W" nosuchserver -- true 2>/dev/null
rc=$?
set -e
check_eq "unknown server name is a usage error (exit 2)" 2 "$rc"
