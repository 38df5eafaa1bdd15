-- Read model, snapshots and projector offsets of the distributed QuantTrader.
--
-- Column conventions (the same as the all-in-one SQLite read model): ids, sequence
-- numbers, ticks, lots and minor units are BIGINT; values that may exceed i64 (position
-- cost and realised PnL) are NUMERIC(39,0); every *_ts and open_time is nanoseconds since
-- the Unix epoch (UTC); enums are TEXT (status, side, type, tif and stp as the API codes,
-- reasons as the Rust variant names).

CREATE TABLE assets (
    asset_id INTEGER PRIMARY KEY,
    code     TEXT    NOT NULL UNIQUE,
    scale    INTEGER NOT NULL
);

CREATE TABLE symbols (
    symbol_id INTEGER PRIMARY KEY,
    name      TEXT  NOT NULL UNIQUE,
    spec      JSONB NOT NULL          -- the SymbolSpec
);

CREATE TABLE users (
    user_id      BIGINT PRIMARY KEY,
    name         TEXT UNIQUE,
    api_key_hash TEXT UNIQUE,
    created_ts   BIGINT NOT NULL,
    cmd_seq      BIGINT NOT NULL
);

CREATE TABLE balances (
    user_id    BIGINT  NOT NULL,
    asset_id   INTEGER NOT NULL,
    available  BIGINT  NOT NULL,
    reserved   BIGINT  NOT NULL,
    updated_ts BIGINT  NOT NULL,
    PRIMARY KEY (user_id, asset_id)
);

CREATE TABLE orders (
    order_id        BIGINT  PRIMARY KEY,          -- seed: { orderId: 1 } unique
    user_id         BIGINT  NOT NULL,
    symbol_id       INTEGER NOT NULL,
    client_order_id TEXT,
    side            TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    tif             TEXT    NOT NULL,
    price           BIGINT,
    stop_price      BIGINT,
    qty             BIGINT  NOT NULL,
    filled          BIGINT  NOT NULL DEFAULT 0,
    quote_filled    BIGINT  NOT NULL DEFAULT 0,   -- sum of price x qty of the fills, quote minor units
    fees            BIGINT  NOT NULL DEFAULT 0,   -- quote minor units, negative for rebates
    status          TEXT    NOT NULL,
    post_only       BOOLEAN NOT NULL,
    stp             TEXT    NOT NULL,
    triggered       BOOLEAN NOT NULL DEFAULT false,
    reject_reason   TEXT,
    cancel_reason   TEXT,
    created_ts      BIGINT  NOT NULL,
    updated_ts      BIGINT  NOT NULL,
    cmd_seq         BIGINT  NOT NULL
);
-- seed 004: { userId: 1, createdAt: -1 }, { symbol: 1, status: 1 }, { createdAt: -1 };
-- the order id is the keyset tie-breaker of the user's list.
CREATE INDEX orders_user_created  ON orders (user_id, created_ts DESC, order_id DESC);
CREATE INDEX orders_user_status   ON orders (user_id, status);
CREATE INDEX orders_symbol_status ON orders (symbol_id, status);
CREATE INDEX orders_created       ON orders (created_ts DESC);

CREATE TABLE executions (
    execution_id BIGINT  PRIMARY KEY,   -- trade_id * 2 + (1 for the taker): stable across rebuilds
    trade_id     BIGINT  NOT NULL,
    order_id     BIGINT  NOT NULL,
    user_id      BIGINT  NOT NULL,
    symbol_id    INTEGER NOT NULL,
    side         TEXT    NOT NULL,
    price        BIGINT  NOT NULL,
    qty          BIGINT  NOT NULL,
    quote_qty    BIGINT  NOT NULL,
    fee          BIGINT  NOT NULL,
    is_maker     BOOLEAN NOT NULL,
    ts           BIGINT  NOT NULL,
    cmd_seq      BIGINT  NOT NULL
);
CREATE INDEX executions_user_ts ON executions (user_id, ts DESC, execution_id DESC);
CREATE INDEX executions_order   ON executions (order_id);

CREATE TABLE trades (
    trade_id   BIGINT  PRIMARY KEY,
    symbol_id  INTEGER NOT NULL,
    price      BIGINT  NOT NULL,
    qty        BIGINT  NOT NULL,
    taker_side TEXT    NOT NULL,
    ts         BIGINT  NOT NULL,
    cmd_seq    BIGINT  NOT NULL
);
CREATE INDEX trades_symbol_id ON trades (symbol_id, trade_id DESC);
CREATE INDEX trades_symbol_ts ON trades (symbol_id, ts);

CREATE TABLE candles (
    symbol_id    INTEGER NOT NULL,
    interval_s   INTEGER NOT NULL,
    open_time    BIGINT  NOT NULL,
    open         BIGINT  NOT NULL,
    high         BIGINT  NOT NULL,
    low          BIGINT  NOT NULL,
    close        BIGINT  NOT NULL,
    volume       BIGINT  NOT NULL,   -- lots
    quote_volume BIGINT  NOT NULL,   -- quote minor units
    trades       BIGINT  NOT NULL,
    PRIMARY KEY (symbol_id, interval_s, open_time)
);

CREATE TABLE positions (
    user_id    BIGINT         NOT NULL,
    symbol_id  INTEGER        NOT NULL,
    qty        BIGINT         NOT NULL,
    cost       NUMERIC(39, 0) NOT NULL,
    realized   NUMERIC(39, 0) NOT NULL,
    updated_ts BIGINT         NOT NULL,
    PRIMARY KEY (user_id, symbol_id)   -- seed: { userId: 1, symbol: 1 } unique
);

-- Fallback of the Redis idempotency keys, rebuilt from the journal's command meta.
CREATE TABLE idempotency (
    user_id      BIGINT  NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT,
    order_id     BIGINT  NOT NULL,
    http_status  INTEGER NOT NULL,
    body         TEXT    NOT NULL,   -- JSON of PlaceResponse
    created_ts   BIGINT  NOT NULL,
    cmd_seq      BIGINT  NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_ts);

-- Engine snapshots per shard: a restarted service loads the newest and replays Kafka.
CREATE TABLE snapshots (
    shard    TEXT   NOT NULL,
    seq      BIGINT NOT NULL,   -- last_cmd_seq of the snapshot
    hash     TEXT   NOT NULL,   -- SHA-256 of body, checked on load
    body     BYTEA  NOT NULL,   -- Snapshot::to_bytes
    saved_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (shard, seq)
);

-- Projection high-water mark per source stream (a matching shard): the projector skips
-- commands at or below it, in the same transaction that writes their rows.
CREATE TABLE projector_offsets (
    source     TEXT   PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
