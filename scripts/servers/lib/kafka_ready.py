#!/usr/bin/env python3
"""Readiness probe for a Kafka broker: one Metadata request over the wire protocol.

Exit 0 when the broker answers Metadata with itself in the broker list and a known active
controller, i.e. it has joined the KRaft quorum, been unfenced and can serve clients; exit 1
otherwise. A raw request (Metadata v4, the oldest version Kafka 4 still serves; Kafka 3.x
serves it too) costs a few milliseconds, where starting a JVM to run the kafka-topics tool
costs seconds, and start-up time of the test broker is what this probe exists to shorten.

Usage: kafka_ready.py HOST PORT [TIMEOUT_SECONDS]
"""

import socket
import struct
import sys

API_METADATA = 3
VERSION = 4


def request(host: str, port: int, timeout: float) -> bytes:
    client_id = b"qt-ready"
    # Request header v1: api_key, api_version, correlation_id, client_id (string).
    header = struct.pack(">hhih", API_METADATA, VERSION, 1, len(client_id)) + client_id
    # Body: topics = null (all topics), allow_auto_topic_creation = false.
    body = struct.pack(">ib", -1, 0)
    payload = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _read(sock, 4))[0]
        return _read(sock, size)


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s


def main() -> int:
    if len(sys.argv) not in (3, 4) or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) == 4 else 2.0
    try:
        r = Reader(request(host, port, timeout))
        r.take(">i")  # correlation id
        r.take(">i")  # throttle_time_ms
        brokers = []
        for _ in range(r.take(">i")):
            node_id = r.take(">i")
            broker_host = r.string()
            broker_port = r.take(">i")
            r.string()  # rack
            brokers.append((node_id, broker_host, broker_port))
        r.string()  # cluster id
        controller = r.take(">i")
    except (OSError, struct.error, UnicodeDecodeError) as err:
        print(f"not ready: {err}", file=sys.stderr)
        return 1
    if not brokers or controller < 0:
        print(f"not ready: brokers={brokers} controller={controller}", file=sys.stderr)
        return 1
    print(f"ready: brokers={brokers} controller={controller}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
