#!/usr/bin/env bash
# Smoke test of scripts/servers/postgres: start a throwaway cluster, run SQL with psql over
# TCP (DATABASE_URL) and over the unix socket in the temp dir, check the role can create
# databases (per-test databases), idempotent start, recovery from a kill -9, and stop.
set -euo pipefail
# shellcheck source=tests/servers/lib.sh
source "$(dirname "$0")/lib.sh"
P="$SERVERS/postgres"

out="$("$P" start)"
check "start prints DATABASE_URL" \
  grep -Eq '^DATABASE_URL=postgres://quanttrader:[^@]+@127\.0\.0\.1:[0-9]+/quanttrader$' <<<"$out"
check "start prints QT_DATABASE__URL" grep -q '^QT_DATABASE__URL=postgres://' <<<"$out"
check_eq "second start is idempotent" "$out" "$("$P" start 2>/dev/null)"
env_of postgres

check_eq "SQL over TCP with DATABASE_URL" "quanttrader|quanttrader" \
  "$(psql "$DATABASE_URL" -X -tAc 'select current_user, current_database()')"
psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE orders (id bigint PRIMARY KEY, symbol text NOT NULL, qty numeric(20, 8) NOT NULL);
INSERT INTO orders VALUES (1, 'BTC-USD', 0.5), (2, 'BTC-USD', 1.25), (3, 'ETH-USD', 3);
SQL
check_eq "query sees the inserted rows" "1.75000000" \
  "$(psql "$DATABASE_URL" -X -tAc "select sum(qty) from orders where symbol = 'BTC-USD'")"
check "unix socket lives in the temp dir" test -S "$PG_SOCKET_DIR/.s.PGSQL.$PGPORT"
check_eq "superuser over the unix socket" "3" \
  "$("$P" psql -tAc 'select count(*) from quanttrader.public.orders' -d quanttrader)"
check "the role may create databases" psql "$DATABASE_URL" -X -q -c 'CREATE DATABASE per_test_db'
check "server listens on 127.0.0.1 only" test "$(psql "$DATABASE_URL" -X -tAc 'show listen_addresses')" = 127.0.0.1
if [ "$(id -u)" -eq 0 ]; then
  check_eq "as root, the server runs as user postgres" postgres \
    "$(ps -o user= -p "$(cat "$QT_SERVERS_DIR/postgres/pid")")"
fi

kill -9 "$(cat "$QT_SERVERS_DIR/postgres/pid")"
for _ in $(seq 50); do "$P" status >/dev/null 2>&1 || break; sleep 0.1; done
set +e
"$P" status >/dev/null 2>&1
rc=$?
set -e
check_eq "status after kill -9 says stopped (exit 3)" 3 "$rc"
"$P" start >/dev/null
env_of postgres
check "start after kill -9 gives a fresh cluster" \
  test "$(psql "$DATABASE_URL" -X -tAc "select to_regclass('public.orders') is null")" = t

"$P" stop
check "stop is idempotent" "$P" stop
check_nothing_left
