#!/usr/bin/env python3
"""Fault tests of the distributed mode, one scenario per run, on a stack of scripts/dev-up.

Usage: fault.py SCENARIO ENV_FILE [SECONDS]
  SCENARIO  matching | risk | broker | redis
  ENV_FILE  the KEY=VALUE lines scripts/dev-up printed (INGESTION_1_URL, ..., ADMIN_TOKEN,
            REDIS_URL)
  SECONDS   load before the fault and after recovery (default 8 each)
Environment: QT_DEV_DIR (the stack's state dir: role pids and logs, server dirs),
  QT_FAULT_USERS (JSON file of every user the scenarios of one stack made, for the ledger
  check; default $QT_DEV_DIR/fault-users.json), QT_FAULT_REDIS_PREFIX (key prefix of the
  roles, e.g. "fault:"), QT_FAULT_DOWN (seconds a server stays down, default 6).

Six users place limit orders through both ingestion processes (fresh Idempotency-Key
each) while a watcher polls /ready of every role every 0.2 s. Then the fault:
  matching  kill -9 of the matching process, restarted with the same command line and
            environment (read from /proc before the kill) 2 s later;
  risk      the same for the risk process;
  broker    the Kafka broker stopped (SIGTERM) for QT_FAULT_DOWN seconds and started
            again with the same data dir and configuration, then the same with kill -9;
            meanwhile no place may get 201, every role's /ready must go false, and after
            the restart come back;
  redis     Redis stopped for QT_FAULT_DOWN seconds and started again (same port and
            config; it keeps no data, so it returns empty); /ready must go false and
            come back. Places meanwhile go on (the idempotency claims are skipped: the
            matching shard itself recognises a key its user already used, so a place is
            never applied twice: 20 keys are each sent to both intakes at once meanwhile,
            and each may give one order at most).
Then, after recovery (every role ready again and places acknowledged again):
  - every request whose outcome was unknown (timeout, 409 in progress, 5xx other than
    503 BUS_UNAVAILABLE) is retried with its key until it gets a definite answer; a 503
    BUS_UNAVAILABLE says nothing was done, and its order must not exist;
  - every acknowledged order (201) is listed once for its user, and nothing else is;
  - the book is the same through both intakes and market-data (replicas rebuilt from the
    shard's journal);
  - the ledger conserves: per asset, the balances (available + reserved) of every user
    the scenarios made plus the fees of their fills equal their deposits; no balance is
    negative; and the engine's own ledger (GET /api/admin/ledger on both intakes and
    market-data) conserves, with those deposits and those fees in its fee account;
  - the positions the risk role keeps in Redis (`position:{user}:{symbol}`) equal those
    of GET /api/risk/positions for every user (no execution lost or applied twice).
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
from decimal import Decimal

SCENARIOS = ("matching", "risk", "broker", "redis")
if len(sys.argv) < 3 or sys.argv[1] not in SCENARIOS:
    print(__doc__)
    sys.exit(2)
SCENARIO = sys.argv[1]
ENV = dict(
    line.strip().split("=", 1) for line in open(sys.argv[2]) if "=" in line and not line.startswith("#")
)
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
A, B, M = ENV["INGESTION_1_URL"], ENV["INGESTION_2_URL"], ENV["MARKET_DATA_URL"]
ADMIN = ENV["ADMIN_TOKEN"]
ROLES = {
    "ingestion-1": A,
    "ingestion-2": B,
    "risk": ENV["RISK_URL"],
    "matching": ENV["MATCHING_URL"],
    "market-data": M,
}
DEV = os.environ["QT_DEV_DIR"]
USERS_FILE = os.environ.get("QT_FAULT_USERS", os.path.join(DEV, "fault-users.json"))
PREFIX = os.environ.get("QT_FAULT_REDIS_PREFIX", "")
DOWN = float(os.environ.get("QT_FAULT_DOWN", "6"))
USERS = 6
DEPOSITS = (("USD", "10000000"), ("BTC", "100"))
SYMBOL = "BTC-USD"
T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def say(msg):
    print(f"[{now():6.1f}s] {SCENARIO}: {msg}", flush=True)


def call(method, url, token, body=None, key=None, timeout=15):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
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
    print(f"FAIL fault {SCENARIO}: {msg}", flush=True)
    sys.exit(1)


def figure(name, value):
    print(f"FIGURE fault_{SCENARIO}_{name} {value}", flush=True)


# ---------------------------------------------------------------- readiness watcher
ready_log = {name: [] for name in ROLES}  # (time, ready?)
watch_stop = threading.Event()


def is_ready(url):
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


def watch():
    while not watch_stop.is_set():
        for name, url in ROLES.items():
            ready_log[name].append((now(), is_ready(url)))
        time.sleep(0.2)


def not_ready_between(name, t_from, t_to=None):
    """Seconds role NAME was seen not ready within [t_from, t_to] (sampling resolution)."""
    samples = [(t, ok) for t, ok in ready_log[name] if t >= t_from and (t_to is None or t <= t_to)]
    bad = 0.0
    for (t, ok), (t2, _) in zip(samples, samples[1:]):
        if not ok:
            bad += t2 - t
    return bad, any(not ok for _, ok in samples)


def wait_all_ready(limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(is_ready(u) for u in ROLES.values()):
            return True
        time.sleep(0.2)
    return False


# ---------------------------------------------------------------- users
def funded_user(name):
    s, u = call("POST", f"{A}/api/admin/users", ADMIN, {"name": name})
    if s != 201:
        fail(f"create user: {s} {u}")
    for asset, amount in DEPOSITS:
        s, b = call("POST", f"{B}/api/admin/users/{u['user_id']}/deposits", ADMIN, {"asset": asset, "amount": amount})
        if s != 201:
            fail(f"deposit: {s} {b}")
    return u


users = [funded_user(f"fault-{SCENARIO}-{os.getpid()}-{i}") for i in range(USERS)]
# Redis returns empty: a user that traded before the outage and never after must still
# find its position in Redis (rebuilt by the risk role), not only the busy ones.
quiet = None
if SCENARIO == "redis":
    quiet = funded_user(f"fault-quiet-{os.getpid()}")
    users_and_quiet = users + [quiet]
else:
    users_and_quiet = users
try:
    everyone = json.load(open(USERS_FILE))
except (OSError, ValueError):
    everyone = []
everyone += [{"user_id": u["user_id"], "api_key": u["api_key"], "deposits": dict(DEPOSITS)} for u in users_and_quiet]
with open(USERS_FILE, "w") as f:
    json.dump(everyone, f)

# ---------------------------------------------------------------- load
lock = threading.Lock()
acked = {}  # idempotency key -> (user index, order id)
unknown = {}  # idempotency key -> (user index, body)
answers = []  # (start, end, status)
refused = 0
bus_unavailable = {}  # key -> (user index, body): 503 BUS_UNAVAILABLE, "nothing was done"
stop = threading.Event()


def load(idx):
    global refused
    u = users[idx]
    rnd = random.Random(idx * 7919 + os.getpid())
    n = 0
    while not stop.is_set():
        n += 1
        side = "BUY" if rnd.random() < 0.5 else "SELL"
        price = f"{rnd.randint(29990, 30010)}.00"
        body = {"symbol": SYMBOL, "side": side, "type": "LIMIT", "price": price, "quantity": "0.01"}
        key = f"f{SCENARIO}{os.getpid()}-{idx}-{n}"
        url = A if n % 2 else B
        t = now()
        s, r = call("POST", f"{url}/api/orders", u["api_key"], body, key, timeout=15)
        with lock:
            answers.append((t, now(), s))
            if s == 201:
                acked[key] = (idx, r["order_id"])
            elif s == 503 and isinstance(r, dict) and r.get("error", {}).get("code") == "BUS_UNAVAILABLE":
                bus_unavailable[key] = (idx, body)
            elif s in (0, 409, 500, 502, 503, 504):
                unknown[key] = (idx, body)
            else:
                refused += 1
        if s == 503:
            time.sleep(0.2)
        elif s != 201 and s != 429:
            time.sleep(0.05)


def acked_since(t):
    with lock:
        return sum(1 for start, _, s in answers if s == 201 and start >= t)


# ---------------------------------------------------------------- faults
def proc_spec(pid):
    cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
    environ = dict(kv.split(b"=", 1) for kv in open(f"/proc/{pid}/environ", "rb").read().split(b"\0") if b"=" in kv)
    return cmdline, {k.decode(): v.decode() for k, v in environ.items()}, os.readlink(f"/proc/{pid}/cwd")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return open(f"/proc/{pid}/stat").read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_gone(pid, limit):
    deadline = time.monotonic() + limit
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def spawn(spec, log_path, pid_file):
    cmdline, env, cwd = spec
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmdline, env=env, cwd=cwd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    with open(pid_file, "w") as f:
        f.write(str(proc.pid))
    return proc.pid


def kill_role(role):
    """kill -9 of a role process, restarted 2 s later; returns (down_at, up_at)."""
    pid_file = os.path.join(DEV, "pids", role)
    pid = int(open(pid_file).read())
    spec = proc_spec(pid)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 10)
    down_at = now()
    say(f"killed {role} (pid {pid}) after {len(acked)} acknowledged orders")
    time.sleep(2)
    new = spawn(spec, os.path.join(DEV, "logs", f"{role}.log"), pid_file)
    say(f"restarted {role} as pid {new}")
    return down_at, now()


def server_outage(name, sig, spec_of):
    """Stops server NAME with SIG, keeps it down DOWN s, starts it again the same way."""
    sdir = os.path.join(DEV, "servers", name)
    pid = int(open(os.path.join(sdir, "pid")).read())
    spec = spec_of(pid)
    os.kill(pid, sig)
    if not wait_gone(pid, 30):
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 10)
    down_at = now()
    say(f"{name} (pid {pid}) stopped with {signal.Signals(sig).name} after {len(acked)} acknowledged orders")
    if name == "redis":
        same_key_pairs()
    time.sleep(max(0.0, DOWN - (now() - down_at)))
    new = spawn(spec, os.path.join(sdir, "server.log"), os.path.join(sdir, "pid"))
    up_at = now()
    say(f"{name} started again as pid {new}")
    return down_at, up_at


dup_pairs = []  # (key, idx, [(status, answer) from A, from B])


def same_key_pairs():
    """While Redis is down (no idempotency claims): one key sent to both intakes at once."""
    rnd = random.Random(os.getpid())
    for n in range(20):
        idx = n % USERS
        price = f"{rnd.randint(29990, 30010)}.00"
        body = {"symbol": SYMBOL, "side": "BUY" if n % 2 else "SELL", "type": "LIMIT", "price": price,
                "quantity": "0.01"}
        key = f"dup{os.getpid()}-{n}"
        got = [None, None]

        def send(i, url):
            got[i] = call("POST", f"{url}/api/orders", users[idx]["api_key"], body, key)

        pair = [threading.Thread(target=send, args=(i, url)) for i, url in enumerate((A, B))]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
        dup_pairs.append((key, idx, body, got))


def redis_spec(pid):
    # Redis writes its process title over its argv and environment, so /proc shows neither:
    # start it from its config file as scripts/servers does, with our environment (a short
    # one would truncate the title, which must name the server dir for scripts/dev-down).
    sdir = os.path.join(DEV, "servers", "redis")
    return ["redis-server", os.path.join(sdir, "redis.conf")], dict(os.environ), sdir


def recover(limit=90):
    """Waits until every role is ready and places are acknowledged again; the time when
    every role was ready."""
    if not wait_all_ready(limit):
        fail(f"not every role ready {limit} s after the fault: "
             + ", ".join(n for n, u in ROLES.items() if not is_ready(u)))
    ready_at = now()
    deadline = time.monotonic() + limit
    while acked_since(ready_at) < 10:
        if time.monotonic() > deadline:
            fail(f"places not acknowledged again within {limit} s of recovery")
        time.sleep(0.2)
    return ready_at


threading.Thread(target=watch, daemon=True).start()
threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(USERS)]
for t in threads:
    t.start()
time.sleep(SECONDS)
if quiet is not None:
    # One marketable IOC order (nothing of it rests): a fill now, none after the outage.
    for side, price in (("BUY", "30010.00"), ("SELL", "29990.00")) * 5:
        body = {"symbol": SYMBOL, "side": side, "type": "LIMIT", "price": price, "quantity": "0.01",
                "time_in_force": "IOC"}
        s, r = call("POST", f"{A}/api/orders", quiet["api_key"], body, f"quiet-{os.getpid()}-{side}-{now()}")
        if s == 201 and Decimal(r["filled_quantity"]) > 0:
            say(f"quiet user {quiet['user_id']} {side} filled {r['filled_quantity']}")
            break
        time.sleep(0.5)
    else:
        fail("the quiet user's IOC orders never filled")
    time.sleep(1)  # the risk role writes its position
before = len(acked)
outages = []  # (down_at, up_at, every role ready again at)
if SCENARIO in ("matching", "risk"):
    outages.append(kill_role(SCENARIO) + (recover(),))
elif SCENARIO == "broker":
    for sig in (signal.SIGTERM, signal.SIGKILL):
        outages.append(server_outage("kafka", sig, proc_spec))
        outages[-1] += (recover(),)
elif SCENARIO == "redis":
    outages.append(server_outage("redis", signal.SIGTERM, redis_spec))
    outages[-1] += (recover(),)
restored = now()
time.sleep(SECONDS)
stop.set()
for t in threads:
    t.join(timeout=30)
watch_stop.set()
after_recovery = acked_since(restored)

# ---------------------------------------------------------------- during the outages
acked_while_down = 0  # sent and answered while the server or role was down
unavailable_until_ready = 0  # 503 from the fault until every role was ready again
for down_at, up_at, ready_at in outages:
    for start, end, s in answers:
        # (a request sent before may have been made durable before the fault, and its
        # answer finished just after)
        if down_at <= start and end <= up_at:
            acked_while_down += s == 201
        if down_at <= end <= ready_at:
            unavailable_until_ready += s == 503
for name in ROLES:
    worst = 0.0
    seen_false = True
    for i, (down_at, _, _) in enumerate(outages):
        bad, seen = not_ready_between(name, down_at, outages[i + 1][0] if i + 1 < len(outages) else None)
        worst = max(worst, bad)
        seen_false &= seen
    figure(f"not_ready_seconds_{name.replace('-', '_')}", f"{worst:.1f}")
    if SCENARIO in ("broker", "redis") and not seen_false:
        fail(f"{name}: /ready never went false while {'Kafka' if SCENARIO == 'broker' else 'Redis'} was down")
if SCENARIO == "broker" and acked_while_down:
    fail(f"{acked_while_down} places got 201 while the broker was down")

# A key sent to both intakes at once while Redis was down: one order at most.
for key, idx, body, got in dup_pairs:
    ids = {r["order_id"] for st, r in got if st == 201}
    if len(ids) > 1:
        fail(f"key {key} sent to both intakes while Redis was down got two orders: {sorted(ids)}")
    if ids:
        acked[key] = (idx, ids.pop())
    elif any(st in (0, 409, 500, 502, 503, 504) for st, _ in got):
        unknown[key] = (idx, body)
    else:
        refused += 1
if dup_pairs:
    figure("same_key_pairs_while_down", len(dup_pairs))
    figure("same_key_pairs_both_201", sum(1 for _, _, _, got in dup_pairs if all(st == 201 for st, _ in got)))

# ---------------------------------------------------------------- resolve unknown outcomes
deadline = time.monotonic() + 90
conflicts = 0
for key, (idx, body) in list(unknown.items()):
    while True:
        s, r = call("POST", f"{A}/api/orders", users[idx]["api_key"], body, key)
        if s == 201:
            acked[key] = (idx, r["order_id"])
            break
        if s not in (0, 409, 500, 502, 503, 504):
            refused += 1
            break
        conflicts += s == 409
        if time.monotonic() > deadline:
            fail(f"key {key} still has no definite answer: {s} {r}")
        time.sleep(0.2)

figure("acknowledged_orders", len(acked))
figure("acknowledged_before_fault", before)
figure("acknowledged_after_recovery", after_recovery)
figure("acknowledged_while_down", acked_while_down)
figure("unavailable_until_ready", unavailable_until_ready)
figure("bus_unavailable_nothing_done", len(bus_unavailable))
figure("unknown_then_resolved", len(unknown))
figure("refused_orders", refused)
figure("seconds_to_ready_again", f"{max(r - u for _, u, r in outages):.1f}")
lat = sorted(end - start for start, end, _ in answers)
if lat:
    figure("place_p50_ms", f"{lat[len(lat) // 2] * 1000:.1f}")
    figure("place_max_ms", f"{lat[-1] * 1000:.1f}")

# ---------------------------------------------------------------- every acknowledged order once
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
        # (a key answered 503 BUS_UNAVAILABLE, "nothing was done", shows up here as extra)
        missing = ids_by_user[idx] - set(seen)
        extra = set(seen) - ids_by_user[idx]
        fail(f"user {idx}: acknowledged but missing {sorted(missing)[:5]}, "
             f"present but never acknowledged {sorted(extra)[:5]}")


# ---------------------------------------------------------------- books on three replicas
def books():
    out = []
    for url in (A, B, M):
        s, book = call("GET", f"{url}/api/market-data/orderbook/{SYMBOL}?depth=1000", users[0]["api_key"])
        if s != 200:
            fail(f"book via {url}: {s} {book}")
        out.append(book)
    return out


deadline = time.monotonic() + 20
while True:
    bs = books()
    if bs[0] == bs[1] == bs[2]:
        break
    if time.monotonic() > deadline:
        fail(f"the three replicas' books differ (sequences {[b.get('sequence') for b in bs]})")
    time.sleep(0.5)


# ---------------------------------------------------------------- ledger
def all_pages(path, token, field):
    rows, cursor = [], ""
    while True:
        s, page = call("GET", f"{A}{path}{'&' if '?' in path else '?'}limit=1000{cursor}", token)
        if s != 200:
            fail(f"{path}: {s} {page}")
        rows += page[field]
        if not page.get("next_cursor"):
            return rows
        cursor = f"&cursor={page['next_cursor']}"


held, deposited, fees = {}, {}, {}
for u in everyone:
    for asset, amount in u["deposits"].items():
        deposited[asset] = deposited.get(asset, Decimal(0)) + Decimal(amount)
    s, bal = call("GET", f"{A}/api/accounts/balances", u["api_key"])
    if s != 200:
        fail(f"balances: {s} {bal}")
    for b in bal["balances"]:
        if b["available"].startswith("-") or b["reserved"].startswith("-"):
            fail(f"negative balance of user {u['user_id']}: {b}")
        held[b["asset"]] = held.get(b["asset"], Decimal(0)) + Decimal(b["available"]) + Decimal(b["reserved"])
    for e in all_pages("/api/executions", u["api_key"], "executions"):
        fees[e["fee_asset"]] = fees.get(e["fee_asset"], Decimal(0)) + Decimal(e["fee"])
for asset in sorted(set(held) | set(deposited)):
    total = held.get(asset, Decimal(0)) + fees.get(asset, Decimal(0))
    if total != deposited.get(asset, Decimal(0)):
        fail(f"ledger: {asset} held {held.get(asset)} + fees {fees.get(asset, 0)} = {total}, "
             f"deposited {deposited.get(asset)}")
figure("ledger_users", len(everyone))
# The engine's own ledger on the three replicas (the stack's namespace holds only the users
# of these scenarios): it conserves, its deposits are ours, its fee account holds the fees
# of every fill.
for url in (A, B, M):
    s, led = call("GET", f"{url}/api/admin/ledger", ADMIN)
    if s != 200:
        fail(f"ledger via {url}: {s} {led}")
    for a in led["assets"]:
        want_fees = fees.get(a["asset"], Decimal(0))
        if not a["conserves"] or Decimal(a["net_deposits"]) != deposited.get(a["asset"], Decimal(0)) \
                or Decimal(a["fees"]) != want_fees:
            fail(f"engine ledger via {url}: {a}; deposited {deposited.get(a['asset'])}, fees of the fills {want_fees}")
figure("fees_usd", fees.get("USD", Decimal(0)))

# ---------------------------------------------------------------- positions kept by risk
s, syms = call("GET", f"{A}/api/symbols", users[0]["api_key"])
spec = next(x for x in (syms["symbols"] if isinstance(syms, dict) else syms) if x["symbol"] == SYMBOL)
lot = Decimal(spec["lot_size"])
port = ENV["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]


def redis_qty(uid):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "--raw", "GET",
                          f"{PREFIX}position:{uid}:{SYMBOL}"], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        fail(f"redis-cli: {out.stderr}")
    raw = out.stdout.strip()
    return Decimal(json.loads(raw)["qty_lots"]) * lot if raw else Decimal(0)


def api_qty(u):
    s, p = call("GET", f"{A}/api/risk/positions", u["api_key"])
    if s != 200:
        fail(f"positions: {s} {p}")
    return sum((Decimal(x["quantity"]) for x in p["positions"] if x["symbol"] == SYMBOL), Decimal(0))


deadline = time.monotonic() + 30
while True:
    differ = [(u["user_id"], redis_qty(u["user_id"]), api_qty(u)) for u in everyone]
    differ = [d for d in differ if d[1] != d[2]]
    if not differ:
        break
    if time.monotonic() > deadline:
        fail(f"positions in Redis differ from the API's for {len(differ)} users, e.g. "
             f"user {differ[0][0]}: Redis {differ[0][1]}, API {differ[0][2]}")
    time.sleep(0.5)

print(f"ok   fault {SCENARIO}: {len(acked)} acknowledged orders each present once; books equal on three "
      f"replicas (sequence {bs[0]['sequence']}); ledger conserves over {len(everyone)} users and in the engine; "
      f"Redis positions equal the API's; every role ready again", flush=True)
