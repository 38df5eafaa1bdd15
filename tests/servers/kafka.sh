#!/usr/bin/env bash
# Smoke test of scripts/servers/kafka: start a KRaft broker, create a topic, produce and
# consume keyed messages with the broker's own console tools through a consumer group,
# check idempotent start, status and recovery from a kill -9, then stop with nothing left.
set -euo pipefail
# shellcheck source=tests/servers/lib.sh
source "$(dirname "$0")/lib.sh"
K="$SERVERS/kafka"

out="$("$K" start)"
check "start prints KAFKA_BROKERS" grep -Eq '^KAFKA_BROKERS=127\.0\.0\.1:[0-9]+$' <<<"$out"
check "start prints QT_KAFKA__BROKERS" grep -Eq '^QT_KAFKA__BROKERS=127\.0\.0\.1:[0-9]+$' <<<"$out"
check_eq "env file holds what start printed" "$out" "$(cat "$QT_SERVERS_DIR/kafka.env")"
check_eq "second start is idempotent (same broker)" "$out" "$("$K" start 2>/dev/null)"
check "status says running" "$K" status
env_of kafka
check "broker is KRaft combined mode (no ZooKeeper)" \
  grep -q '^process.roles=broker,controller$' "$QT_SERVERS_DIR/kafka/server.properties"
check "broker answers a Metadata request" python3 "$SERVERS/lib/kafka_ready.py" \
  "${KAFKA_BROKERS%:*}" "${KAFKA_BROKERS#*:}"

"$K" topics --create --topic smoke --partitions 3 --replication-factor 1 >/dev/null
check_eq "topic created with 3 partitions" 3 \
  "$("$K" topics --describe --topic smoke | grep -c 'Partition: ')"

# Keyed messages, produced with acks=all and idempotence as the services will.
messages=$'order-1:{"id":1,"qty":"0.5"}\norder-2:{"id":2,"qty":"1.0"}\norder-3:{"id":3,"qty":"2.5"}'
"$K" console-producer --topic smoke --reader-property parse.key=true --reader-property key.separator=: \
  --command-property acks=all --command-property enable.idempotence=true <<<"$messages"
got="$("$K" console-consumer --topic smoke --group smoke-test --from-beginning \
  --max-messages 3 --timeout-ms 30000 --formatter-property print.key=true \
  --formatter-property key.separator=: 2>/dev/null |
  sort)"
check_eq "consumed the 3 produced messages" "$messages" "$got"

# A kill -9 leaves a stale pid and data dir behind: status must see it stopped, and the
# next start must clean up and bring up a fresh broker.
kill -9 "$(cat "$QT_SERVERS_DIR/kafka/pid")"
for _ in $(seq 50); do "$K" status >/dev/null 2>&1 || break; sleep 0.1; done
set +e
"$K" status >/dev/null 2>&1
rc=$?
set -e
check_eq "status after kill -9 says stopped (exit 3)" 3 "$rc"
out2="$("$K" start)"
check "start after kill -9 brings up a broker" grep -q '^KAFKA_BROKERS=' <<<"$out2"
check "the new broker has an empty log (no topic smoke)" \
  test -z "$("$K" topics --list | grep -x smoke || true)"

"$K" stop
check "stop is idempotent" "$K" stop
check_nothing_left
