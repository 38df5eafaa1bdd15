//! Scenario tests of the engine: each order type, time in force, amend, mass cancel,
//! self-trade prevention, every risk reject, and the ledger after fills.

use qt_core::{
    Amount, CancelReason, OrderStatus, OrderType, Price, Qty, RejectReason, RiskLimits, Side, StpMode, TimeInForce,
    UserId,
};
use qt_engine::{Command, EngineConfig, Event};
use qt_testkit::fixtures::UNIT;
use qt_testkit::harness::{rejection, trades, Harness};
use qt_testkit::{BTC, BTC_USD, ETH_USD, USD};

/// 30000.00 in ticks of 0.01.
const P: i64 = 3_000_000;
/// One BTC in lots of 0.0001.
const ONE: i64 = 10_000;

fn setup() -> (Harness, UserId, UserId) {
    let mut h = Harness::new(EngineConfig::default());
    let alice = h.user(1, &[(USD, 1_000_000), (BTC, 100)]);
    let bob = h.user(2, &[(USD, 1_000_000), (BTC, 100)]);
    (h, alice, bob)
}

fn status_of(events: &[Event], id: qt_core::OrderId) -> Option<&'static str> {
    events.iter().rev().find_map(|e| match e {
        Event::OrderSettled { order_id, .. } if *order_id == id => Some("SETTLED"),
        Event::OrderCancelled { order_id, .. } if *order_id == id => Some("CANCELLED"),
        Event::OrderExpired { order_id, .. } if *order_id == id => Some("EXPIRED"),
        Event::OrderFilled { order_id, status, .. } if *order_id == id => Some(status.as_str()),
        Event::OrderRejected { order_id, .. } if *order_id == id => Some("REJECTED"),
        Event::OrderAccepted { order } if order.order_id == id => Some("ACCEPTED"),
        _ => None,
    })
}

#[test]
fn limit_order_rests_and_reserves_worst_case_quote() {
    let (mut h, alice, _) = setup();
    let (id, ev) = h.limit(alice, Side::Buy, P, ONE);
    assert_eq!(status_of(&ev, id), Some("ACCEPTED"));
    assert_eq!(h.best(BTC_USD).0, Some((Price(P), Qty(ONE))));
    // 30000 USD plus the 5 bps taker fee it might pay if amended into a cross.
    let (avail, reserved) = h.balance(alice, USD);
    assert_eq!(reserved, 30_000 * UNIT + 15 * UNIT);
    assert_eq!(avail + reserved, 1_000_000 * UNIT);
    h.assert_invariants();
}

#[test]
fn price_time_priority_and_settlement_with_fees() {
    let (mut h, alice, bob) = setup();
    let carol = h.user(3, &[(BTC, 10)]);
    let (first, _) = h.limit(alice, Side::Sell, P, ONE);
    let (second, _) = h.limit(carol, Side::Sell, P, ONE);
    let (better, _) = h.limit(carol, Side::Sell, P - 100, ONE);
    let (taker, ev) = h.limit(bob, Side::Buy, P, 2 * ONE + ONE / 2);
    // Best price first, then oldest first at the same price.
    assert_eq!(
        trades(&ev),
        vec![
            (better, taker, Price(P - 100), Qty(ONE)),
            (first, taker, Price(P), Qty(ONE)),
            (second, taker, Price(P), Qty(ONE / 2)),
        ]
    );
    assert_eq!(status_of(&ev, taker), Some("SETTLED"));
    assert_eq!(status_of(&ev, first), Some("SETTLED"));
    assert_eq!(status_of(&ev, second), Some("PARTIALLY_FILLED"));
    // Bob paid 29999 + 30000 + 15000 = 74999 USD plus 5 bps taker fee.
    let notional = 74_999 * UNIT;
    let fee = notional * 5 / 10_000;
    assert_eq!(h.balance(bob, USD), (1_000_000 * UNIT - notional - fee, 0));
    assert_eq!(h.balance(bob, BTC), ((100 * ONE + 2 * ONE + ONE / 2) * 10_000, 0));
    // Alice sold 1 BTC at 30000 and earned the 1 bps maker rebate.
    assert_eq!(h.balance(alice, USD), (1_030_000 * UNIT + 30_000 * UNIT / 10_000, 0));
    assert_eq!(h.balance(alice, BTC), (99 * UNIT, 0));
    // The fee account holds taker fees minus maker rebates.
    let rebates = notional / 10_000;
    assert_eq!(h.ex.ledger().fee_balance(USD), Amount(fee - rebates));
    h.assert_invariants();
}

#[test]
fn market_order_trades_within_collar_and_expires_the_rest() {
    let (mut h, alice, bob) = setup();
    h.limit(alice, Side::Sell, P, ONE);
    h.limit(alice, Side::Sell, P + P / 10, ONE); // beyond the 5% collar
    let mut o = h.order(bob, Side::Buy, 0, 3 * ONE);
    o.order_type = OrderType::Market;
    o.price = None;
    o.tif = TimeInForce::Ioc;
    let id = o.order_id;
    let ev = h.place(o);
    assert_eq!(trades(&ev).len(), 1);
    assert_eq!(status_of(&ev, id), Some("EXPIRED"));
    assert_eq!(h.balance(bob, USD).1, 0, "everything released");
    h.assert_invariants();
}

#[test]
fn market_order_without_reference_is_rejected() {
    let (mut h, _, bob) = setup();
    let mut o = h.order(bob, Side::Buy, 0, ONE);
    o.order_type = OrderType::Market;
    o.price = None;
    o.tif = TimeInForce::Ioc;
    assert_eq!(rejection(&h.place(o)), Some(RejectReason::NoLiquidity));
}

#[test]
fn market_orders_must_be_immediate() {
    let (mut h, _, bob) = setup();
    let mut o = h.order(bob, Side::Buy, 0, ONE);
    o.order_type = OrderType::Market;
    o.price = None;
    assert_eq!(rejection(&h.place(o)), Some(RejectReason::MarketOrderTif));
}

#[test]
fn ioc_fills_what_it_can_and_expires() {
    let (mut h, alice, bob) = setup();
    h.limit(alice, Side::Sell, P, ONE);
    let mut o = h.order(bob, Side::Buy, P, 2 * ONE);
    o.tif = TimeInForce::Ioc;
    let id = o.order_id;
    let ev = h.place(o);
    assert_eq!(trades(&ev).len(), 1);
    assert!(ev.iter().any(
        |e| matches!(e, Event::OrderExpired { order_id, remaining, .. } if *order_id == id && *remaining == Qty(ONE))
    ));
    assert_eq!(h.best(BTC_USD), (None, None));
    h.assert_invariants();
}

#[test]
fn fok_is_all_or_nothing() {
    let (mut h, alice, bob) = setup();
    h.limit(alice, Side::Sell, P, ONE);
    let mut o = h.order(bob, Side::Buy, P, 2 * ONE);
    o.tif = TimeInForce::Fok;
    let id = o.order_id;
    let ev = h.place(o);
    assert!(trades(&ev).is_empty());
    assert_eq!(status_of(&ev, id), Some("EXPIRED"));
    assert_eq!(h.best(BTC_USD).1, Some((Price(P), Qty(ONE))), "book untouched");
    let mut o = h.order(bob, Side::Buy, P, ONE);
    o.tif = TimeInForce::Fok;
    let id = o.order_id;
    let ev = h.place(o);
    assert_eq!(trades(&ev).len(), 1);
    assert_eq!(status_of(&ev, id), Some("SETTLED"));
    h.assert_invariants();
}

#[test]
fn post_only_never_takes() {
    let (mut h, alice, bob) = setup();
    h.limit(alice, Side::Sell, P, ONE);
    let mut o = h.order(bob, Side::Buy, P, ONE);
    o.post_only = true;
    assert_eq!(rejection(&h.place(o)), Some(RejectReason::PostOnlyWouldTake));
    let mut o = h.order(bob, Side::Buy, P - 1, ONE);
    o.post_only = true;
    let id = o.order_id;
    assert_eq!(status_of(&h.place(o), id), Some("ACCEPTED"));
    let mut o = h.order(bob, Side::Buy, P - 2, ONE);
    o.post_only = true;
    o.tif = TimeInForce::Ioc;
    assert_eq!(rejection(&h.place(o)), Some(RejectReason::PostOnlyInvalid));
}

#[test]
fn stop_orders_trigger_on_last_trade_price() {
    let (mut h, alice, bob) = setup();
    let carol = h.user(3, &[(USD, 1_000_000), (BTC, 10)]);
    // Liquidity above the market for the stop to hit.
    h.limit(alice, Side::Sell, P + 500, 5 * ONE);
    let mut stop = h.order(carol, Side::Buy, 0, ONE);
    stop.order_type = OrderType::Stop;
    stop.tif = TimeInForce::Ioc;
    stop.price = None;
    stop.stop_price = Some(Price(P + 100));
    let stop_id = stop.order_id;
    let mut stop_limit = h.order(carol, Side::Sell, P - 300, ONE);
    stop_limit.order_type = OrderType::StopLimit;
    stop_limit.stop_price = Some(Price(P - 200));
    let sl_id = stop_limit.order_id;
    assert_eq!(status_of(&h.place(stop), stop_id), Some("ACCEPTED"));
    assert_eq!(status_of(&h.place(stop_limit), sl_id), Some("ACCEPTED"));
    assert_eq!(h.best(BTC_USD).0, None, "waiting stops are not in the book");
    // A trade at P + 500 (>= P + 100) triggers the buy stop, which buys at P + 500.
    let ev = h.limit(bob, Side::Buy, P + 500, ONE).1;
    assert!(ev.iter().any(|e| matches!(e, Event::OrderTriggered { order_id, .. } if *order_id == stop_id)));
    assert_eq!(status_of(&ev, stop_id), Some("SETTLED"));
    assert!(h.ex.order(sl_id).is_some_and(|o| o.waiting_stop), "sell stop-limit still waiting");
    // Trade down at P - 250 (<= P - 200): the sell stop-limit rests at P - 300... and trades
    // against the bid at P - 250 left by bob.
    h.limit(bob, Side::Buy, P - 250, 2 * ONE);
    let ev = h.limit(alice, Side::Sell, P - 250, ONE).1;
    assert!(ev.iter().any(|e| matches!(e, Event::OrderTriggered { order_id, .. } if *order_id == sl_id)));
    assert_eq!(status_of(&ev, sl_id), Some("SETTLED"));
    h.assert_invariants();
}

#[test]
fn amend_keeps_priority_only_when_quantity_shrinks_at_same_price() {
    let (mut h, alice, bob) = setup();
    let carol = h.user(3, &[(BTC, 10)]);
    let (a, _) = h.limit(alice, Side::Sell, P, 2 * ONE);
    let (c, _) = h.limit(carol, Side::Sell, P, ONE);
    let ev = h.cmd(Command::Amend { user: alice, order_id: a, price: None, qty: Some(Qty(ONE)) });
    assert!(ev.iter().any(|e| matches!(e, Event::OrderAmended { kept_priority: true, .. })));
    assert_eq!(h.balance(alice, BTC), (99 * UNIT, UNIT), "reservation follows the amend");
    let ev = h.limit(bob, Side::Buy, P, ONE).1;
    assert_eq!(trades(&ev)[0].0, a, "alice kept her place");
    // Growing the quantity sends the order to the back of the level.
    let (a2, _) = h.limit(alice, Side::Sell, P, ONE);
    let ev = h.cmd(Command::Amend { user: carol, order_id: c, price: None, qty: Some(Qty(2 * ONE)) });
    assert!(ev.iter().any(|e| matches!(e, Event::OrderAmended { kept_priority: false, .. })));
    let ev = h.limit(bob, Side::Buy, P, ONE).1;
    assert_eq!(trades(&ev)[0].0, a2, "carol lost her place");
    h.assert_invariants();
}

#[test]
fn amend_into_the_spread_trades() {
    let (mut h, alice, bob) = setup();
    h.limit(alice, Side::Sell, P, ONE);
    let (b, _) = h.limit(bob, Side::Buy, P - 1_000, ONE);
    let ev = h.cmd(Command::Amend { user: bob, order_id: b, price: Some(Price(P)), qty: None });
    assert_eq!(trades(&ev).len(), 1);
    assert_eq!(status_of(&ev, b), Some("SETTLED"));
    assert_eq!(h.balance(bob, USD).1, 0);
    h.assert_invariants();
}

#[test]
fn amend_rejects_bad_requests() {
    let (mut h, alice, bob) = setup();
    let (a, _) = h.limit(alice, Side::Sell, P, 2 * ONE);
    let reject = |h: &mut Harness, user, price: Option<i64>, qty: Option<i64>| {
        rejection(&h.cmd(Command::Amend { user, order_id: a, price: price.map(Price), qty: qty.map(Qty) }))
    };
    assert_eq!(reject(&mut h, bob, None, Some(ONE)), Some(RejectReason::OrderNotFound), "not bob's order");
    assert_eq!(reject(&mut h, alice, Some(P), Some(2 * ONE)), Some(RejectReason::AmendNoChange));
    assert_eq!(reject(&mut h, alice, None, Some(0)), Some(RejectReason::InvalidQuantity));
    h.limit(bob, Side::Buy, P, ONE);
    assert_eq!(reject(&mut h, alice, None, Some(ONE)), Some(RejectReason::AmendBelowFilled));
    assert_eq!(reject(&mut h, alice, Some(P * 2), None), Some(RejectReason::PriceOutOfBand));
    h.assert_invariants();
}

#[test]
fn cancel_releases_and_mass_cancel_filters_by_symbol() {
    let (mut h, alice, bob) = setup();
    h.cmd(Command::Deposit { user: alice, asset: qt_testkit::ETH, amount: Amount(100 * UNIT) });
    let (a1, _) = h.limit(alice, Side::Buy, P, ONE);
    let (a2, _) = h.limit(alice, Side::Sell, P + 10, ONE);
    let mut eth = h.order(alice, Side::Sell, 200_000, 1_000);
    eth.symbol = ETH_USD;
    let e1 = eth.order_id;
    h.place(eth);
    assert_eq!(rejection(&h.cmd(Command::Cancel { user: bob, order_id: a1 })), Some(RejectReason::OrderNotFound));
    let ev = h.cmd(Command::Cancel { user: alice, order_id: a1 });
    assert_eq!(status_of(&ev, a1), Some("CANCELLED"));
    assert_eq!(h.balance(alice, USD), (1_000_000 * UNIT, 0));
    let ev = h.cmd(Command::MassCancel { user: alice, symbol: Some(BTC_USD) });
    assert_eq!(status_of(&ev, a2), Some("CANCELLED"));
    assert!(h.ex.order(e1).is_some(), "ETH-USD order untouched");
    let ev = h.cmd(Command::MassCancel { user: alice, symbol: None });
    assert!(ev.iter().any(
        |e| matches!(e, Event::OrderCancelled { order_id, reason: CancelReason::MassCancel, .. } if *order_id == e1)
    ));
    assert_eq!(rejection(&h.cmd(Command::Cancel { user: alice, order_id: a1 })), Some(RejectReason::OrderNotFound));
    h.assert_invariants();
}

#[test]
fn self_trade_prevention_modes() {
    for (mode, maker_survives, taker_rests) in [
        (StpMode::CancelNewest, true, false),
        (StpMode::CancelOldest, false, true),
        (StpMode::CancelBoth, false, false),
    ] {
        let (mut h, alice, _) = setup();
        let (maker, _) = h.limit(alice, Side::Sell, P, ONE);
        let mut o = h.order(alice, Side::Buy, P, ONE);
        o.stp = mode;
        let taker = o.order_id;
        let ev = h.place(o);
        assert!(trades(&ev).is_empty(), "{mode:?}: no self-trade");
        assert_eq!(h.ex.order(maker).is_some(), maker_survives, "{mode:?}: maker");
        assert_eq!(h.ex.order(taker).is_some(), taker_rests, "{mode:?}: taker");
        let stp_cancels = ev
            .iter()
            .filter(|e| matches!(e, Event::OrderCancelled { reason: CancelReason::SelfTradePrevention, .. }))
            .count();
        assert_eq!(stp_cancels, usize::from(!maker_survives) + usize::from(!taker_rests), "{mode:?}");
        h.assert_invariants();
    }
}

#[test]
fn insufficient_funds_and_grid_limits_are_rejected() {
    let (mut h, alice, _) = setup();
    let poor = h.user(9, &[(USD, 10)]);
    assert_eq!(rejection(&h.limit(poor, Side::Buy, P, ONE).1), Some(RejectReason::InsufficientFunds));
    assert_eq!(rejection(&h.limit(poor, Side::Sell, P, ONE).1), Some(RejectReason::InsufficientFunds));
    assert_eq!(rejection(&h.limit(alice, Side::Buy, P, 0).1), Some(RejectReason::InvalidQuantity));
    assert_eq!(rejection(&h.limit(alice, Side::Buy, 1, 1).1), Some(RejectReason::NotionalTooSmall));
    assert_eq!(rejection(&h.limit(alice, Side::Buy, P, 20_000_000).1), Some(RejectReason::QuantityTooLarge));
    let mut o = h.order(alice, Side::Buy, P, ONE);
    o.symbol = qt_core::SymbolId(99);
    assert_eq!(rejection(&h.place(o)), Some(RejectReason::UnknownSymbol));
    let (id, _) = h.limit(alice, Side::Buy, P - 5, ONE);
    let mut dup = h.order(alice, Side::Buy, P - 5, ONE);
    dup.order_id = id;
    assert_eq!(rejection(&h.place(dup)), Some(RejectReason::DuplicateOrderId));
    h.assert_invariants();
}

#[test]
fn price_band_applies_once_there_is_a_last_price() {
    let (mut h, alice, bob) = setup();
    assert_eq!(rejection(&h.limit(alice, Side::Sell, P * 3, ONE).1), None, "no last price yet");
    h.limit(alice, Side::Sell, P, ONE);
    h.limit(bob, Side::Buy, P, ONE);
    assert_eq!(rejection(&h.limit(bob, Side::Buy, P * 12 / 10, ONE).1), Some(RejectReason::PriceOutOfBand));
    assert_eq!(rejection(&h.limit(bob, Side::Buy, P * 11 / 10, ONE).1), None);
}

fn with_limits(h: &mut Harness, user: UserId, limits: RiskLimits) {
    let ev = h.cmd(Command::SetLimits { user, limits });
    assert!(matches!(ev[0], Event::LimitsChanged { .. }));
}

#[test]
fn order_size_notional_and_position_limits() {
    let (mut h, alice, bob) = setup();
    let mut l = RiskLimits::default();
    l.max_order_qty.insert(BTC_USD, Qty(2 * ONE));
    l.max_order_notional = Some(Amount(50_000 * UNIT));
    l.max_position.insert(BTC_USD, Qty(3 * ONE));
    with_limits(&mut h, alice, l);
    assert_eq!(rejection(&h.limit(alice, Side::Buy, P, 3 * ONE).1), Some(RejectReason::MaxOrderQuantity));
    assert_eq!(rejection(&h.limit(alice, Side::Buy, 3_000_000, 2 * ONE).1), Some(RejectReason::MaxOrderNotional));
    h.limit(bob, Side::Sell, 1_000_000, 10 * ONE);
    for _ in 0..3 {
        assert_eq!(rejection(&h.limit(alice, Side::Buy, 1_000_000, ONE).1), None);
    }
    assert_eq!(rejection(&h.limit(alice, Side::Buy, 1_000_000, ONE).1), Some(RejectReason::MaxPosition));
    // Reducing the position is always allowed.
    assert_eq!(rejection(&h.limit(alice, Side::Sell, 1_000_000, ONE).1), None);
    h.assert_invariants();
}

#[test]
fn velocity_limit_counts_orders_per_rolling_second() {
    let (mut h, alice, _) = setup();
    with_limits(&mut h, alice, RiskLimits { max_orders_per_second: Some(3), ..RiskLimits::default() });
    for i in 0..3 {
        assert_eq!(rejection(&h.limit(alice, Side::Buy, P - 10 - i, ONE).1), None);
    }
    assert_eq!(rejection(&h.limit(alice, Side::Buy, P - 20, ONE).1), Some(RejectReason::Velocity));
    h.advance(1_000_000_000);
    assert_eq!(rejection(&h.limit(alice, Side::Buy, P - 20, ONE).1), None);
}

#[test]
fn kill_switches_cancel_and_block() {
    let (mut h, alice, bob) = setup();
    let (a, _) = h.limit(alice, Side::Buy, P - 10, ONE);
    let (b, _) = h.limit(bob, Side::Buy, P - 10, ONE);
    let ev = h.cmd(Command::SetKillSwitch { user: Some(alice), on: true });
    assert!(ev.iter().any(
        |e| matches!(e, Event::OrderCancelled { order_id, reason: CancelReason::KillSwitch, .. } if *order_id == a)
    ));
    assert!(h.ex.order(b).is_some());
    assert_eq!(rejection(&h.limit(alice, Side::Buy, P - 10, ONE).1), Some(RejectReason::KillSwitch));
    h.cmd(Command::SetKillSwitch { user: Some(alice), on: false });
    assert_eq!(rejection(&h.limit(alice, Side::Buy, P - 10, ONE).1), None);
    h.cmd(Command::SetKillSwitch { user: None, on: true });
    assert!(h.ex.order(b).is_none(), "global switch cancels everything");
    assert_eq!(rejection(&h.limit(bob, Side::Buy, P - 10, ONE).1), Some(RejectReason::KillSwitch));
    // Cancels still work while halted.
    h.cmd(Command::SetKillSwitch { user: None, on: false });
    let (c, _) = h.limit(bob, Side::Buy, P - 10, ONE);
    h.cmd(Command::SetKillSwitch { user: None, on: true });
    assert!(h.ex.order(c).is_none());
    h.assert_invariants();
}

#[test]
fn daily_loss_limit_uses_realised_and_marked_pnl_and_resets_at_utc_midnight() {
    let (mut h, alice, bob) = setup();
    with_limits(&mut h, alice, RiskLimits { daily_loss_limit: Some(Amount(1_000 * UNIT)), ..RiskLimits::default() });
    // Alice buys 1 BTC at 30000, then the market trades at 28900: -1100 marked to market.
    h.limit(bob, Side::Sell, P, ONE);
    h.limit(alice, Side::Buy, P, ONE);
    h.limit(bob, Side::Sell, 2_890_000, ONE);
    let carol = h.user(3, &[(USD, 1_000_000)]);
    h.limit(carol, Side::Buy, 2_890_000, ONE);
    assert_eq!(rejection(&h.limit(alice, Side::Buy, 2_800_000, ONE).1), Some(RejectReason::DailyLossLimit));
    // Realised losses count too: selling at 28900 realises the loss...
    h.limit(carol, Side::Buy, 2_890_000, ONE);
    assert_eq!(rejection(&h.limit(alice, Side::Sell, 2_890_000, ONE).1), Some(RejectReason::DailyLossLimit));
    // ... and a new UTC day starts from zero realised PnL (the open position is still marked).
    let day = 86_400 * 1_000_000_000;
    h.advance(day);
    assert_eq!(
        rejection(&h.limit(alice, Side::Sell, 2_890_000, ONE).1),
        Some(RejectReason::DailyLossLimit),
        "still -1100 marked"
    );
}

#[test]
fn concentration_limit_caps_one_symbols_share_of_equity() {
    let (mut h, alice, bob) = setup();
    let dave = h.user(4, &[(USD, 100_000)]);
    with_limits(&mut h, dave, RiskLimits { max_concentration_bps: Some(5_000), ..RiskLimits::default() });
    h.limit(bob, Side::Sell, P, 10 * ONE);
    // 1 BTC = 30% of 100k equity: fine; 2 BTC = 60%: refused.
    assert_eq!(rejection(&h.limit(dave, Side::Buy, P, ONE).1), None);
    assert_eq!(rejection(&h.limit(dave, Side::Buy, P, ONE).1), Some(RejectReason::Concentration));
    let _ = alice;
}

#[test]
fn deposits_and_withdrawals_move_totals_and_nothing_else_does() {
    let (mut h, alice, bob) = setup();
    assert_eq!(
        rejection(&h.cmd(Command::Withdraw { user: alice, asset: USD, amount: Amount(2_000_000 * UNIT) })),
        Some(RejectReason::InsufficientFunds)
    );
    assert_eq!(
        rejection(&h.cmd(Command::Deposit { user: alice, asset: USD, amount: Amount(0) })),
        Some(RejectReason::InvalidAmount)
    );
    assert_eq!(
        rejection(&h.cmd(Command::Deposit { user: UserId(77), asset: USD, amount: Amount(1) })),
        Some(RejectReason::UnknownUser)
    );
    h.cmd(Command::Withdraw { user: alice, asset: USD, amount: Amount(1_000 * UNIT) });
    h.limit(alice, Side::Sell, P, ONE);
    h.limit(bob, Side::Buy, P, ONE);
    let totals = h.ex.ledger().totals();
    assert_eq!(totals[USD.0 as usize], (2_000_000 - 1_000) as i128 * i128::from(UNIT));
    assert_eq!(totals[BTC.0 as usize], 200 * i128::from(UNIT));
    h.assert_invariants();
}

#[test]
fn every_order_status_reached_is_a_table_edge() {
    // Walk through a busy session and check each order's status sequence.
    let (mut h, alice, bob) = setup();
    h.limit(alice, Side::Sell, P, ONE);
    h.limit(bob, Side::Buy, P, ONE / 2);
    h.limit(bob, Side::Buy, P, ONE);
    let mut last: std::collections::HashMap<qt_core::OrderId, OrderStatus> = Default::default();
    for e in &h.events {
        let (id, next) = match &e.event {
            Event::OrderAccepted { order } => (order.order_id, OrderStatus::Accepted),
            Event::OrderFilled { order_id, status, .. } => (*order_id, *status),
            Event::OrderSettled { order_id, .. } => (*order_id, OrderStatus::Settled),
            Event::OrderCancelled { order_id, .. } => (*order_id, OrderStatus::Cancelled),
            Event::OrderExpired { order_id, .. } => (*order_id, OrderStatus::Expired),
            _ => continue,
        };
        if let Some(prev) = last.get(&id) {
            let ok = [
                qt_core::OrderEvent::PartialFill,
                qt_core::OrderEvent::Fill,
                qt_core::OrderEvent::Settle,
                qt_core::OrderEvent::Cancel,
                qt_core::OrderEvent::Expire,
            ]
            .iter()
            .any(|ev| qt_core::transition(*prev, *ev) == Ok(next));
            assert!(ok, "{prev:?} -> {next:?} is not an edge");
        }
        last.insert(id, next);
    }
}

#[test]
fn amending_a_waiting_stop_market_order_keeps_its_reservation_at_the_collar() {
    // Regression (found by the invariants property): the amend re-reserved at price 0.
    let (mut h, alice, bob) = setup();
    let mut stop = h.order(alice, Side::Buy, 0, ONE);
    stop.order_type = OrderType::Stop;
    stop.tif = TimeInForce::Ioc;
    stop.price = None;
    stop.stop_price = Some(Price(P));
    let id = stop.order_id;
    h.place(stop);
    let before = h.balance(alice, USD).1;
    h.cmd(Command::Amend { user: alice, order_id: id, price: None, qty: Some(Qty(2 * ONE)) });
    assert_eq!(h.balance(alice, USD).1, before * 2, "twice the quantity, twice the reservation");
    h.assert_invariants();
    h.limit(bob, Side::Sell, P, 3 * ONE);
    let carol = h.user(3, &[(USD, 1_000_000)]);
    let ev = h.limit(carol, Side::Buy, P, ONE / 2).1;
    assert!(ev.iter().any(|e| matches!(e, Event::OrderTriggered { order_id, .. } if *order_id == id)));
    assert!(h.ex.order(id).is_none(), "triggered and done");
    assert_eq!(h.balance(alice, BTC).0, 102 * UNIT);
    h.assert_invariants();
}
