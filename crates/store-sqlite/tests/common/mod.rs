//! Shared test support: temporary data directories, a driver that applies commands to an
//! exchange and keeps each command with its events, and a dump of the whole read model
//! for equality checks.
#![allow(dead_code)]

use qt_core::{NewOrder, OrderId, OrderType, Price, Qty, Side, StpMode, SymbolId, TimeInForce, UserId};
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig, Event, EventEnvelope, Exchange};
use qt_store_sqlite::{schema::READ_MODEL_TABLES, Projected, Projector};
use qt_testkit::fixtures::reference_data;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!(
            "qt-store-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 2026-01-01T00:00:00Z in nanoseconds.
pub const START_TS: i64 = 1_767_225_600_000_000_000;

/// Applies commands with increasing sequence numbers and keeps every command with the
/// events it produced.
#[derive(Debug)]
pub struct Driver {
    pub ex: Exchange,
    pub seq: u64,
    pub ts: i64,
    /// Nanoseconds added to `ts` before each command (0 for equal timestamps).
    pub step: i64,
    pub next_order: u64,
    pub log: Vec<(CommandEnvelope, Vec<EventEnvelope>)>,
}

impl Driver {
    /// An exchange with risk on and the testkit's reference data (USD, BTC, ETH;
    /// BTC-USD, ETH-USD).
    pub fn new() -> Driver {
        let mut d = Driver {
            ex: Exchange::new(EngineConfig::default()),
            seq: 0,
            ts: START_TS,
            step: 1_000_000,
            next_order: 1,
            log: Vec::new(),
        };
        for c in reference_data() {
            d.cmd(c);
        }
        d
    }

    pub fn cmd_meta(&mut self, cmd: Command, meta: Option<CommandMeta>) -> Vec<Event> {
        self.seq += 1;
        self.ts += self.step;
        let env = CommandEnvelope { seq: self.seq, ts: self.ts, cmd, meta: meta.map(Box::new) };
        let mut out = Vec::new();
        self.ex.apply(&env, &mut out);
        let events = out.iter().map(|e| e.event.clone()).collect();
        self.log.push((env, out));
        events
    }

    pub fn cmd(&mut self, cmd: Command) -> Vec<Event> {
        self.cmd_meta(cmd, None)
    }

    /// Creates a user with a name and an API key hash `hash-<name>`.
    pub fn user(&mut self, id: u64, name: &str) -> UserId {
        let user = UserId(id);
        let meta = CommandMeta {
            user_name: Some(name.to_string()),
            api_key_hash: Some(format!("hash-{name}")),
            ..CommandMeta::default()
        };
        self.cmd_meta(Command::CreateUser { user, limits: None }, Some(meta));
        user
    }

    pub fn order(&mut self, user: UserId, symbol: SymbolId, side: Side, price: i64, qty: i64) -> NewOrder {
        let id = OrderId(self.next_order);
        self.next_order += 1;
        NewOrder {
            order_id: id,
            user,
            symbol,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price: Some(Price(price)),
            stop_price: None,
            qty: Qty(qty),
            post_only: false,
            stp: StpMode::CancelNewest,
            client_order_id: Some(format!("c-{id:?}")),
        }
    }

    pub fn place_key(&mut self, o: NewOrder, key: Option<&str>) -> Vec<Event> {
        let meta = key.map(|k| CommandMeta {
            idempotency_key: Some(k.to_string()),
            request_hash: Some(format!("rh-{k}")),
            ..CommandMeta::default()
        });
        self.cmd_meta(Command::Place(o), meta)
    }

    /// Projected views of the log entries in `range`.
    pub fn projected(&self, from: usize, to: usize) -> Vec<Projected<'_>> {
        self.log[from..to].iter().map(|(c, e)| Projected { command: c, events: e }).collect()
    }
}

/// Projects a whole log in batches of `batch` commands.
pub fn project_all(p: &mut Projector, log: &[(CommandEnvelope, Vec<EventEnvelope>)], batch: usize) {
    for chunk in log.chunks(batch.max(1)) {
        let b: Vec<Projected<'_>> = chunk.iter().map(|(c, e)| Projected { command: c, events: e }).collect();
        p.project(&b).unwrap();
    }
}

/// Every row of every read-model table (and the projection mark), sorted, as text.
pub fn dump(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut out = Vec::new();
    for table in READ_MODEL_TABLES.iter().chain(["meta"].iter()) {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let vals: Vec<String> = (0..n).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect();
                Ok(format!("{table}: {}", vals.join(" | ")))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.extend(rows);
    }
    out
}

/// The read model agrees with the exchange on balances, positions and open orders.
pub fn assert_matches_engine(reader: &qt_store_sqlite::Reader, ex: &Exchange, users: &[UserId]) {
    for &u in users {
        let balances = reader.balances(u).unwrap();
        for b in &balances {
            let e = ex.ledger().balance(u, b.asset_id).unwrap_or_default();
            assert_eq!((b.available, b.reserved), (e.available.0, e.reserved.0), "balance {u:?} {:?}", b.asset_id);
        }
        let positions = reader.positions(u).unwrap();
        let state = ex.user(u).unwrap();
        for p in &positions {
            let e = state.positions[p.symbol_id.0 as usize];
            assert_eq!((p.qty, p.cost, p.realized), (e.qty, e.cost, e.realized), "position {u:?}");
        }
        let mut open: Vec<OrderId> = state.open_orders.iter().copied().collect();
        open.sort_unstable();
        assert_eq!(reader.open_order_ids(u, None).unwrap(), open, "open orders of {u:?}");
        for id in open {
            let view = reader.order(u, id).unwrap().unwrap();
            let live = ex.order(id).unwrap();
            assert_eq!(view.status, live.status, "status of {id:?}");
            assert_eq!(view.filled, live.filled.0, "filled of {id:?}");
            assert_eq!(view.qty, live.qty.0, "qty of {id:?}");
            if live.order.order_type != OrderType::Market && live.order.order_type != OrderType::Stop {
                assert_eq!(view.price, live.price.map(|p| p.0), "price of {id:?}");
            }
        }
    }
}
