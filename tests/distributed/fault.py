#!/usr/bin/env python3
"""Fault test of the distributed mode: kill -9 the matching process under load, restart it.

Usage: fault.py URL_A URL_B MARKET_DATA_URL ADMIN_TOKEN MATCHING_PID [SECONDS]

Places orders from several users through two ingestion processes for SECONDS (default 12);
after a third of the time sends SIGKILL to MATCHING_PID and starts the same command line
with the same environment again (read from /proc before the kill). Then:
  - every request whose outcome was unknown (503/timeout) is retried with its idempotency
    key until it gets a definite answer;
  - every acknowledged order (201) is readable, and each user's order list holds exactly
    the acknowledged orders, each once (no loss, no duplicate);
  - the order book is the same through both intakes and market-data (three replicas
    rebuilt from the journal), and no user's balance is negative.
Prints FIGURE lines and exits non-zero on any violation.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

A, B, M, ADMIN, MATCHING_PID = sys.argv[1:6]
SECONDS = float(sys.argv[6]) if len(sys.argv) > 6 else 15.0
USERS = 6


def call(method, url, token, body=None, key=None, timeout=15):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except Exception as e:  # connection refused, timeout: outcome unknown
        return 0, str(e)


def fail(msg):
    print(f"FAIL fault: {msg}", flush=True)
    sys.exit(1)


users = []
for i in range(USERS):
    s, u = call("POST", f"{A}/api/admin/users", ADMIN, {"name": f"fault{os.getpid()}-{i}"})
    if s != 201:
        fail(f"create user: {s} {u}")
    for asset, amount in (("USD", "10000000"), ("BTC", "100")):
        s, b = call("POST", f"{B}/api/admin/users/{u['user_id']}/deposits", ADMIN, {"asset": asset, "amount": amount})
        if s != 201:
            fail(f"deposit: {s} {b}")
    users.append(u)

lock = threading.Lock()
acked = {}  # idempotency key -> (user index, order id)
unknown = {}  # idempotency key -> (user index, body)
refused = 0
stop = threading.Event()
latencies = []


def load(idx):
    global refused
    u = users[idx]
    rnd = random.Random(idx)
    n = 0
    while not stop.is_set():
        n += 1
        side = "BUY" if rnd.random() < 0.5 else "SELL"
        price = f"{rnd.randint(29990, 30010)}.00"
        body = {"symbol": "BTC-USD", "side": side, "type": "LIMIT", "price": price, "quantity": "0.01"}
        key = f"f{os.getpid()}-{idx}-{n}"
        url = A if n % 2 else B
        t = time.monotonic()
        s, r = call("POST", f"{url}/api/orders", u["api_key"], body, key, timeout=15)
        with lock:
            latencies.append(time.monotonic() - t)
            if s == 201:
                acked[key] = (idx, r["order_id"])
            elif s in (0, 500, 502, 503, 504):
                unknown[key] = (idx, body)
            else:
                refused += 1
        if s not in (201,) and s != 429:
            time.sleep(0.05)


threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(USERS)]
for t in threads:
    t.start()
time.sleep(SECONDS / 3)

# The matching process: remember how to start it again, then kill -9.
pid = int(MATCHING_PID)
cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
environ = dict(
    kv.split(b"=", 1) for kv in open(f"/proc/{pid}/environ", "rb").read().split(b"\0") if b"=" in kv
)
cwd = os.readlink(f"/proc/{pid}/cwd")
log_path = os.environ.get("QT_FAULT_LOG", "/tmp/qt-fault-matching.log")
before = len(acked)
os.kill(pid, signal.SIGKILL)
print(f"killed matching (pid {pid}) after {before} acknowledged orders", flush=True)
time.sleep(2)
with open(log_path, "ab") as log:
    proc = subprocess.Popen(cmdline, env={k.decode(): v.decode() for k, v in environ.items()}, cwd=cwd,
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
print(f"restarted matching as pid {proc.pid}", flush=True)
with open(os.environ.get("QT_FAULT_PIDFILE", "/dev/null"), "w") as f:
    f.write(str(proc.pid))
restarted_at = len(acked)
time.sleep(SECONDS * 2 / 3)
stop.set()
for t in threads:
    t.join(timeout=30)
after_loop = len(acked)

# Resolve every unknown outcome with its idempotency key.
deadline = time.monotonic() + 60
for key, (idx, body) in list(unknown.items()):
    while True:
        s, r = call("POST", f"{A}/api/orders", users[idx]["api_key"], body, key)
        if s == 201:
            acked[key] = (idx, r["order_id"])
            break
        if s not in (0, 409, 500, 502, 503, 504):
            refused += 1
            break
        if time.monotonic() > deadline:
            fail(f"key {key} still has no definite answer: {s} {r}")
        time.sleep(0.2)

print(f"FIGURE fault_acknowledged_orders {len(acked)}")
print(f"FIGURE fault_acknowledged_before_kill {before}")
print(f"FIGURE fault_acknowledged_after_restart {after_loop - restarted_at}")
print(f"FIGURE fault_unknown_then_resolved {len(unknown)}")
print(f"FIGURE fault_refused_orders {refused}")
lat = sorted(latencies)
if lat:
    print(f"FIGURE fault_place_p50_ms {lat[len(lat) // 2] * 1000:.1f}")
    print(f"FIGURE fault_place_max_ms {lat[-1] * 1000:.1f}")

# Every acknowledged order once, nothing else.
ids_by_user = {i: set() for i in range(USERS)}
for key, (idx, oid) in acked.items():
    ids_by_user[idx].add(oid)
if sum(len(v) for v in ids_by_user.values()) != len(acked):
    fail("two idempotency keys got the same order id")
for idx, u in enumerate(users):
    seen = []
    path = "/api/orders?limit=500"
    while True:
        s, page = call("GET", f"{B}{path}", u["api_key"])
        if s != 200:
            fail(f"list orders: {s} {page}")
        # Orders the engine refused (risk, velocity) are listed as REJECTED and were never
        # acknowledged: the client got their 4xx.
        seen += [o["order_id"] for o in page["orders"] if o["status"] != "REJECTED"]
        if not page.get("next_cursor"):
            break
        path = f"/api/orders?limit=500&cursor={page['next_cursor']}"
    if len(seen) != len(set(seen)):
        fail(f"user {idx}: an order is listed twice")
    if set(seen) != ids_by_user[idx]:
        missing = ids_by_user[idx] - set(seen)
        extra = set(seen) - ids_by_user[idx]
        fail(f"user {idx}: acknowledged but missing {sorted(missing)[:5]}, present but never acknowledged {sorted(extra)[:5]}")
    s, bal = call("GET", f"{A}/api/accounts/balances", u["api_key"])
    for b in bal["balances"]:
        if b["available"].startswith("-") or b["reserved"].startswith("-"):
            fail(f"negative balance {b}")

books = []
for url in (A, B, M):
    s, book = call("GET", f"{url}/api/market-data/orderbook/BTC-USD?depth=1000", users[0]["api_key"])
    if s != 200:
        fail(f"book via {url}: {s}")
    books.append(book)
if not (books[0] == books[1] == books[2]):
    fail("the three replicas' books differ")
print(f"ok   fault: kill -9 of matching under load; {len(acked)} acknowledged orders each present once; "
      f"books equal on three replicas (sequence {books[0]['sequence']})")
