//! Reference data used across tests: USD, BTC and ETH with 8 decimals, and the symbols
//! BTC-USD (tick 0.01, lot 0.0001) and ETH-USD (tick 0.01, lot 0.001).

use qt_core::{Amount, AssetId, Qty, SymbolId, SymbolSpec};
use qt_engine::Command;

pub const USD: AssetId = AssetId(0);
pub const BTC: AssetId = AssetId(1);
pub const ETH: AssetId = AssetId(2);
pub const BTC_USD: SymbolId = SymbolId(0);
pub const ETH_USD: SymbolId = SymbolId(1);

/// One whole unit of an 8-decimal asset in minor units.
pub const UNIT: i64 = 100_000_000;

pub fn btc_usd() -> SymbolSpec {
    SymbolSpec {
        id: BTC_USD,
        name: "BTC-USD".into(),
        base: BTC,
        quote: USD,
        base_scale: 8,
        quote_scale: 8,
        tick: 1_000_000,
        lot: 10_000,
        min_qty: Qty(1),
        max_qty: Qty(10_000_000),
        min_notional: Amount(UNIT),
        price_band_bps: 1_000,
        market_collar_bps: 500,
        maker_fee_bps: -1,
        taker_fee_bps: 5,
    }
}

pub fn eth_usd() -> SymbolSpec {
    SymbolSpec {
        id: ETH_USD,
        name: "ETH-USD".into(),
        base: ETH,
        quote: USD,
        lot: 100_000,
        maker_fee_bps: 0,
        taker_fee_bps: 10,
        ..btc_usd()
    }
}

/// Commands that list USD, BTC, ETH and the two symbols, in order.
pub fn reference_data() -> Vec<Command> {
    vec![
        Command::AddAsset { code: "USD".into(), scale: 8 },
        Command::AddAsset { code: "BTC".into(), scale: 8 },
        Command::AddAsset { code: "ETH".into(), scale: 8 },
        Command::AddSymbol(btc_usd()),
        Command::AddSymbol(eth_usd()),
    ]
}

/// `count` symbols `S{i}-USD` over assets `A{i}` quoted in USD (asset 0), for benchmarks
/// with many books. Fees are zero so that reservations stay simple to reason about.
pub fn many_symbols(count: u16) -> Vec<Command> {
    let mut cmds = vec![Command::AddAsset { code: "USD".into(), scale: 8 }];
    for i in 0..count {
        cmds.push(Command::AddAsset { code: format!("A{i}"), scale: 8 });
    }
    for i in 0..count {
        cmds.push(Command::AddSymbol(SymbolSpec {
            id: SymbolId(i),
            name: format!("S{i}-USD"),
            base: AssetId(i + 1),
            min_notional: Amount(0),
            price_band_bps: 10_000,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
            ..btc_usd()
        }));
    }
    cmds
}
