//! Pre-trade checks shared by the whole exchange ([`crate::Exchange`]) and the risk shard
//! ([`crate::shard::RiskShard`]), so that both refuse the same orders for the same reasons.
//!
//! Contract:
//! - Pure functions of their arguments: the symbol's spec, the prices the caller knows (the
//!   book itself in the exchange, the last reported marks in a risk shard), the user's state
//!   and ledger, and the command's time. Only `check_risk` changes anything: it counts the
//!   order in the user's velocity window when asked to.
//! - The order of the checks is the order of the reasons a client sees; callers must not
//!   reorder them.

use crate::exchange::UserState;
use qt_core::money::bps_ceil;
use qt_core::{
    Amount, Asset, AssetId, Ledger, LedgerError, NewOrder, OrderType, Price, Qty, RejectReason, Side, SymbolId,
    SymbolSpec, TimeInForce, UserId,
};

/// The symbols a check may value positions and balances with: spec and last price.
pub(crate) trait Marks {
    fn symbol_count(&self) -> usize;
    fn spec(&self, i: usize) -> &SymbolSpec;
    fn last(&self, i: usize) -> Option<Price>;
}

/// Static checks of a new order against its symbol: shape, grid limits, price band (around
/// `last`) and minimum notional. The caller has checked that the symbol and the user exist
/// and that the id is not in use.
pub(crate) fn validate_shape(o: &NewOrder, spec: &SymbolSpec, last: Option<Price>) -> Result<(), RejectReason> {
    if !o.qty.is_positive() {
        return Err(RejectReason::InvalidQuantity);
    }
    if o.qty < spec.min_qty {
        return Err(RejectReason::QuantityTooSmall);
    }
    if o.qty > spec.max_qty {
        return Err(RejectReason::QuantityTooLarge);
    }
    if o.order_type.has_limit_price() {
        match o.price {
            None => return Err(RejectReason::MissingPrice),
            Some(p) if !p.is_positive() => return Err(RejectReason::InvalidPrice),
            _ => {}
        }
    }
    if o.order_type.is_stop() {
        match o.stop_price {
            None => return Err(RejectReason::MissingStopPrice),
            Some(p) if !p.is_positive() => return Err(RejectReason::InvalidPrice),
            _ => {}
        }
    }
    if matches!(o.order_type, OrderType::Market | OrderType::Stop) && o.tif == TimeInForce::Gtc {
        return Err(RejectReason::MarketOrderTif);
    }
    if o.post_only && (o.order_type != OrderType::Limit || o.tif != TimeInForce::Gtc) {
        return Err(RejectReason::PostOnlyInvalid);
    }
    if let (Some(p), Some(last)) = (o.price, last) {
        if o.order_type.has_limit_price() && !spec.within_band(p, last) {
            return Err(RejectReason::PriceOutOfBand);
        }
    }
    let notional_price = o.price.or(o.stop_price).or(last);
    if let Some(p) = notional_price {
        if spec.notional(p, o.qty) < i128::from(spec.min_notional.0) {
            return Err(RejectReason::NotionalTooSmall);
        }
    }
    Ok(())
}

/// The price an order may trade at, worst case: what funds are reserved against (the limit
/// price, or the collar around the reference for market and stop-market orders).
/// `market_reference` gives the last price, or failing that the best opposite price.
pub(crate) fn worst_price(
    o: &NewOrder,
    spec: &SymbolSpec,
    market_reference: impl FnOnce() -> Option<Price>,
) -> Result<Option<Price>, RejectReason> {
    Ok(match o.order_type {
        OrderType::Limit | OrderType::StopLimit => o.price,
        OrderType::Market => {
            Some(spec.collar_price(market_reference().ok_or(RejectReason::NoLiquidity)?, o.side == Side::Buy))
        }
        OrderType::Stop => o.stop_price.map(|s| spec.collar_price(s, o.side == Side::Buy)),
    })
}

/// Funds an order of `qty` at worst-case `price` needs in reserve: quote plus the highest fee
/// for a buy, base for a sell.
pub(crate) fn required_reserve(spec: &SymbolSpec, side: Side, price: Price, qty: Qty) -> Result<Amount, RejectReason> {
    match side {
        Side::Buy => {
            let notional = spec.notional(price, qty);
            let fee_bps = spec.taker_fee_bps.max(spec.maker_fee_bps).max(0);
            qt_core::money::amount_from_i128(notional + bps_ceil(notional, fee_bps)).map_err(|_| RejectReason::Overflow)
        }
        Side::Sell => spec.base_amount(qty).map_err(|_| RejectReason::Overflow),
    }
}

/// The asset an order on `spec` reserves: quote for a buy, base for a sell.
pub(crate) fn reserve_asset(spec: &SymbolSpec, side: Side) -> AssetId {
    match side {
        Side::Buy => spec.quote,
        Side::Sell => spec.base,
    }
}

/// One order (or the increase of one) for the pre-trade limits.
pub(crate) struct RiskQuery {
    pub user: UserId,
    pub symbol: SymbolId,
    pub side: Side,
    pub qty: Qty,
    /// Worst-case price.
    pub price: Price,
    /// Command time: the daily window and the velocity window roll with it.
    pub ts: i64,
    /// Counts the order in the user's velocity window.
    pub count_velocity: bool,
}

/// The pre-trade limits: kill switches, order size and notional, position, daily loss,
/// concentration and velocity.
pub(crate) fn check_risk(
    global_kill: bool,
    state: Option<&mut UserState>,
    ledger: &Ledger,
    marks: &(impl Marks + ?Sized),
    q: &RiskQuery,
) -> Result<(), RejectReason> {
    if global_kill {
        return Err(RejectReason::KillSwitch);
    }
    let spec = marks.spec(q.symbol.0 as usize);
    let notional = spec.notional(q.price, q.qty);
    let u = state.ok_or(RejectReason::UnknownUser)?;
    let limits = &u.limits;
    if limits.kill_switch {
        return Err(RejectReason::KillSwitch);
    }
    if limits.max_order_qty.get(&q.symbol).is_some_and(|m| q.qty > *m) {
        return Err(RejectReason::MaxOrderQuantity);
    }
    if limits.max_order_notional.is_some_and(|m| notional > i128::from(m.0)) {
        return Err(RejectReason::MaxOrderNotional);
    }
    let position = u.positions.get(q.symbol.0 as usize).copied().unwrap_or_default();
    let projected = match q.side {
        Side::Buy => position.qty.saturating_add(q.qty.0),
        Side::Sell => position.qty.saturating_sub(q.qty.0),
    };
    let increases = projected.unsigned_abs() > position.qty.unsigned_abs();
    if increases && limits.max_position.get(&q.symbol).is_some_and(|m| projected.unsigned_abs() > m.0.unsigned_abs()) {
        return Err(RejectReason::MaxPosition);
    }
    if let Some(limit) = limits.daily_loss_limit {
        let mut daily = u.daily;
        daily.roll(q.ts);
        let unrealized: i128 = u
            .positions
            .iter()
            .enumerate()
            .take(marks.symbol_count())
            .filter(|(_, p)| p.qty != 0)
            .map(|(i, p)| {
                let mark = marks.last(i).unwrap_or_default();
                p.unrealized(marks.spec(i).notional(mark, Qty(p.qty.abs())))
            })
            .sum();
        if -(daily.realized + unrealized) >= i128::from(limit.0) {
            return Err(RejectReason::DailyLossLimit);
        }
    }
    if let (Some(bps), true) = (limits.max_concentration_bps, increases) {
        let mark = marks.last(q.symbol.0 as usize).unwrap_or(q.price);
        let exposure = spec.notional(mark, Qty(projected.abs()));
        let equity = equity_in(ledger, marks, q.user, spec.quote);
        if exposure * 10_000 > equity * i128::from(bps) {
            return Err(RejectReason::Concentration);
        }
    }
    if q.count_velocity {
        if let Some(max) = u.limits.max_orders_per_second {
            if !u.velocity.admit(q.ts, max) {
                return Err(RejectReason::Velocity);
            }
        }
    }
    Ok(())
}

/// A user's equity valued in `quote`: every balance of an asset that has a symbol against
/// `quote` with a last price, plus `quote` itself. Assets with no price count as zero
/// (conservative).
fn equity_in(ledger: &Ledger, marks: &(impl Marks + ?Sized), user: UserId, quote: AssetId) -> i128 {
    let Some(balances) = ledger.balances(user) else { return 0 };
    let mut equity = 0i128;
    for (i, b) in balances.iter().enumerate() {
        let total = i128::from(b.available.0) + i128::from(b.reserved.0);
        if total == 0 {
            continue;
        }
        if i == quote.0 as usize {
            equity += total;
            continue;
        }
        let priced = (0..marks.symbol_count()).find(|&s| {
            let spec = marks.spec(s);
            spec.base.0 as usize == i && spec.quote == quote
        });
        if let Some(s) = priced {
            if let Some(p) = marks.last(s) {
                let spec = marks.spec(s);
                equity += total * i128::from(p.0) * i128::from(spec.tick) / 10i128.pow(spec.base_scale);
            }
        }
    }
    equity
}

/// The reason a client sees for a ledger operation that failed.
pub(crate) fn ledger_reason(e: LedgerError) -> RejectReason {
    match e {
        LedgerError::UnknownAccount => RejectReason::UnknownUser,
        LedgerError::UnknownAsset => RejectReason::UnknownAsset,
        LedgerError::NonPositive => RejectReason::InvalidAmount,
        LedgerError::Overflow => RejectReason::Overflow,
        LedgerError::InsufficientFunds => RejectReason::InsufficientFunds,
    }
}

/// A symbol listing is valid when its id is the next one, its spec is sound, its assets
/// exist with the spec's scales and its name is new; both halves judge it the same way.
pub(crate) fn symbol_is_valid<'a>(
    spec: &SymbolSpec,
    assets: &[Asset],
    mut listed: impl ExactSizeIterator<Item = &'a SymbolSpec>,
) -> bool {
    spec.id.0 as usize == listed.len()
        && spec.validate().is_ok()
        && spec.base != spec.quote
        && assets.get(spec.base.0 as usize).is_some_and(|a| a.scale == spec.base_scale)
        && assets.get(spec.quote.0 as usize).is_some_and(|a| a.scale == spec.quote_scale)
        && !listed.any(|s| s.name == spec.name)
}
