//! Deterministic snapshots of the whole engine state, and restore.
//!
//! Contract:
//! - [`Exchange::snapshot`] lists everything in a canonical order (users, accounts and
//!   orders sorted by id; resting orders in book priority order), so two exchanges in the
//!   same state produce byte-identical snapshots and the same [`Exchange::state_hash`].
//! - [`Exchange::restore`] rebuilds an exchange whose next `apply` behaves exactly as the
//!   original's would: books keep price-time priority and their delta sequence numbers.
//! - Per-command scratch buffers are not state and are not in the snapshot.

use crate::exchange::{EngineConfig, Exchange, LiveOrder, SymbolState, UserState};
use qt_core::{Amount, Asset, Balance, Ledger, OrderBook, OrderId, Price, Resting, SymbolSpec, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Format version written into every snapshot; restore refuses others.
pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// Sequence number of the last command applied: replay continues after it.
    pub last_cmd_seq: u64,
    pub event_seq: u64,
    pub next_trade_id: u64,
    #[serde(default)]
    pub max_order_id: u64,
    pub global_kill: bool,
    pub config: EngineConfig,
    pub assets: Vec<Asset>,
    pub symbols: Vec<SymbolSnapshot>,
    pub users: Vec<(UserId, UserState)>,
    pub accounts: Vec<(UserId, Vec<Balance>)>,
    pub fees: Vec<Amount>,
    pub net_flows: Vec<i128>,
    pub orders: Vec<LiveOrder>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolSnapshot {
    pub spec: SymbolSpec,
    pub book_seq: u64,
    pub last_price: Option<Price>,
    /// Resting orders in priority order (bids best first, then asks; oldest first).
    pub resting: Vec<Resting>,
    pub buy_stops: Vec<(Price, OrderId)>,
    pub sell_stops: Vec<(Price, OrderId)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot format version {0} is not supported (expected {SNAPSHOT_VERSION})")]
    Version(u32),
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
    #[error("snapshot encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl Snapshot {
    pub fn to_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        Ok(serde_json::to_vec(self)?)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// SHA-256 of the canonical encoding, hex.
    pub fn hash(&self) -> Result<String, SnapshotError> {
        let digest = Sha256::digest(self.to_bytes()?);
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl Exchange {
    pub fn snapshot(&self) -> Snapshot {
        let mut users: Vec<(UserId, UserState)> = self.users.iter().map(|(id, u)| (*id, u.clone())).collect();
        users.sort_by_key(|(id, _)| *id);
        let mut orders: Vec<LiveOrder> = self.orders.values().cloned().collect();
        orders.sort_by_key(|o| o.order.order_id);
        let symbols = self
            .symbols
            .iter()
            .map(|s| SymbolSnapshot {
                spec: s.spec.clone(),
                book_seq: s.book.seq(),
                last_price: s.last_price,
                resting: s.book.resting_orders(),
                buy_stops: s.buy_stops.iter().copied().collect(),
                sell_stops: s.sell_stops.iter().copied().collect(),
            })
            .collect();
        Snapshot {
            version: SNAPSHOT_VERSION,
            last_cmd_seq: self.last_cmd_seq,
            event_seq: self.event_seq,
            next_trade_id: self.next_trade_id,
            max_order_id: self.max_order_id,
            global_kill: self.global_kill,
            config: self.config.clone(),
            assets: self.assets.clone(),
            symbols,
            users,
            accounts: self.ledger.sorted_accounts(),
            fees: self.ledger.fees().to_vec(),
            net_flows: self.ledger.net_flows().to_vec(),
            orders,
        }
    }

    /// The state hash: SHA-256 of the canonical snapshot. Equal states, equal hashes.
    pub fn state_hash(&self) -> String {
        // Encoding plain data into a Vec cannot fail; an empty hash would only ever be
        // compared against a real one and differ.
        self.snapshot().hash().unwrap_or_default()
    }

    pub fn restore(snap: Snapshot) -> Result<Exchange, SnapshotError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(snap.version));
        }
        let mut ex = Exchange::new(snap.config);
        ex.assets = snap.assets;
        ex.last_cmd_seq = snap.last_cmd_seq;
        ex.event_seq = snap.event_seq;
        ex.next_trade_id = snap.next_trade_id;
        ex.max_order_id = snap.max_order_id;
        ex.global_kill = snap.global_kill;
        ex.ledger = Ledger::from_parts(snap.accounts, snap.fees, snap.net_flows);
        for o in snap.orders {
            ex.orders.insert(o.order.order_id, o);
        }
        for (id, mut u) in snap.users {
            u.open_orders.clear();
            ex.users.insert(id, u);
        }
        let mut open: Vec<(UserId, OrderId)> = ex.orders.values().map(|o| (o.order.user, o.order.order_id)).collect();
        open.sort_unstable();
        for (user, id) in open {
            let u = ex
                .users
                .get_mut(&user)
                .ok_or_else(|| SnapshotError::Inconsistent(format!("order {id:?} of unknown user")))?;
            u.open_orders.insert(id);
        }
        let mut scratch = Vec::new();
        for s in snap.symbols {
            let mut book = OrderBook::new();
            for r in &s.resting {
                book.insert(r.side, r.price, r.order_id, r.user, r.qty, &mut scratch);
            }
            scratch.clear();
            book.set_seq(s.book_seq);
            ex.symbols.push(SymbolState {
                spec: s.spec,
                book,
                last_price: s.last_price,
                buy_stops: s.buy_stops.into_iter().collect::<BTreeSet<_>>(),
                sell_stops: s.sell_stops.into_iter().collect::<BTreeSet<_>>(),
            });
        }
        ex.check_invariants().map_err(SnapshotError::Inconsistent)?;
        Ok(ex)
    }
}
