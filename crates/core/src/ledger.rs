//! The ledger: every user's available and reserved balance per asset, plus the fee account.
//!
//! Contract:
//! - Money only moves by the operations here. Deposits and withdrawals are the only ones
//!   that change the total of an asset; reservations move value between a user's available
//!   and reserved columns; a trade settlement moves base and quote between two users and
//!   the fees into the fee account.
//! - [`Ledger::check_conservation`] proves, per asset, that the sum over all accounts
//!   (including the fee account) equals deposits minus withdrawals.
//! - No balance ever goes negative: an operation that would make one negative fails and
//!   changes nothing.
//! - A ledger that holds only some users (a risk shard) settles one side of a fill at a
//!   time ([`Ledger::settle_side`]); the counterparty's side is settled by another shard. The
//!   value in transit is booked in the clearing column, so each shard still conserves, and
//!   the clearing columns of all shards sum to zero once both sides of every fill are in.

use crate::money::{Amount, Overflow};
use crate::order::UserId;
use crate::symbol::AssetId;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub available: Amount,
    pub reserved: Amount,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum LedgerError {
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("unknown account")]
    UnknownAccount,
    #[error("unknown asset")]
    UnknownAsset,
    #[error("amount must be positive")]
    NonPositive,
    #[error("arithmetic overflow")]
    Overflow,
}

impl From<Overflow> for LedgerError {
    fn from(_: Overflow) -> Self {
        LedgerError::Overflow
    }
}

/// The money side of one fill, already priced: who pays what to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub buyer: UserId,
    pub seller: UserId,
    pub base: AssetId,
    pub quote: AssetId,
    /// Base units delivered by the seller to the buyer.
    pub base_amount: Amount,
    /// Quote units paid by the buyer to the seller (before fees).
    pub quote_amount: Amount,
    /// Fee of the buyer in quote units; negative is a rebate.
    pub buyer_fee: Amount,
    /// Fee of the seller in quote units; negative is a rebate.
    pub seller_fee: Amount,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    assets: u16,
    accounts: FxHashMap<UserId, Vec<Balance>>,
    fees: Vec<Amount>,
    /// Deposits minus withdrawals per asset.
    net_flows: Vec<i128>,
    /// Per asset, what this ledger is owed by (positive) or owes (negative) the ledgers that
    /// settle the other sides of its fills. Always zero when both sides settle here.
    #[serde(default)]
    clearing: Vec<i128>,
}

/// One side of one fill, for a ledger that holds only that side's user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SideSettlement {
    pub user: UserId,
    pub side: crate::order::Side,
    pub base: AssetId,
    pub quote: AssetId,
    /// Base units received (buy) or delivered (sell).
    pub base_amount: Amount,
    /// Quote units paid (buy) or received (sell), before the fee.
    pub quote_amount: Amount,
    /// This side's fee in quote units; negative is a rebate.
    pub fee: Amount,
}

impl Ledger {
    pub fn new(assets: u16) -> Self {
        Ledger {
            assets,
            accounts: FxHashMap::default(),
            fees: vec![Amount::ZERO; assets as usize],
            net_flows: vec![0; assets as usize],
            clearing: vec![0; assets as usize],
        }
    }

    /// Makes room for a newly listed asset.
    pub fn add_asset(&mut self) -> AssetId {
        let id = AssetId(self.assets);
        self.assets += 1;
        self.fees.push(Amount::ZERO);
        self.net_flows.push(0);
        self.clearing.push(0);
        for acc in self.accounts.values_mut() {
            acc.push(Balance::default());
        }
        id
    }

    pub fn asset_count(&self) -> u16 {
        self.assets
    }

    pub fn open_account(&mut self, user: UserId) {
        let n = self.assets as usize;
        self.accounts.entry(user).or_insert_with(|| vec![Balance::default(); n]);
    }

    pub fn has_account(&self, user: UserId) -> bool {
        self.accounts.contains_key(&user)
    }

    pub fn balance(&self, user: UserId, asset: AssetId) -> Option<Balance> {
        self.accounts.get(&user).and_then(|a| a.get(asset.0 as usize)).copied()
    }

    pub fn balances(&self, user: UserId) -> Option<&[Balance]> {
        self.accounts.get(&user).map(Vec::as_slice)
    }

    pub fn fee_balance(&self, asset: AssetId) -> Amount {
        self.fees.get(asset.0 as usize).copied().unwrap_or_default()
    }

    fn slot(&mut self, user: UserId, asset: AssetId) -> Result<&mut Balance, LedgerError> {
        let acc = self.accounts.get_mut(&user).ok_or(LedgerError::UnknownAccount)?;
        acc.get_mut(asset.0 as usize).ok_or(LedgerError::UnknownAsset)
    }

    pub fn deposit(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<Balance, LedgerError> {
        if !amount.is_positive() {
            return Err(LedgerError::NonPositive);
        }
        let b = self.slot(user, asset)?;
        let available = b.available.checked_add(amount)?;
        // available + reserved must stay representable too
        available.checked_add(b.reserved)?;
        b.available = available;
        let out = *b;
        self.net_flows[asset.0 as usize] += i128::from(amount.0);
        Ok(out)
    }

    pub fn withdraw(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<Balance, LedgerError> {
        if !amount.is_positive() {
            return Err(LedgerError::NonPositive);
        }
        let b = self.slot(user, asset)?;
        if b.available < amount {
            return Err(LedgerError::InsufficientFunds);
        }
        b.available.0 -= amount.0;
        let out = *b;
        self.net_flows[asset.0 as usize] -= i128::from(amount.0);
        Ok(out)
    }

    /// Moves `amount` from available to reserved.
    pub fn reserve(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), LedgerError> {
        let b = self.slot(user, asset)?;
        if amount.0 < 0 || b.available < amount {
            return Err(LedgerError::InsufficientFunds);
        }
        b.available.0 -= amount.0;
        b.reserved.0 += amount.0;
        Ok(())
    }

    /// Moves `amount` (at most what is reserved) back from reserved to available.
    pub fn release(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), LedgerError> {
        let b = self.slot(user, asset)?;
        if amount.0 < 0 || b.reserved < amount {
            return Err(LedgerError::InsufficientFunds);
        }
        b.reserved.0 -= amount.0;
        b.available.0 += amount.0;
        Ok(())
    }

    /// Settles one fill. The buyer pays quote (plus a positive fee) out of its reserved
    /// quote; the seller delivers base out of its reserved base; rebates and proceeds land
    /// in available. Checks every debit before applying any, so a failure changes nothing.
    pub fn settle(&mut self, s: &Settlement) -> Result<(), LedgerError> {
        let buyer_pays = s.quote_amount.checked_add(Amount(s.buyer_fee.0.max(0)))?;
        let buyer_rebate = Amount((-s.buyer_fee.0).max(0));
        let seller_gets = s.quote_amount.checked_sub(s.seller_fee)?;
        if seller_gets.0 < 0 {
            return Err(LedgerError::InsufficientFunds);
        }
        let (bq, sb) = (self.balance(s.buyer, s.quote), self.balance(s.seller, s.base));
        match (bq, sb) {
            (Some(bq), Some(sb)) if bq.reserved >= buyer_pays && sb.reserved >= s.base_amount => {}
            (Some(_), Some(_)) => return Err(LedgerError::InsufficientFunds),
            _ => return Err(LedgerError::UnknownAccount),
        }
        self.balance(s.buyer, s.base).ok_or(LedgerError::UnknownAccount)?;
        self.balance(s.seller, s.quote).ok_or(LedgerError::UnknownAccount)?;

        self.slot(s.buyer, s.quote)?.reserved.0 -= buyer_pays.0;
        let b = self.slot(s.buyer, s.quote)?;
        b.available = b.available.checked_add(buyer_rebate)?;
        let b = self.slot(s.buyer, s.base)?;
        b.available = b.available.checked_add(s.base_amount)?;
        self.slot(s.seller, s.base)?.reserved.0 -= s.base_amount.0;
        let b = self.slot(s.seller, s.quote)?;
        b.available = b.available.checked_add(seller_gets)?;
        let f = &mut self.fees[s.quote.0 as usize];
        *f = f.checked_add(s.buyer_fee)?.checked_add(s.seller_fee)?;
        Ok(())
    }

    /// Settles one side of a fill against the clearing column: a buyer pays quote (plus a
    /// positive fee) out of its reserved quote and receives base; a seller delivers base out
    /// of its reserved base and receives quote less its fee. Checks before it changes
    /// anything, so a failure changes nothing.
    pub fn settle_side(&mut self, s: &SideSettlement) -> Result<(), LedgerError> {
        use crate::order::Side;
        if s.base_amount.0 < 0 || s.quote_amount.0 < 0 {
            return Err(LedgerError::NonPositive);
        }
        self.balance(s.user, s.base).ok_or(LedgerError::UnknownAccount)?;
        self.balance(s.user, s.quote).ok_or(LedgerError::UnknownAccount)?;
        let (b, q) = (s.base.0 as usize, s.quote.0 as usize);
        // A ledger decoded from before the column existed has none yet.
        self.clearing.resize(self.assets as usize, 0);
        match s.side {
            Side::Buy => {
                let pays = s.quote_amount.checked_add(Amount(s.fee.0.max(0)))?;
                let rebate = Amount((-s.fee.0).max(0));
                let quote = self.slot(s.user, s.quote)?;
                if quote.reserved < pays {
                    return Err(LedgerError::InsufficientFunds);
                }
                let quote_available = quote.available.checked_add(rebate)?;
                let base_available = self.slot(s.user, s.base)?.available.checked_add(s.base_amount)?;
                let fees = self.fees[q].checked_add(s.fee)?;
                let quote = self.slot(s.user, s.quote)?;
                quote.reserved.0 -= pays.0;
                quote.available = quote_available;
                self.slot(s.user, s.base)?.available = base_available;
                self.fees[q] = fees;
                self.clearing[q] += i128::from(s.quote_amount.0);
                self.clearing[b] -= i128::from(s.base_amount.0);
            }
            Side::Sell => {
                let gets = s.quote_amount.checked_sub(s.fee)?;
                if gets.0 < 0 {
                    return Err(LedgerError::InsufficientFunds);
                }
                if self.slot(s.user, s.base)?.reserved < s.base_amount {
                    return Err(LedgerError::InsufficientFunds);
                }
                let quote_available = self.slot(s.user, s.quote)?.available.checked_add(gets)?;
                let fees = self.fees[q].checked_add(s.fee)?;
                self.slot(s.user, s.base)?.reserved.0 -= s.base_amount.0;
                self.slot(s.user, s.quote)?.available = quote_available;
                self.fees[q] = fees;
                self.clearing[b] += i128::from(s.base_amount.0);
                self.clearing[q] -= i128::from(s.quote_amount.0);
            }
        }
        Ok(())
    }

    /// Per asset, what this ledger is owed by (positive) or owes (negative) the ledgers that
    /// settled the other sides of its fills.
    pub fn clearing(&self) -> &[i128] {
        &self.clearing
    }

    /// Sum over every account, the fee account and the clearing column, per asset.
    pub fn totals(&self) -> Vec<i128> {
        let mut t: Vec<i128> = self.fees.iter().map(|a| i128::from(a.0)).collect();
        for (i, c) in self.clearing.iter().enumerate() {
            t[i] += c;
        }
        for acc in self.accounts.values() {
            for (i, b) in acc.iter().enumerate() {
                t[i] += i128::from(b.available.0) + i128::from(b.reserved.0);
            }
        }
        t
    }

    /// Deposits minus withdrawals per asset.
    pub fn net_flows(&self) -> &[i128] {
        &self.net_flows
    }

    /// Every asset's total equals its deposits minus withdrawals, and no balance is negative.
    pub fn check_conservation(&self) -> Result<(), String> {
        for acc in self.accounts.values() {
            if acc.iter().any(|b| b.available.0 < 0 || b.reserved.0 < 0) {
                return Err("negative balance".into());
            }
        }
        let totals = self.totals();
        for (i, (t, n)) in totals.iter().zip(&self.net_flows).enumerate() {
            if t != n {
                return Err(format!("asset {i}: total {t} != deposits - withdrawals {n}"));
            }
        }
        Ok(())
    }

    /// Accounts sorted by user, for deterministic snapshots.
    pub fn sorted_accounts(&self) -> Vec<(UserId, Vec<Balance>)> {
        let mut v: Vec<_> = self.accounts.iter().map(|(u, b)| (*u, b.clone())).collect();
        v.sort_by_key(|(u, _)| *u);
        v
    }

    /// Rebuilds a ledger from snapshot parts (of a ledger that settles both sides of its
    /// fills, so its clearing column is zero).
    pub fn from_parts(accounts: Vec<(UserId, Vec<Balance>)>, fees: Vec<Amount>, net_flows: Vec<i128>) -> Self {
        let clearing = vec![0; fees.len()];
        Ledger { assets: fees.len() as u16, accounts: accounts.into_iter().collect(), fees, net_flows, clearing }
    }

    pub fn fees(&self) -> &[Amount] {
        &self.fees
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: AssetId = AssetId(0);
    const BTC: AssetId = AssetId(1);

    #[test]
    fn settlement_moves_money_and_conserves() {
        let mut l = Ledger::new(2);
        let (a, b) = (UserId(1), UserId(2));
        l.open_account(a);
        l.open_account(b);
        l.deposit(a, USD, Amount(10_000)).unwrap();
        l.deposit(b, BTC, Amount(50)).unwrap();
        l.reserve(a, USD, Amount(1_010)).unwrap();
        l.reserve(b, BTC, Amount(10)).unwrap();
        l.settle(&Settlement {
            buyer: a,
            seller: b,
            base: BTC,
            quote: USD,
            base_amount: Amount(10),
            quote_amount: Amount(1_000),
            buyer_fee: Amount(5),
            seller_fee: Amount(-1),
        })
        .unwrap();
        assert_eq!(l.balance(a, USD), Some(Balance { available: Amount(8_990), reserved: Amount(5) }));
        assert_eq!(l.balance(a, BTC).unwrap().available, Amount(10));
        assert_eq!(l.balance(b, USD).unwrap().available, Amount(1_001));
        assert_eq!(l.fee_balance(USD), Amount(4));
        l.check_conservation().unwrap();
    }

    #[test]
    fn both_sides_settled_apart_equal_one_settlement_and_clearing_sums_to_zero() {
        use crate::order::Side;
        let (a, b) = (UserId(1), UserId(2));
        let fund = |l: &mut Ledger| {
            l.open_account(a);
            l.open_account(b);
            l.deposit(a, USD, Amount(10_000)).unwrap();
            l.deposit(b, BTC, Amount(50)).unwrap();
            l.reserve(a, USD, Amount(1_010)).unwrap();
            l.reserve(b, BTC, Amount(10)).unwrap();
        };
        let (mut whole, mut shard_a, mut shard_b) = (Ledger::new(2), Ledger::new(2), Ledger::new(2));
        fund(&mut whole);
        // Each shard holds one user; the other user's account exists but stays untouched.
        fund(&mut shard_a);
        fund(&mut shard_b);
        whole
            .settle(&Settlement {
                buyer: a,
                seller: b,
                base: BTC,
                quote: USD,
                base_amount: Amount(10),
                quote_amount: Amount(1_000),
                buyer_fee: Amount(5),
                seller_fee: Amount(-1),
            })
            .unwrap();
        let side = |user, side, fee| SideSettlement {
            user,
            side,
            base: BTC,
            quote: USD,
            base_amount: Amount(10),
            quote_amount: Amount(1_000),
            fee: Amount(fee),
        };
        shard_a.settle_side(&side(a, Side::Buy, 5)).unwrap();
        shard_b.settle_side(&side(b, Side::Sell, -1)).unwrap();
        assert_eq!(shard_a.balances(a), whole.balances(a));
        assert_eq!(shard_b.balances(b), whole.balances(b));
        assert_eq!(shard_a.fee_balance(USD).0 + shard_b.fee_balance(USD).0, whole.fee_balance(USD).0);
        for l in [&shard_a, &shard_b] {
            l.check_conservation().unwrap();
        }
        for asset in 0..2 {
            assert_eq!(shard_a.clearing()[asset] + shard_b.clearing()[asset], 0);
        }
        assert_eq!(whole.clearing(), &[0, 0]);
        // A side the reservation does not cover changes nothing.
        let before = shard_a.clone();
        assert_eq!(shard_a.settle_side(&side(a, Side::Buy, 5)), Err(LedgerError::InsufficientFunds));
        assert_eq!(shard_a, before);
    }

    #[test]
    fn failures_change_nothing() {
        let mut l = Ledger::new(2);
        l.open_account(UserId(1));
        assert_eq!(l.reserve(UserId(1), USD, Amount(1)), Err(LedgerError::InsufficientFunds));
        assert_eq!(l.withdraw(UserId(1), USD, Amount(1)), Err(LedgerError::InsufficientFunds));
        assert_eq!(l.deposit(UserId(1), USD, Amount(0)), Err(LedgerError::NonPositive));
        assert_eq!(l.deposit(UserId(2), USD, Amount(1)), Err(LedgerError::UnknownAccount));
        l.deposit(UserId(1), USD, Amount(i64::MAX)).unwrap();
        assert_eq!(l.deposit(UserId(1), USD, Amount(1)), Err(LedgerError::Overflow));
        l.check_conservation().unwrap();
    }
}
