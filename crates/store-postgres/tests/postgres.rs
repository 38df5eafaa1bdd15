//! Integration tests against a real PostgreSQL (`DATABASE_URL`, as exported by
//! `scripts/servers/with-servers postgres -- …`). Without it they print SKIPPED and pass,
//! unless `QT_REQUIRE_SERVERS=1`. Every test works in a schema of its own.

use qt_core::{OrderStatus, Side, UserId};
use qt_engine::ports::SnapshotStore as _;
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig, EventEnvelope, Exchange};
use qt_store_postgres::{
    Ingress, OrderFilter, PgConfig, PgStore, Projected, StatusFilter, StoreError, SyncSnapshotStore, IDEMPOTENCY_TTL_NS,
};
use qt_testkit::fixtures::{reference_data, BTC_USD, UNIT, USD};
use qt_testkit::workload::{Workload, WorkloadSpec};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

fn database_url(test: &str) -> Option<String> {
    qt_testkit::servers::server_urls(test, ["DATABASE_URL"]).map(|[u]| u)
}

/// A store on a fresh schema of its own, migrated.
async fn store(url: String) -> PgStore {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let schema = format!("t{}_{nanos}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let s =
        PgStore::connect(&PgConfig { schema: Some(schema), max_connections: 4, ..PgConfig::with_url(url) }).unwrap();
    assert_eq!(s.migrate().await.unwrap(), vec![1, 2]);
    s
}

/// Applies commands to an exchange, returning each with its events.
fn run(ex: &mut Exchange, cmds: Vec<CommandEnvelope>) -> Vec<(CommandEnvelope, Vec<EventEnvelope>)> {
    cmds.into_iter()
        .map(|c| {
            let mut out = Vec::new();
            ex.apply(&c, &mut out);
            (c, out)
        })
        .collect()
}

fn projected(v: &[(CommandEnvelope, Vec<EventEnvelope>)]) -> Vec<Projected<'_>> {
    v.iter().map(|(c, e)| Projected::of(c, e)).collect()
}

/// Every read-model row as text, for before/after comparisons.
async fn dump(s: &PgStore) -> String {
    let c = s.pool().get().await.unwrap();
    let mut out = String::new();
    for (table, order) in [
        ("assets", "asset_id"),
        ("symbols", "symbol_id"),
        ("users", "user_id"),
        ("balances", "user_id, asset_id"),
        ("orders", "order_id"),
        ("executions", "execution_id"),
        ("trades", "trade_id"),
        ("candles", "symbol_id, interval_s, open_time"),
        ("positions", "user_id, symbol_id"),
        ("idempotency", "user_id, key"),
        ("projector_offsets", "source"),
    ] {
        let sql = format!("SELECT t::TEXT FROM (SELECT * FROM {table} ORDER BY {order}) t");
        for r in c.query(&sql, &[]).await.unwrap() {
            let row: String = r.get(0);
            // updated_at is the wall clock of the write, not data.
            out.push_str(&format!(
                "{table} {}\n",
                if table == "projector_offsets" { row.split(',').take(2).collect::<Vec<_>>().join(",") } else { row }
            ));
        }
    }
    out
}

fn setup_commands() -> Vec<CommandEnvelope> {
    let mut cmds: Vec<Command> = reference_data();
    for u in 1..=2u64 {
        cmds.push(Command::CreateUser { user: UserId(u), limits: None });
        cmds.push(Command::Deposit { user: UserId(u), asset: USD, amount: qt_core::Amount(1_000_000 * UNIT) });
        cmds.push(Command::Deposit {
            user: UserId(u),
            asset: qt_testkit::fixtures::BTC,
            amount: qt_core::Amount(100 * UNIT),
        });
    }
    cmds.into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut env = CommandEnvelope::new(i as u64 + 1, 1_700_000_000_000_000_000 + i as i64 * 1_000_000, c);
            if let Command::CreateUser { user, .. } = &env.cmd {
                env.meta = Some(Box::new(CommandMeta {
                    user_name: Some(format!("user{}", user.0)),
                    api_key_hash: Some(format!("hash{}", user.0)),
                    ..CommandMeta::default()
                }));
            }
            env
        })
        .collect()
}

fn place(seq: u64, id: u64, user: u64, side: Side, price: i64, qty: i64, key: Option<&str>) -> CommandEnvelope {
    let mut env = CommandEnvelope::new(
        seq,
        1_700_000_000_000_000_000 + seq as i64 * 1_000_000,
        Command::Place(qt_core::NewOrder {
            order_id: qt_core::OrderId(id),
            user: UserId(user),
            symbol: BTC_USD,
            side,
            order_type: qt_core::OrderType::Limit,
            tif: qt_core::TimeInForce::Gtc,
            price: Some(qt_core::Price(price)),
            stop_price: None,
            qty: qt_core::Qty(qty),
            post_only: false,
            stp: qt_core::StpMode::CancelNewest,
            client_order_id: Some(format!("c{id}")),
        }),
    );
    if let Some(k) = key {
        env.meta = Some(Box::new(CommandMeta {
            idempotency_key: Some(k.into()),
            request_hash: Some(format!("h-{k}")),
            ..CommandMeta::default()
        }));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_twice_harmlessly_and_refuse_an_edited_one() {
    let Some(url) = database_url("migrations_apply_twice_harmlessly_and_refuse_an_edited_one") else { return };
    let s = store(url).await;
    assert_eq!(s.migrate().await.unwrap(), Vec::<i64>::new(), "second run applies nothing");
    // Two replicas starting at once: the advisory lock serializes them.
    let (a, b) = tokio::join!(s.migrate(), s.migrate());
    assert!(a.unwrap().is_empty() && b.unwrap().is_empty());
    let c = s.pool().get().await.unwrap();
    c.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1", &[]).await.unwrap();
    drop(c);
    assert!(matches!(s.migrate().await, Err(StoreError::MigrationChanged { version: 1, .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_is_idempotent_by_source_and_sequence_and_queries_match_the_sqlite_shapes() {
    let Some(url) = database_url("projection_is_idempotent_by_source_and_sequence_and_queries_match_the_sqlite_shapes")
    else {
        return;
    };
    let s = store(url).await;
    let mut ex = Exchange::new(EngineConfig::default());
    let mut cmds = setup_commands();
    let n = cmds.len() as u64;
    let price = 3_000_000; // 30,000.00 at tick 0.01
    cmds.push(place(n + 1, 1, 1, Side::Sell, price, 50, Some("k1")));
    cmds.push(place(n + 2, 2, 1, Side::Sell, price + 100, 50, None));
    cmds.push(place(n + 3, 3, 2, Side::Buy, price + 100, 80, Some("k3")));
    cmds.push(CommandEnvelope::new(
        n + 4,
        1_700_000_001_000_000_000,
        Command::Cancel { user: UserId(1), order_id: qt_core::OrderId(2) },
    ));
    // A place refused by the engine (unknown symbol) still lands as REJECTED.
    let mut bad = place(n + 5, 4, 2, Side::Buy, price, 1, Some("k4"));
    if let Command::Place(o) = &mut bad.cmd {
        o.symbol = qt_core::SymbolId(9);
    }
    cmds.push(bad);
    let applied = run(&mut ex, cmds);
    let batch = projected(&applied);

    let mut p = s.projector();
    assert_eq!(p.project("matching-0", &batch).await.unwrap(), applied.len());
    let first = dump(&s).await;
    assert!(first.contains("orders"), "{first}");
    // The same batch again, by this projector and by a new one (a restarted service),
    // and a batch overlapping it: nothing changes.
    assert_eq!(p.project("matching-0", &batch).await.unwrap(), 0);
    assert_eq!(s.projector().project("matching-0", &batch[3..]).await.unwrap(), 0);
    assert_eq!(dump(&s).await, first);
    assert_eq!(p.projected_seq("matching-0").await.unwrap(), n + 5);
    assert_eq!(s.projector().offsets().await.unwrap(), vec![("matching-0".to_string(), n + 5)]);

    let r = s.reader();
    let u1 = r.user_by_key_hash("hash1").await.unwrap().unwrap();
    assert_eq!((u1.user_id, u1.name.as_deref()), (UserId(1), Some("user1")));
    let o3 = r.order(UserId(2), qt_core::OrderId(3)).await.unwrap().unwrap();
    assert_eq!(o3.filled, 80);
    assert!(matches!(o3.status, OrderStatus::Filled | OrderStatus::Settled), "{:?}", o3.status);
    assert!(r.order(UserId(1), qt_core::OrderId(3)).await.unwrap().is_none(), "another user's order is invisible");
    assert_eq!(r.order_fills(qt_core::OrderId(3)).await.unwrap().len(), 2);
    let o2 = r.order(UserId(1), qt_core::OrderId(2)).await.unwrap().unwrap();
    assert_eq!(o2.status, OrderStatus::Cancelled);
    let o4 = r.order(UserId(2), qt_core::OrderId(4)).await.unwrap().unwrap();
    assert_eq!(o4.status, OrderStatus::Rejected);

    // Keyset pagination: pages of one, newest first, each order once.
    let mut seen = Vec::new();
    let mut f = OrderFilter { limit: 1, ..OrderFilter::default() };
    loop {
        let (page, next) = r.orders(UserId(1), &f).await.unwrap();
        seen.extend(page.iter().map(|o| o.order_id.0));
        match next {
            Some(c) => f.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, vec![2, 1]);
    let open = OrderFilter { status: Some(StatusFilter::Open), limit: 10, ..OrderFilter::default() };
    assert!(r.orders(UserId(1), &open).await.unwrap().0.is_empty(), "order 1 filled, order 2 cancelled");
    let o1 = r.order(UserId(1), qt_core::OrderId(1)).await.unwrap().unwrap();
    let filled = OrderFilter {
        status: Some(StatusFilter::One(o1.status)),
        symbol: Some(BTC_USD),
        limit: 10,
        ..OrderFilter::default()
    };
    assert_eq!(r.orders(UserId(1), &filled).await.unwrap().0.len(), 1);

    let (execs, _) = r.executions(UserId(2), None, 10, None).await.unwrap();
    assert_eq!(execs.len(), 2);
    assert!(execs.iter().all(|e| !e.is_maker && e.side == Side::Buy));
    assert_eq!(r.trades(BTC_USD, 10).await.unwrap().len(), 2);
    let candles = r.candles(BTC_USD, 60, 10).await.unwrap();
    assert_eq!(candles.iter().map(|c| c.trades).sum::<i64>(), 2);
    assert_eq!(r.balances(UserId(2)).await.unwrap().len(), 2, "USD and BTC");
    let pos = r.positions(UserId(2)).await.unwrap();
    assert_eq!(pos[0].qty, 80);
    assert_eq!(r.symbols().await.unwrap().len(), 2);
    assert_eq!(r.assets().await.unwrap().len(), 3);
    let idem = r.idempotency_at(UserId(2), "k3", 1_700_000_001_000_000_000).await.unwrap().unwrap();
    assert_eq!((idem.http_status, idem.request_hash.as_deref()), (201, Some("h-k3")));
    assert_eq!(idem.response().unwrap().fills.len(), 2);
    let refused = r.idempotency_at(UserId(2), "k4", 1_700_000_001_000_000_000).await.unwrap().unwrap();
    assert_eq!(refused.http_status, 400);
    assert!(
        r.idempotency_at(UserId(2), "k3", 1_800_000_000_000_000_000).await.unwrap().is_none(),
        "expired after 24 h"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_throughput_figure() {
    let Some(url) = database_url("projection_throughput_figure") else { return };
    let s = store(url).await;
    let w = Workload::generate(&WorkloadSpec { symbols: 2, users: 50, orders_per_book: 200, ops: 3_000, seed: 7 });
    let mut ex = Exchange::new(EngineConfig { risk_enabled: false, ..EngineConfig::default() });
    let all: Vec<CommandEnvelope> = w.setup.into_iter().chain(w.ops).collect();
    let applied = run(&mut ex, all);
    let events: usize = applied.iter().map(|(_, e)| e.len()).sum();
    let batch = projected(&applied);
    let mut p = s.projector();
    let t = Instant::now();
    for chunk in batch.chunks(256) {
        p.project("matching-0", chunk).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "FIGURE postgres projection: {} commands, {events} events in {secs:.2} s = {:.0} commands/s, {:.0} events/s (batches of 256, one transaction each)",
        applied.len(),
        applied.len() as f64 / secs,
        events as f64 / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_save_latest_prune_and_refuse_a_corrupt_one() {
    let Some(url) = database_url("snapshots_save_latest_prune_and_refuse_a_corrupt_one") else { return };
    let s = store(url).await;
    let mut ex = Exchange::new(EngineConfig::default());
    let snaps = s.snapshots("matching-0").keep(2);
    assert!(snaps.latest_async().await.unwrap().is_none());
    let mut saved = Vec::new();
    let cmds = setup_commands();
    let last = cmds.len() as u64;
    for env in cmds {
        ex.apply(&env, &mut Vec::new());
        if env.seq % 3 == 0 || env.seq == last {
            let snap = ex.snapshot();
            snaps.save_async(&snap).await.unwrap();
            saved.push(snap);
        }
    }
    let latest = snaps.latest_async().await.unwrap().unwrap();
    assert_eq!(&latest, saved.last().unwrap());
    assert_eq!(Exchange::restore(latest).unwrap().state_hash(), ex.state_hash());
    assert_eq!(snaps.list().await.unwrap().len(), 2, "pruned to the newest two");
    // Another shard is independent.
    assert!(s.snapshots("matching-1").latest_async().await.unwrap().is_none());
    // Saving the same seq again (a retried save) replaces it.
    snaps.save_async(saved.last().unwrap()).await.unwrap();
    assert_eq!(snaps.list().await.unwrap().len(), 2);

    // The engine-thread adapter.
    let handle = tokio::runtime::Handle::current();
    let sync_snaps = snaps.clone();
    let got = tokio::task::spawn_blocking(move || SyncSnapshotStore::new(sync_snaps, handle).latest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.as_ref(), saved.last());

    let c = s.pool().get().await.unwrap();
    c.execute("UPDATE snapshots SET hash = 'x' WHERE shard = 'matching-0'", &[]).await.unwrap();
    assert!(matches!(snaps.latest_async().await, Err(StoreError::Corrupt(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_boundaries_do_not_change_the_rows() {
    let Some(url) = database_url("batch_boundaries_do_not_change_the_rows") else { return };
    let w = Workload::generate(&WorkloadSpec { symbols: 2, users: 20, orders_per_book: 50, ops: 800, seed: 11 });
    let mut ex = Exchange::new(EngineConfig { risk_enabled: false, ..EngineConfig::default() });
    let applied = run(&mut ex, w.setup.into_iter().chain(w.ops).collect());
    let batch = projected(&applied);
    // Orders placed in one batch and changed in a later one take the "delta" path; in one
    // big batch they stay whole rows: both must give the same read model.
    let mut dumps = Vec::new();
    for size in [5, 97, batch.len()] {
        let s = store(url.clone()).await;
        let mut p = s.projector();
        for chunk in batch.chunks(size) {
            p.project("matching-0", chunk).await.unwrap();
        }
        dumps.push(dump(&s).await);
    }
    assert!(dumps[0].lines().count() > 300, "a real workload: {} rows", dumps[0].lines().count());
    assert_eq!(dumps[0], dumps[1]);
    assert_eq!(dumps[0], dumps[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_read_model_answers_exactly_like_the_sqlite_one() {
    let Some(url) = database_url("the_postgres_read_model_answers_exactly_like_the_sqlite_one") else { return };
    let w = Workload::generate(&WorkloadSpec { symbols: 2, users: 12, orders_per_book: 60, ops: 1_500, seed: 5 });
    let mut ex = Exchange::new(EngineConfig { risk_enabled: false, ..EngineConfig::default() });
    let mut cmds: Vec<CommandEnvelope> = w.setup.into_iter().chain(w.ops).collect();
    // Some places carry an idempotency key, as the API's would.
    for c in cmds.iter_mut().filter(|c| matches!(c.cmd, Command::Place(_))).step_by(7) {
        c.meta = Some(Box::new(CommandMeta {
            idempotency_key: Some(format!("key-{}", c.seq)),
            request_hash: Some(format!("hash-{}", c.seq)),
            ..CommandMeta::default()
        }));
    }
    let mut applied = run(&mut ex, cmds);
    // A place that reuses a live order's id (refused: DUPLICATE_ORDER_ID), then a cancel
    // of that live order in the same batch: the live row must take the cancel, the
    // refused place must not overwrite it.
    let live = applied
        .iter()
        .rev()
        .find_map(|(c, _)| match &c.cmd {
            Command::Place(o) if ex.order(o.order_id).is_some() => Some(o.clone()),
            _ => None,
        })
        .expect("a live order");
    let next = applied.last().unwrap().0.seq;
    let ts = applied.last().unwrap().0.ts;
    let mut dup = live.clone();
    dup.user = UserId(if live.user.0 == 1 { 2 } else { 1 });
    dup.qty = qt_core::Qty(live.qty.0 + 1);
    let tail = vec![
        CommandEnvelope::new(next + 1, ts + 1, Command::Place(dup)),
        CommandEnvelope::new(next + 2, ts + 2, Command::Cancel { user: live.user, order_id: live.order_id }),
    ];
    applied.extend(run(&mut ex, tail));
    let n = applied.len();
    assert!(format!("{:?}", applied[n - 2].1).contains("DuplicateOrderId"), "{:?}", applied[n - 2].1);

    let pg = store(url).await;
    let mut p = pg.projector();
    for chunk in projected(&applied).chunks(64) {
        p.project("matching-0", chunk).await.unwrap();
    }
    let dir = std::env::temp_dir().join(format!("qt-pg-parity-{}-{}", std::process::id(), applied.len()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lite = qt_store_sqlite::Store::open(&dir).unwrap();
    let mut lp = lite.projector().unwrap();
    for chunk in applied.chunks(64) {
        let batch: Vec<qt_store_sqlite::Projected<'_>> =
            chunk.iter().map(|(c, e)| qt_store_sqlite::Projected { command: c, events: e }).collect();
        lp.project(&batch).unwrap();
    }
    let (pr, lr) = (pg.reader(), lite.reader().unwrap());
    assert_eq!(pr.symbols().await.unwrap(), lr.symbols().unwrap());
    assert_eq!(pr.assets().await.unwrap(), lr.assets().unwrap());
    let mut compared = 0;
    for u in 1..=12u64 {
        let user = UserId(u);
        let all = OrderFilter { limit: qt_store_postgres::MAX_PAGE, ..OrderFilter::default() };
        let orders = pr.orders(user, &all).await.unwrap();
        assert_eq!(orders, lr.orders(user, &all).unwrap(), "orders of {u}");
        let open = OrderFilter { status: Some(StatusFilter::Open), limit: 25, ..OrderFilter::default() };
        assert_eq!(pr.orders(user, &open).await.unwrap(), lr.orders(user, &open).unwrap(), "open orders of {u}");
        assert_eq!(pr.open_order_ids(user, None).await.unwrap(), lr.open_order_ids(user, None).unwrap());
        assert_eq!(
            pr.executions(user, None, 1000, None).await.unwrap(),
            lr.executions(user, None, 1000, None).unwrap()
        );
        assert_eq!(pr.balances(user).await.unwrap(), lr.balances(user).unwrap(), "balances of {u}");
        assert_eq!(pr.positions(user).await.unwrap(), lr.positions(user).unwrap(), "positions of {u}");
        for o in orders.0.iter().take(20) {
            assert_eq!(pr.order(user, o.order_id).await.unwrap(), lr.order(user, o.order_id).unwrap());
            assert_eq!(pr.order_fills(o.order_id).await.unwrap(), lr.order_fills(o.order_id).unwrap());
        }
        compared += orders.0.len();
    }
    for c in applied.iter().map(|(c, _)| c).filter(|c| c.meta.is_some()) {
        let Command::Place(o) = &c.cmd else { continue };
        let key = format!("key-{}", c.seq);
        let (a, b) =
            (pr.idempotency_at(o.user, &key, c.ts).await.unwrap(), lr.idempotency_at(o.user, &key, c.ts).unwrap());
        assert_eq!(a, b, "idempotency answer of {key}");
    }
    for s in [qt_core::SymbolId(0), qt_core::SymbolId(1)] {
        assert_eq!(pr.trades(s, 1000).await.unwrap(), lr.trades(s, 1000).unwrap());
        for iv in qt_store_postgres::CANDLE_INTERVALS {
            assert_eq!(pr.candles(s, iv, 1000).await.unwrap(), lr.candles(s, iv, 1000).unwrap());
        }
    }
    assert!(compared > 100, "compared {compared} orders");
    let row = pr.order(live.user, live.order_id).await.unwrap().unwrap();
    assert_eq!((row.status, row.qty), (OrderStatus::Cancelled, live.qty.0), "the live order took the cancel");
    drop(lr);
    drop(lite);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_hands_over_stored_place_answers_and_changed_orders() {
    let Some(url) = database_url("the_projector_hands_over_stored_place_answers_and_changed_orders") else { return };
    let s = store(url).await;
    let mut ex = Exchange::new(EngineConfig::default());
    let mut cmds = setup_commands();
    let n = cmds.len() as u64;
    let price = 3_000_000;
    cmds.push(place(n + 1, 1, 1, Side::Sell, price, 50, Some("k1")));
    cmds.push(place(n + 2, 2, 1, Side::Sell, price + 100, 50, Some("k2")));
    // The same key again in the batch: the first command's answer is the stored one.
    cmds.push(place(n + 3, 3, 1, Side::Sell, price + 200, 50, Some("k1")));
    cmds.push(place(n + 4, 4, 2, Side::Buy, price, 20, Some("k4")));
    let applied = run(&mut ex, cmds);
    let mut p = s.projector();
    p.project("matching-0", &projected(&applied)).await.unwrap();
    let answers = p.take_place_answers();
    assert!(p.take_place_answers().is_empty(), "taken once");
    assert_eq!(answers.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![n + 1, n + 2, n + 4]);
    let r = s.reader();
    for (a, (user, key)) in answers.iter().zip([(1, "k1"), (1, "k2"), (2, "k4")]) {
        let row = r.idempotency_at(UserId(user), key, 1_700_000_001_000_000_000).await.unwrap().unwrap();
        assert_eq!(a.http_status, row.http_status);
        assert_eq!(serde_json::to_string(&a.response).unwrap(), row.body, "{key}: the answer is the stored one");
    }
    assert_eq!(answers[2].response.fills.len(), 1, "order 4 traded with order 1");
    let keys = [(UserId(1), "k1".to_string()), (UserId(2), "k1".to_string()), (UserId(2), "k4".to_string())];
    let mut many = r.idempotency_many(&keys, 1_700_000_001_000_000_000).await.unwrap();
    many.sort_by_key(|row| row.user_id.0);
    assert_eq!(
        many,
        vec![
            r.idempotency_at(UserId(1), "k1", 1_700_000_001_000_000_000).await.unwrap().unwrap(),
            r.idempotency_at(UserId(2), "k4", 1_700_000_001_000_000_000).await.unwrap().unwrap(),
        ],
        "one query for many keys; user 2 never used k1"
    );
    assert!(r.idempotency_many(&keys, 1_800_000_000_000_000_000).await.unwrap().is_empty(), "expired after 24 h");
    assert!(p.take_changed_orders().is_empty(), "no cancel or amend");

    // A later batch: a key used before gets no answer; a cancel and an amend (of an order
    // placed earlier) get their orders as the read model has them after the batch.
    let later = run(
        &mut ex,
        vec![
            place(n + 5, 5, 2, Side::Buy, price - 100, 10, Some("k4")),
            CommandEnvelope::new(
                n + 6,
                1_700_000_000_000_000_000 + (n as i64 + 6) * 1_000_000,
                Command::Cancel { user: UserId(1), order_id: qt_core::OrderId(2) },
            ),
            CommandEnvelope::new(
                n + 7,
                1_700_000_000_000_000_000 + (n as i64 + 7) * 1_000_000,
                Command::Amend {
                    user: UserId(1),
                    order_id: qt_core::OrderId(1),
                    price: None,
                    qty: Some(qt_core::Qty(40)),
                },
            ),
        ],
    );
    p.project("matching-0", &projected(&later)).await.unwrap();
    assert!(p.take_place_answers().is_empty(), "k4 was answered before");
    let changed = p.take_changed_orders();
    assert_eq!(changed.iter().map(|c| (c.seq, c.order.order_id.0)).collect::<Vec<_>>(), vec![(n + 6, 2), (n + 7, 1)]);
    for c in &changed {
        let order = r.order(UserId(1), c.order.order_id).await.unwrap().unwrap();
        assert_eq!(format!("{:?}", c.order), format!("{order:?}"));
        let fills = r.order_fills(c.order.order_id).await.unwrap();
        assert_eq!(format!("{:?}", c.fills), format!("{fills:?}"));
    }
    assert_eq!(changed[0].order.status, OrderStatus::Cancelled);
    assert_eq!(changed[1].fills.len(), 1);
    // Projected again (a replay): nothing to hand over.
    p.project("matching-0", &projected(&later)).await.unwrap();
    assert!(p.take_changed_orders().is_empty() && p.take_place_answers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_keep_their_ingress_watermarks_and_older_ones_have_none() {
    let Some(url) = database_url("snapshots_keep_their_ingress_watermarks_and_older_ones_have_none") else { return };
    let s = store(url).await;
    let mut ex = Exchange::new(EngineConfig::default());
    run(&mut ex, setup_commands());
    let snaps = s.snapshots("matching-0");
    let ingress: Ingress =
        [("orders/0@t.orders/0".to_string(), 41), ("orders/1@t.orders/2".to_string(), u64::MAX)].into();
    snaps.save_with_ingress(&ex.snapshot(), Some(&ingress)).await.unwrap();
    let (snap, got) = snaps.latest_with_ingress().await.unwrap().unwrap();
    assert_eq!(snap, ex.snapshot());
    assert_eq!(got, Some(ingress), "stored with the snapshot, u64 exactly");
    assert_eq!(snaps.latest_async().await.unwrap().unwrap(), ex.snapshot(), "the engine's port reads it too");
    // Saved with empty watermarks: Some(empty), not None.
    snaps.save_with_ingress(&ex.snapshot(), Some(&Ingress::new())).await.unwrap();
    assert_eq!(snaps.latest_with_ingress().await.unwrap().unwrap().1, Some(Ingress::new()));
    // Saved through the engine's port (no watermarks), or by a version before the column:
    // None, so that recovery knows it does not have them.
    snaps.save_async(&ex.snapshot()).await.unwrap();
    assert_eq!(snaps.latest_with_ingress().await.unwrap().unwrap().1, None);
    let mut next = ex.snapshot();
    next.last_cmd_seq += 1;
    let c = s.pool().get().await.unwrap();
    c.execute(
        "INSERT INTO snapshots (shard, seq, hash, body) VALUES ('matching-0', $1, $2, $3)",
        &[&(next.last_cmd_seq as i64), &next.hash().unwrap(), &next.to_bytes().unwrap()],
    )
    .await
    .unwrap();
    let (snap, got) = snaps.latest_with_ingress().await.unwrap().unwrap();
    assert_eq!((snap.last_cmd_seq, got), (next.last_cmd_seq, None), "a row written as before the migration");
    c.execute("UPDATE snapshots SET ingress = '[1]'::JSONB WHERE shard = 'matching-0'", &[]).await.unwrap();
    assert!(matches!(snaps.latest_with_ingress().await, Err(StoreError::Corrupt(_))), "watermarks that do not parse");
}

/// `env` at time `ts` (ns).
fn at(mut env: CommandEnvelope, ts: i64) -> CommandEnvelope {
    env.ts = ts;
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_reused_after_its_window_stores_the_new_answer_and_a_live_one_is_kept() {
    let Some(url) =
        database_url("an_idempotency_key_reused_after_its_window_stores_the_new_answer_and_a_live_one_is_kept")
    else {
        return;
    };
    let s = store(url).await;
    let mut ex = Exchange::new(EngineConfig::default());
    let mut cmds = setup_commands();
    let n = cmds.len() as u64;
    let t0 = 1_700_000_010_000_000_000;
    let hour = 3_600_000_000_000i64;
    let price = 3_000_000;
    cmds.push(at(place(n + 1, 1, 1, Side::Sell, price, 10, Some("k")), t0));
    let mut p = s.projector();
    p.project("matching-0", &projected(&run(&mut ex, cmds))).await.unwrap();
    assert_eq!(p.take_place_answers().len(), 1);
    let r = s.reader();
    let order_of = |ts: i64| {
        let r = r.clone();
        async move { r.idempotency_at(UserId(1), "k", ts).await.unwrap().map(|row| row.order_id.0) }
    };

    // Reused within the window (the shard's check would have replayed it; were it
    // journaled anyway, the first answer stays).
    let live = run(&mut ex, vec![at(place(n + 2, 2, 1, Side::Sell, price + 100, 10, Some("k")), t0 + 23 * hour)]);
    p.project("matching-0", &projected(&live)).await.unwrap();
    assert!(p.take_place_answers().is_empty(), "a live answer is never replaced");
    assert_eq!(order_of(t0 + 23 * hour).await, Some(1));

    // Reused once it expired (exactly 24 h: the readers no longer return it): a fresh key,
    // whose new answer is stored and handed over.
    let t1 = t0 + IDEMPOTENCY_TTL_NS;
    assert_eq!(order_of(t1).await, None, "expired for the readers at 24 h");
    let reused = run(&mut ex, vec![at(place(n + 3, 3, 1, Side::Sell, price + 200, 10, Some("k")), t1)]);
    p.project("matching-0", &projected(&reused)).await.unwrap();
    let answers = p.take_place_answers();
    assert_eq!(answers.iter().map(|a| (a.seq, a.response.order.order_id.0)).collect::<Vec<_>>(), vec![(n + 3, 3)]);
    let row = r.idempotency_at(UserId(1), "k", t1 + 1).await.unwrap().unwrap();
    assert_eq!((row.order_id.0, row.created_ts), (3, t1));
    assert_eq!(row.body, serde_json::to_string(&answers[0].response).unwrap(), "the stored answer is the new one");
    // A replay of that batch changes nothing.
    let before = dump(&s).await;
    p.project("matching-0", &projected(&reused)).await.unwrap();
    assert!(p.take_place_answers().is_empty());
    assert_eq!(dump(&s).await, before);

    // One batch spanning more than 24 h (a long replay): the later place replaces the
    // expired earlier one of the batch; within 24 h the first stays.
    let t2 = t1 + 2 * hour;
    let long = run(
        &mut ex,
        vec![
            at(place(n + 4, 4, 2, Side::Buy, price - 1_000, 10, Some("a")), t2),
            at(place(n + 5, 5, 2, Side::Buy, price - 1_100, 10, Some("b")), t2),
            at(place(n + 6, 6, 2, Side::Buy, price - 1_200, 10, Some("b")), t2 + hour),
            at(place(n + 7, 7, 2, Side::Buy, price - 1_300, 10, Some("a")), t2 + IDEMPOTENCY_TTL_NS + hour),
        ],
    );
    p.project("matching-0", &projected(&long)).await.unwrap();
    let now = t2 + IDEMPOTENCY_TTL_NS + 2 * hour;
    assert_eq!(r.idempotency_at(UserId(2), "a", now).await.unwrap().unwrap().order_id.0, 7);
    assert_eq!(r.idempotency_at(UserId(2), "b", t2 + 2 * hour).await.unwrap().unwrap().order_id.0, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_deletes_expired_idempotency_rows_in_bounded_batches_and_no_live_one() {
    let Some(url) = database_url("the_purge_deletes_expired_idempotency_rows_in_bounded_batches_and_no_live_one")
    else {
        return;
    };
    let s = store(url).await;
    let mut ex = Exchange::new(EngineConfig::default());
    let mut cmds = setup_commands();
    let n = cmds.len() as u64;
    let t0 = 1_700_000_010_000_000_000;
    let hour = 3_600_000_000_000i64;
    // Five answers at t0, two 20 h later.
    for i in 0..7u64 {
        let ts = if i < 5 { t0 } else { t0 + 20 * hour };
        cmds.push(at(place(n + 1 + i, 1 + i, 1, Side::Sell, 3_000_000 + i as i64, 10, Some(&format!("k{i}"))), ts));
    }
    let p = {
        let mut p = s.projector();
        p.project("matching-0", &projected(&run(&mut ex, cmds))).await.unwrap();
        p
    };
    let count = || async {
        let c = s.pool().get().await.unwrap();
        c.query_one("SELECT count(*) FROM idempotency", &[]).await.unwrap().get::<_, i64>(0)
    };
    assert_eq!(count().await, 7);
    assert_eq!(p.purge_idempotency_expired(t0 + 23 * hour, 100).await.unwrap(), 0, "none expired yet");
    let now = t0 + 30 * hour;
    let mut purged = Vec::new();
    loop {
        let k = p.purge_idempotency_expired(now, 2).await.unwrap();
        purged.push(k);
        if k < 2 {
            break;
        }
    }
    assert_eq!(purged, vec![2, 2, 1], "at most the limit per call");
    assert_eq!(count().await, 2, "the live answers stay");
    let r = s.reader();
    assert!(r.idempotency_at(UserId(1), "k5", now).await.unwrap().is_some());
    assert!(r.idempotency_at(UserId(1), "k0", t0 + hour).await.unwrap().is_none(), "k0 is gone");
}
