//! The read model after a scripted session, checked through every query; idempotent
//! re-projection; pagination; idempotency expiry.

mod common;

use common::{assert_matches_engine, dump, project_all, Driver, TempDir};
use qt_core::{Amount, CancelReason, OrderId, OrderStatus, OrderType, Price, RejectReason, Side, TimeInForce, UserId};
use qt_engine::Command;
use qt_store_sqlite::{OrderFilter, Projected, StatusFilter, Store, IDEMPOTENCY_TTL_NS};
use qt_testkit::fixtures::{BTC, BTC_USD, ETH_USD, UNIT, USD};

struct Session {
    d: Driver,
    ids: Vec<OrderId>,
}

/// Users, deposits, a resting order with a key, a trade, amend, cancel, a rejected place,
/// a stop trigger, an expiry and mass cancels.
fn session() -> Session {
    let mut d = Driver::new();
    let (alice, bob, carol) = (d.user(1, "alice"), d.user(2, "bob"), d.user(3, "carol"));
    d.cmd(Command::Deposit { user: alice, asset: USD, amount: Amount(1_000_000 * UNIT) });
    d.cmd(Command::Deposit { user: bob, asset: BTC, amount: Amount(10 * UNIT) });
    d.cmd(Command::Deposit { user: carol, asset: USD, amount: Amount(100_000 * UNIT) });
    let mut ids = Vec::new();
    // o1: alice buys 1 BTC at 30000.00, with an idempotency key.
    let o1 = d.order(alice, BTC_USD, Side::Buy, 3_000_000, 10_000);
    ids.push(o1.order_id);
    d.place_key(o1, Some("k1"));
    // o2: bob sells 0.5 BTC into it: one trade, o1 partially filled, o2 settled.
    let o2 = d.order(bob, BTC_USD, Side::Sell, 3_000_000, 5_000);
    ids.push(o2.order_id);
    d.place_key(o2, Some("k2"));
    // Amend o1 down to 29990.00, then cancel it.
    d.cmd(Command::Amend { user: alice, order_id: ids[0], price: Some(Price(2_999_000)), qty: None });
    d.cmd(Command::Cancel { user: alice, order_id: ids[0] });
    // o3: far beyond alice's funds: rejected.
    let o3 = d.order(alice, BTC_USD, Side::Buy, 3_000_000, 1_000_000);
    ids.push(o3.order_id);
    d.place_key(o3, Some("k3"));
    // o4: bob offers 1 BTC at 30100.00; o5: carol's buy stop-limit at 30100.00 waits.
    let o4 = d.order(bob, BTC_USD, Side::Sell, 3_010_000, 10_000);
    ids.push(o4.order_id);
    d.place_key(o4, None);
    let mut o5 = d.order(carol, BTC_USD, Side::Buy, 3_010_000, 3_000);
    o5.order_type = OrderType::StopLimit;
    o5.stop_price = Some(Price(3_010_000));
    ids.push(o5.order_id);
    d.place_key(o5, None);
    // o6: alice lifts 0.2 of o4: the trade at 30100.00 triggers o5, which takes 0.3 more.
    let o6 = d.order(alice, BTC_USD, Side::Buy, 3_010_000, 2_000);
    ids.push(o6.order_id);
    d.place_key(o6, None);
    // o7 (BTC-USD) and o8 (ETH-USD): alice's resting bids, mass-cancelled per symbol.
    let o7 = d.order(alice, BTC_USD, Side::Buy, 2_900_000, 1_000);
    ids.push(o7.order_id);
    d.place_key(o7, None);
    let o8 = d.order(alice, ETH_USD, Side::Buy, 200_000, 1_000);
    ids.push(o8.order_id);
    d.place_key(o8, None);
    // o9: bob's IOC sell far above the bids: expires.
    let mut o9 = d.order(bob, BTC_USD, Side::Sell, 3_100_000, 1_000);
    o9.tif = TimeInForce::Ioc;
    ids.push(o9.order_id);
    d.place_key(o9, None);
    Session { d, ids }
}

#[test]
fn scripted_session_reads_back_through_every_query() {
    let dir = TempDir::new("session");
    let store = Store::open(dir.path()).unwrap();
    let mut s = session();
    let (alice, bob, carol) = (UserId(1), UserId(2), UserId(3));
    let mut proj = store.projector().unwrap();
    let reader = store.reader().unwrap();
    project_all(&mut proj, &s.d.log, 3);

    // Open orders before the mass cancels, per symbol.
    let ids = s.ids.clone();
    assert_eq!(reader.open_order_ids(alice, None).unwrap(), vec![ids[6], ids[7]]);
    assert_eq!(reader.open_order_ids(alice, Some(ETH_USD)).unwrap(), vec![ids[7]]);
    assert_matches_engine(&reader, &s.d.ex, &[alice, bob, carol]);
    let before = s.d.log.len();
    s.d.cmd(Command::MassCancel { user: alice, symbol: Some(BTC_USD) });
    proj.project(&s.d.projected(before, s.d.log.len())).unwrap();
    assert_eq!(reader.open_order_ids(alice, None).unwrap(), vec![ids[7]]);
    let before = s.d.log.len();
    s.d.cmd(Command::MassCancel { user: alice, symbol: None });
    proj.project(&s.d.projected(before, s.d.log.len())).unwrap();
    assert!(reader.open_order_ids(alice, None).unwrap().is_empty());
    assert_eq!(proj.projected_seq().unwrap(), s.d.seq);
    assert_eq!(reader.projected_seq().unwrap(), s.d.seq);
    assert_matches_engine(&reader, &s.d.ex, &[alice, bob, carol]);

    // Users.
    assert_eq!(reader.user_by_key_hash("hash-alice").unwrap().unwrap().user_id, alice);
    let b = reader.user(bob).unwrap().unwrap();
    assert_eq!((b.name.as_deref(), b.api_key_hash.as_deref()), (Some("bob"), Some("hash-bob")));
    assert_eq!(reader.user_by_name("carol").unwrap().unwrap().user_id, carol);
    assert!(reader.user_by_name("mallory").unwrap().is_none());
    assert!(reader.user_by_key_hash("hash-mallory").unwrap().is_none());
    assert!(reader.user(UserId(42)).unwrap().is_none());

    // Reference data.
    let symbols = reader.symbols().unwrap();
    assert_eq!(symbols.iter().map(|s| s.spec.name.as_str()).collect::<Vec<_>>(), ["BTC-USD", "ETH-USD"]);
    assert_eq!(symbols[0].spec, qt_testkit::fixtures::btc_usd());
    let assets = reader.assets().unwrap();
    assert_eq!(
        assets.iter().map(|a| (a.code.as_str(), a.scale)).collect::<Vec<_>>(),
        [("USD", 8), ("BTC", 8), ("ETH", 8)]
    );

    // o1: partially filled at 30000.00, amended, cancelled by its owner.
    let o1 = reader.order(alice, ids[0]).unwrap().unwrap();
    assert_eq!(o1.status, OrderStatus::Cancelled);
    assert_eq!(o1.cancel_reason, Some(CancelReason::User));
    assert_eq!((o1.price, o1.qty, o1.filled), (Some(2_999_000), 10_000, 5_000));
    // 0.5 BTC at 30000 = 15000 USD; maker rebate 1 bp = 1.5 USD.
    assert_eq!(o1.quote_filled, 15_000 * UNIT);
    assert_eq!(o1.fees, -150_000_000);
    assert_eq!(o1.client_order_id.as_deref(), Some("c-OrderId(1)"));
    assert!(reader.order(bob, ids[0]).unwrap().is_none(), "another user's order is invisible");
    let fills = reader.order_fills(ids[0]).unwrap();
    assert_eq!(fills.len(), 1);
    assert!(fills[0].is_maker);
    assert_eq!((fills[0].side, fills[0].price, fills[0].qty, fills[0].user_id), (Side::Buy, 3_000_000, 5_000, alice));

    // o2: the taker, settled, paying 5 bp.
    let o2 = reader.order(bob, ids[1]).unwrap().unwrap();
    assert_eq!((o2.status, o2.filled, o2.fees), (OrderStatus::Settled, 5_000, 750_000_000));
    // o3: rejected from the command alone.
    let o3 = reader.order(alice, ids[2]).unwrap().unwrap();
    assert_eq!((o3.status, o3.reject_reason), (OrderStatus::Rejected, Some(RejectReason::InsufficientFunds)));
    assert_eq!(o3.filled, 0);
    // o4 partially filled by o6 and the triggered o5, still open.
    let o4 = reader.order(bob, ids[3]).unwrap().unwrap();
    assert_eq!((o4.status, o4.filled), (OrderStatus::PartiallyFilled, 5_000));
    let o5 = reader.order(carol, ids[4]).unwrap().unwrap();
    assert_eq!((o5.status, o5.filled, o5.triggered), (OrderStatus::Settled, 3_000, true));
    assert_eq!((o5.order_type, o5.stop_price), (OrderType::StopLimit, Some(3_010_000)));
    let o6 = reader.order(alice, ids[5]).unwrap().unwrap();
    assert_eq!((o6.status, o6.triggered), (OrderStatus::Settled, false));
    let o7 = reader.order(alice, ids[6]).unwrap().unwrap();
    assert_eq!((o7.status, o7.cancel_reason), (OrderStatus::Cancelled, Some(CancelReason::MassCancel)));
    let o9 = reader.order(bob, ids[8]).unwrap().unwrap();
    assert_eq!(o9.status, OrderStatus::Expired);
    assert!(o1.updated_ts > o1.created_ts && o1.cmd_seq > 0);

    // Lists with filters.
    let all = |f: OrderFilter| reader.orders(alice, &f).unwrap();
    let (page, next) = all(OrderFilter { limit: 100, ..OrderFilter::default() });
    assert_eq!(page.iter().map(|o| o.order_id).collect::<Vec<_>>(), vec![ids[7], ids[6], ids[5], ids[2], ids[0]]);
    assert!(next.is_none());
    let (page, _) = all(OrderFilter { limit: 100, symbol: Some(ETH_USD), ..OrderFilter::default() });
    assert_eq!(page.len(), 1);
    let (page, _) = all(OrderFilter {
        limit: 100,
        status: Some(StatusFilter::One(OrderStatus::Cancelled)),
        ..OrderFilter::default()
    });
    assert_eq!(page.iter().map(|o| o.order_id).collect::<Vec<_>>(), vec![ids[7], ids[6], ids[0]]);
    let (page, _) = reader
        .orders(bob, &OrderFilter { limit: 100, status: Some(StatusFilter::Open), ..Default::default() })
        .unwrap();
    assert_eq!(page.iter().map(|o| o.order_id).collect::<Vec<_>>(), vec![ids[3]]);
    let (page, _) = all(OrderFilter {
        limit: 100,
        from_ts: Some(o1.created_ts + 1),
        to_ts: Some(page_ts(&reader, alice, ids[5])),
        ..OrderFilter::default()
    });
    assert_eq!(page.iter().map(|o| o.order_id).collect::<Vec<_>>(), vec![ids[5], ids[2]]);

    // Executions: alice made t1 (maker) and t2 (taker); bob t1 (taker), t2 and t3 (maker).
    let (ex, next) = reader.executions(alice, None, 100, None).unwrap();
    assert_eq!(ex.iter().map(|e| (e.trade_id.0, e.is_maker)).collect::<Vec<_>>(), vec![(2, false), (1, true)]);
    assert!(next.is_none());
    let (first, next) = reader.executions(bob, Some(BTC_USD), 2, None).unwrap();
    assert_eq!(first.iter().map(|e| e.trade_id.0).collect::<Vec<_>>(), vec![3, 2]);
    let (rest, next) = reader.executions(bob, None, 2, next).unwrap();
    assert_eq!(rest.iter().map(|e| e.trade_id.0).collect::<Vec<_>>(), vec![1]);
    assert!(next.is_none());
    assert!(reader.executions(bob, Some(ETH_USD), 10, None).unwrap().0.is_empty());

    // Public trades, candles, 24 h stats.
    let trades = reader.trades(BTC_USD, 10).unwrap();
    assert_eq!(
        trades.iter().map(|t| (t.trade_id.0, t.price, t.qty)).collect::<Vec<_>>(),
        vec![(3, 3_010_000, 3_000), (2, 3_010_000, 2_000), (1, 3_000_000, 5_000)]
    );
    assert_eq!(trades[2].taker_side, Side::Sell);
    assert_eq!(reader.trades(BTC_USD, 2).unwrap().len(), 2);
    assert!(reader.trades(ETH_USD, 10).unwrap().is_empty());
    for interval in qt_store_sqlite::CANDLE_INTERVALS {
        let c = reader.candles(BTC_USD, interval, 10).unwrap();
        assert_eq!(c.len(), 1, "all trades fall in one {interval}s bucket");
        let c = &c[0];
        assert_eq!((c.open, c.high, c.low, c.close), (3_000_000, 3_010_000, 3_000_000, 3_010_000));
        assert_eq!((c.volume, c.trades), (10_000, 3));
        assert_eq!(c.open_time % (i64::from(interval) * 1_000_000_000), 0);
    }
    let now = trades[0].ts;
    let st = reader.stats_24h(BTC_USD, now).unwrap();
    assert_eq!(
        (st.open, st.high, st.low, st.last),
        (Some(3_000_000), Some(3_010_000), Some(3_000_000), Some(3_010_000))
    );
    assert_eq!((st.volume, st.trades), (10_000, 3));
    assert_eq!(reader.stats_24h(BTC_USD, now + 25 * 3600 * 1_000_000_000).unwrap(), Default::default());

    // Positions and balances (also checked against the engine above).
    let pos = reader.positions(alice).unwrap();
    assert_eq!(pos.iter().find(|p| p.symbol_id == BTC_USD).map(|p| p.qty), Some(7_000));
    let bal = reader.balances(bob).unwrap();
    assert_eq!(bal.iter().find(|b| b.asset_id == BTC).map(|b| b.reserved), Some(5_000 * 10_000));

    // Idempotency answers.
    let k1 = reader.idempotency_at(alice, "k1", now).unwrap().unwrap();
    assert_eq!((k1.http_status, k1.order_id, k1.request_hash.as_deref()), (201, ids[0], Some("rh-k1")));
    let r1 = k1.response().unwrap();
    assert_eq!((r1.order.status, r1.order.filled), (OrderStatus::Accepted, 0));
    assert!(r1.fills.is_empty());
    let r2 = reader.idempotency_at(bob, "k2", now).unwrap().unwrap().response().unwrap();
    assert_eq!((r2.order.status, r2.order.filled, r2.fills.len()), (OrderStatus::Settled, 5_000, 1));
    assert!(!r2.fills[0].is_maker);
    let k3 = reader.idempotency_at(alice, "k3", now).unwrap().unwrap();
    assert_eq!(k3.http_status, 422);
    assert_eq!(k3.response().unwrap().order.reject_reason, Some(RejectReason::InsufficientFunds));
    assert!(reader.idempotency_at(bob, "k1", now).unwrap().is_none(), "keys are per user");
}

fn page_ts(reader: &qt_store_sqlite::Reader, user: UserId, id: OrderId) -> i64 {
    reader.order(user, id).unwrap().unwrap().created_ts
}

#[test]
fn projecting_again_changes_nothing() {
    let dir = TempDir::new("again");
    let store = Store::open(dir.path()).unwrap();
    let s = session();
    let mut proj = store.projector().unwrap();
    project_all(&mut proj, &s.d.log, 4);
    let once = dump(store.path());
    // The whole log again, in other batch sizes, and an overlapping window.
    project_all(&mut proj, &s.d.log, 1);
    project_all(&mut proj, &s.d.log, 1000);
    proj.project(&s.d.projected(10, 20)).unwrap();
    assert_eq!(dump(store.path()), once);
    // A batch that mixes seen and new commands projects only the new ones.
    let dir2 = TempDir::new("again2");
    let store2 = Store::open(dir2.path()).unwrap();
    let mut p2 = store2.projector().unwrap();
    let n = s.d.log.len();
    p2.project(&s.d.projected(0, n / 2)).unwrap();
    p2.project(&s.d.projected(n / 3, n)).unwrap();
    assert_eq!(dump(store2.path()), once);
}

#[test]
fn reset_and_replay_from_the_journal_rebuilds_the_same_rows() {
    use qt_engine::ports::Journal;
    let dir = TempDir::new("rebuild");
    let store = Store::open(dir.path()).unwrap();
    let s = session();
    let mut journal = store.journal().unwrap();
    let mut proj = store.projector().unwrap();
    for chunk in s.d.log.chunks(5) {
        journal.append(&chunk.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>()).unwrap();
        proj.project(&chunk.iter().map(|(c, e)| Projected { command: c, events: e }).collect::<Vec<_>>()).unwrap();
    }
    let live = dump(store.path());
    proj.reset().unwrap();
    assert_eq!(proj.projected_seq().unwrap(), 0);
    assert!(store.reader().unwrap().symbols().unwrap().is_empty());
    // Rebuild: replay the journal through a fresh exchange, as the runtime does.
    let mut ex = qt_engine::Exchange::new(qt_engine::EngineConfig::default());
    let cmds = journal.read_from(1, usize::MAX).unwrap();
    let mut events = Vec::new();
    for chunk in cmds.chunks(7) {
        let mut per_cmd = Vec::new();
        for c in chunk {
            events.clear();
            ex.apply(c, &mut events);
            per_cmd.push(events.clone());
        }
        let batch: Vec<Projected<'_>> =
            chunk.iter().zip(&per_cmd).map(|(c, e)| Projected { command: c, events: e }).collect();
        proj.project(&batch).unwrap();
    }
    assert_eq!(dump(store.path()), live);
}

#[test]
fn pagination_returns_every_order_exactly_once_with_equal_timestamps() {
    let dir = TempDir::new("pages");
    let store = Store::open(dir.path()).unwrap();
    let mut d = Driver::new();
    let alice = d.user(1, "alice");
    let bob = d.user(2, "bob");
    d.cmd(Command::Deposit { user: alice, asset: USD, amount: Amount(10_000_000 * UNIT) });
    d.cmd(Command::Deposit { user: bob, asset: USD, amount: Amount(10_000_000 * UNIT) });
    // Groups of orders with the same command time (the clock does not move between them).
    let mut placed = Vec::new();
    for i in 0..120 {
        d.step = if i % 7 == 0 { 1_000 } else { 0 };
        let user = if i % 5 == 0 { bob } else { alice };
        let symbol = if i % 3 == 0 { ETH_USD } else { BTC_USD };
        let o = d.order(user, symbol, Side::Buy, 2_900_000 + i, 100);
        if user == alice {
            placed.push((o.order_id, symbol));
        }
        d.place_key(o, None);
    }
    // Cancel a few so a status filter has something to split.
    for (id, _) in placed.iter().step_by(4) {
        d.cmd(Command::Cancel { user: alice, order_id: *id });
    }
    let mut proj = store.projector().unwrap();
    project_all(&mut proj, &d.log, 64);
    let reader = store.reader().unwrap();
    for filter in [
        OrderFilter::default(),
        OrderFilter { symbol: Some(BTC_USD), ..OrderFilter::default() },
        OrderFilter { status: Some(StatusFilter::Open), ..OrderFilter::default() },
        OrderFilter {
            status: Some(StatusFilter::One(OrderStatus::Cancelled)),
            symbol: Some(ETH_USD),
            ..OrderFilter::default()
        },
    ] {
        for limit in [1, 7, 50, 5000] {
            let mut seen = Vec::new();
            let mut f = OrderFilter { limit, ..filter.clone() };
            loop {
                let (page, next) = reader.orders(alice, &f).unwrap();
                assert!(page.len() <= limit.clamp(1, qt_store_sqlite::MAX_PAGE) as usize);
                seen.extend(page.iter().map(|o| (o.created_ts, o.order_id)));
                match next {
                    Some(c) => f.cursor = Some(c),
                    None => break,
                }
            }
            let mut expected: Vec<(i64, OrderId)> = placed
                .iter()
                .filter(|(_, s)| filter.symbol.is_none_or(|f| f == *s))
                .map(|(id, _)| reader.order(alice, *id).unwrap().unwrap())
                .filter(|o| match filter.status {
                    None => true,
                    Some(StatusFilter::Open) => o.status.is_open(),
                    Some(StatusFilter::One(s)) => o.status == s,
                })
                .map(|o| (o.created_ts, o.order_id))
                .collect();
            expected.sort_by(|a, b| b.cmp(a));
            assert_eq!(seen, expected, "filter {filter:?} limit {limit}");
        }
    }
    // Fills page the same way: make some trades and walk them one at a time.
    let carol = d.user(3, "carol");
    d.cmd(Command::Deposit { user: carol, asset: BTC, amount: Amount(10 * UNIT) });
    let before = d.log.len() - 2;
    for i in 0..10 {
        let o = d.order(carol, BTC_USD, Side::Sell, 2_900_000, 30 + i);
        d.place_key(o, None);
    }
    proj.project(&d.projected(before, d.log.len())).unwrap();
    let all = reader.executions(alice, None, 1000, None).unwrap().0;
    assert!(all.len() >= 10, "{} fills", all.len());
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = reader.executions(alice, None, 3, cursor).unwrap();
        seen.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all);
}

#[test]
fn idempotency_rows_expire_after_24_hours_and_are_purged() {
    let dir = TempDir::new("idem");
    let store = Store::open(dir.path()).unwrap();
    let mut d = Driver::new();
    let alice = d.user(1, "alice");
    d.cmd(Command::Deposit { user: alice, asset: USD, amount: Amount(1_000_000 * UNIT) });
    let o = d.order(alice, BTC_USD, Side::Buy, 3_000_000, 100);
    d.place_key(o.clone(), Some("once"));
    // The same key again (a race the intake lost): the first answer stays.
    let mut again = o;
    again.order_id = OrderId(99);
    d.place_key(again, Some("once"));
    let mut proj = store.projector().unwrap();
    project_all(&mut proj, &d.log, 100);
    let reader = store.reader().unwrap();
    let created = d.ts - d.step;
    let row = reader.idempotency_at(alice, "once", created).unwrap().unwrap();
    assert_eq!(row.order_id, OrderId(1));
    assert_eq!(row.created_ts, created);
    assert!(reader.idempotency_at(alice, "once", created + IDEMPOTENCY_TTL_NS - 1).unwrap().is_some());
    assert!(reader.idempotency_at(alice, "once", created + IDEMPOTENCY_TTL_NS).unwrap().is_none());
    // Rows are from 2026-01-01: against the real clock they are long expired.
    assert!(reader.idempotency(alice, "once").unwrap().is_none());
    assert_eq!(proj.purge_idempotency_before(created).unwrap(), 0);
    assert_eq!(proj.purge_idempotency_before(created + 1).unwrap(), 1);
    assert!(reader.idempotency_at(alice, "once", created).unwrap().is_none());
}

#[test]
fn an_idempotency_key_reused_after_24_hours_stores_the_new_answer_and_a_live_one_is_kept() {
    let dir = TempDir::new("idem-reuse");
    let store = Store::open(dir.path()).unwrap();
    let mut d = Driver::new();
    let alice = d.user(1, "alice");
    d.cmd(Command::Deposit { user: alice, asset: USD, amount: Amount(1_000_000 * UNIT) });
    let first = d.order(alice, BTC_USD, Side::Buy, 3_000_000, 100);
    d.place_key(first, Some("k"));
    let created = d.ts;
    // 23 h later (a race the intake lost): the first answer stays.
    d.ts = created + IDEMPOTENCY_TTL_NS - 3_600_000_000_000 - d.step;
    let live = d.order(alice, BTC_USD, Side::Buy, 3_000_000, 100);
    d.place_key(live, Some("k"));
    let mut proj = store.projector().unwrap();
    project_all(&mut proj, &d.log, 100);
    let reader = store.reader().unwrap();
    assert_eq!(reader.idempotency_at(alice, "k", d.ts).unwrap().unwrap().order_id, OrderId(1));
    // Exactly 24 h after the first: expired for the readers, so the key is fresh and the
    // new answer is the stored one (a retry of this request must find it).
    d.ts = created + IDEMPOTENCY_TTL_NS - d.step;
    let reused = d.order(alice, BTC_USD, Side::Buy, 3_000_000, 100);
    let reused_id = reused.order_id;
    d.place_key(reused, Some("k"));
    assert_eq!(d.ts, created + IDEMPOTENCY_TTL_NS);
    assert!(reader.idempotency_at(alice, "k", d.ts).unwrap().is_none(), "expired at 24 h");
    project_all(&mut proj, &d.log, 100);
    let row = reader.idempotency_at(alice, "k", d.ts + 1).unwrap().unwrap();
    assert_eq!((row.order_id, row.created_ts, row.request_hash.as_deref()), (reused_id, d.ts, Some("rh-k")));
    // A rebuild from the journal decides the same way.
    let before = dump(store.path());
    proj.reset().unwrap();
    project_all(&mut proj, &d.log, 2);
    assert_eq!(dump(store.path()), before);
}

#[test]
fn duplicate_user_names_do_not_stop_the_projection() {
    let dir = TempDir::new("dupname");
    let store = Store::open(dir.path()).unwrap();
    let mut d = Driver::new();
    d.user(1, "alice");
    d.user(2, "alice");
    let mut proj = store.projector().unwrap();
    project_all(&mut proj, &d.log, 100);
    let reader = store.reader().unwrap();
    assert_eq!(reader.user_by_name("alice").unwrap().unwrap().user_id, UserId(1));
    let second = reader.user(UserId(2)).unwrap().unwrap();
    assert_eq!((second.name, second.api_key_hash), (None, None));
}

#[test]
fn rejected_duplicate_order_id_leaves_the_existing_order_alone() {
    let mut d = Driver::new();
    let alice = d.user(1, "alice");
    let bob = d.user(2, "bob");
    d.cmd(Command::Deposit { user: alice, asset: USD, amount: Amount(1_000_000 * UNIT) });
    d.cmd(Command::Deposit { user: bob, asset: USD, amount: Amount(1_000_000 * UNIT) });
    d.cmd(Command::Deposit { user: bob, asset: BTC, amount: Amount(10 * UNIT) });
    let o = d.order(alice, BTC_USD, Side::Buy, 3_000_000, 100);
    let mut dup = o.clone();
    d.place_key(o, None);
    let after_live = d.log.len();
    dup.user = bob;
    d.place_key(dup.clone(), Some("dup"));
    // Refused for an unknown symbol before the engine even looks at the id.
    dup.symbol = qt_core::SymbolId(9);
    d.place_key(dup, Some("dup-symbol"));
    // The live order then trades: its fill must land on its own row.
    let sell = d.order(bob, BTC_USD, Side::Sell, 3_000_000, 40);
    d.place_key(sell, None);
    // The live order already in the table when the duplicates and its fill come in one
    // batch; everything in one batch (it is only in the batch); one command per batch.
    let n = d.log.len();
    let plans: [Vec<usize>; 3] = [vec![after_live, n], vec![n], (1..=n).collect()];
    for plan in plans {
        let batch = plan.len();
        let dir = TempDir::new("dupid");
        let store = Store::open(dir.path()).unwrap();
        let mut proj = store.projector().unwrap();
        let mut from = 0;
        for to in plan {
            proj.project(&d.projected(from, to)).unwrap();
            from = to;
        }
        let reader = store.reader().unwrap();
        let kept = reader.order(alice, OrderId(1)).unwrap().unwrap();
        assert_eq!((kept.status, kept.filled), (OrderStatus::PartiallyFilled, 40), "batch {batch}");
        assert!(reader.order(bob, OrderId(1)).unwrap().is_none());
        let row = reader.idempotency_at(bob, "dup", d.ts).unwrap().unwrap();
        assert_eq!(row.http_status, 409);
        let r = row.response().unwrap();
        assert_eq!(
            (r.order.user_id, r.order.status, r.order.reject_reason),
            (bob, OrderStatus::Rejected, Some(RejectReason::DuplicateOrderId))
        );
        let row = reader.idempotency_at(bob, "dup-symbol", d.ts).unwrap().unwrap();
        assert_eq!(
            (row.http_status, row.response().unwrap().order.reject_reason),
            (400, Some(RejectReason::UnknownSymbol))
        );
        assert_matches_engine(&reader, &d.ex, &[alice, bob]);
    }
}

#[test]
fn readers_run_while_the_engine_thread_writes() {
    use qt_engine::ports::Journal;
    use qt_testkit::workload::{Workload, WorkloadSpec};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = TempDir::new("concurrent");
    let store = Store::open(dir.path()).unwrap();
    let w = Workload::generate(&WorkloadSpec { symbols: 1, users: 50, orders_per_book: 100, ops: 2_000, seed: 5 });
    let mut ex = qt_engine::Exchange::new(qt_engine::EngineConfig::default());
    let log: Vec<_> = w
        .setup
        .iter()
        .chain(&w.ops)
        .map(|c| {
            let mut out = Vec::new();
            ex.apply(c, &mut out);
            (c.clone(), out)
        })
        .collect();
    let reader = store.reader().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..3u64)
        .map(|i| {
            let (reader, done) = (reader.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut reads, mut last_seen) = (0u64, 0);
                while !done.load(Ordering::Relaxed) {
                    let user = UserId(1 + i);
                    reader.orders(user, &OrderFilter { limit: 10, ..OrderFilter::default() }).unwrap();
                    reader.balances(user).unwrap();
                    reader.trades(qt_core::SymbolId(0), 10).unwrap();
                    let seen = reader.projected_seq().unwrap();
                    assert!(seen >= last_seen, "the read model never goes back");
                    last_seen = seen;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut journal = store.journal().unwrap();
    let mut proj = store.projector().unwrap();
    for chunk in log.chunks(16) {
        journal.append(&chunk.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>()).unwrap();
        proj.project(&chunk.iter().map(|(c, e)| Projected { command: c, events: e }).collect::<Vec<_>>()).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for t in threads {
        assert!(t.join().unwrap() > 0, "every reader got to read");
    }
    assert_eq!(reader.projected_seq().unwrap(), log.len() as u64);
    assert_matches_engine(&reader, &ex, &(1..=50).map(UserId).collect::<Vec<_>>());
}

/// The engine thread answers keyed places, checks keys and reads orders back through the
/// projector's own connection: what it sees must be exactly what the reader pool sees.
#[test]
fn projector_answers_and_point_reads_equal_the_reader() {
    let dir = TempDir::new("answers");
    let store = Store::open(dir.path()).unwrap();
    let s = session();
    let mut proj = store.projector().unwrap();
    let reader = store.reader().unwrap();
    let mut answers = Vec::new();
    // Batches of 4: answers come out in command order whatever the batch boundaries.
    for chunk in s.d.log.chunks(4) {
        let b: Vec<Projected<'_>> = chunk.iter().map(|(c, e)| Projected { command: c, events: e }).collect();
        proj.project(&b).unwrap();
        answers.extend(proj.take_place_answers());
        assert!(proj.take_place_answers().is_empty(), "taken once");
    }
    let keyed: Vec<u64> =
        s.d.log
            .iter()
            .filter(|(c, _)| c.meta.as_ref().is_some_and(|m| m.idempotency_key.is_some()))
            .map(|(c, _)| c.seq)
            .collect();
    assert_eq!(answers.iter().map(|a| a.seq).collect::<Vec<_>>(), keyed, "one answer per keyed place, in order");

    let now = s.d.ts;
    for (user, key) in [(UserId(1), "k1"), (UserId(2), "k2"), (UserId(1), "k3")] {
        let row = reader.idempotency_at(user, key, now).unwrap().unwrap();
        let own = proj.idempotency_at(user, key, now).unwrap().unwrap();
        assert_eq!((own.order_id, own.http_status, &own.body), (row.order_id, row.http_status, &row.body));
        let answer = answers.iter().find(|a| a.response.order.order_id == row.order_id).unwrap();
        assert_eq!(answer.http_status, row.http_status);
        assert_eq!(serde_json::to_string(&answer.response).unwrap(), row.body, "the answer is the stored body");
    }
    assert!(proj.idempotency_at(UserId(2), "k1", now).unwrap().is_none(), "keys are per user");

    for (i, id) in s.ids.iter().enumerate() {
        let (order, fills) = proj.order_with_fills(*id).unwrap().unwrap_or_else(|| panic!("order {i} has a row"));
        assert_eq!(Some(&order), reader.order(order.user_id, *id).unwrap().as_ref());
        assert_eq!(fills, reader.order_fills(*id).unwrap());
    }
    assert!(proj.order_with_fills(OrderId(10_000)).unwrap().is_none());
}
