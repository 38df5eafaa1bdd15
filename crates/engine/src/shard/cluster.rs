//! An in-memory cluster of risk and matching shards joined by FIFO queues: the pipeline of
//! the distributed mode without Kafka, for tests and for reasoning about interleavings.
//!
//! Contract:
//! - [`Cluster::submit`] routes a client command the way the intake does: reference data
//!   and the global kill switch to every shard that needs it, everything else to the risk
//!   shard of its user.
//! - Each shard has one inbox; messages between a given sender and receiver keep their
//!   order (as on one Kafka partition). [`Cluster::step`] applies the head of one inbox,
//!   [`Cluster::drain`] applies everything until all inboxes are empty.
//! - Each shard numbers its inputs itself, in the order it applies them, and every message
//!   carries the time of the client command it descends from.

use super::{
    matching_shard_of, risk_shard_of, MatchInput, MatchOutput, MatchingShard, RiskInput, RiskOutput, RiskShard,
    Sequenced,
};
use crate::command::{Command, CommandEnvelope};
use crate::event::EventEnvelope;
use crate::exchange::EngineConfig;
use std::collections::VecDeque;

/// Which inbox: risk shard `k` or matching shard `m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Input {
    Risk(usize),
    Matching(usize),
}

/// One input a shard applied: which shard, and the input as it would be journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Journaled {
    Risk(usize, Sequenced<RiskInput>),
    Matching(usize, Sequenced<MatchInput>),
}

#[derive(Debug)]
pub struct Cluster {
    pub risk: Vec<RiskShard>,
    pub matching: Vec<MatchingShard>,
    risk_inbox: Vec<VecDeque<(i64, RiskInput)>>,
    matching_inbox: Vec<VecDeque<(i64, MatchInput)>>,
    risk_seq: Vec<u64>,
    matching_seq: Vec<u64>,
    /// Every event, tagged with the shard that emitted it, in the order they were emitted.
    pub events: Vec<(Input, EventEnvelope)>,
    /// Every input each shard applied, in order (the journal a node writes), when built
    /// [`Cluster::recording`].
    pub journal: Option<Vec<Journaled>>,
    risk_out: RiskOutput,
    match_out: MatchOutput,
}

impl Cluster {
    pub fn new(config: EngineConfig, risk_shards: u32, matching_shards: u32) -> Self {
        let (r, m) = (risk_shards.max(1), matching_shards.max(1));
        Cluster {
            risk: (0..r).map(|_| RiskShard::new(config.clone())).collect(),
            matching: (0..m).map(|k| MatchingShard::new(k, m)).collect(),
            risk_inbox: vec![VecDeque::new(); r as usize],
            matching_inbox: vec![VecDeque::new(); m as usize],
            risk_seq: vec![0; r as usize],
            matching_seq: vec![0; m as usize],
            events: Vec::new(),
            journal: None,
            risk_out: RiskOutput::default(),
            match_out: MatchOutput::default(),
        }
    }

    /// Keeps every input applied in [`Cluster::journal`].
    pub fn recording(mut self) -> Self {
        self.journal = Some(Vec::new());
        self
    }

    fn risk_of(&self, user: qt_core::UserId) -> usize {
        risk_shard_of(user, self.risk.len() as u32) as usize
    }

    /// Routes a client command to the shards that apply it.
    pub fn submit(&mut self, env: &CommandEnvelope) {
        let ts = env.ts;
        let cmd = &env.cmd;
        let to_all_risk = |c: &mut Cluster| {
            for inbox in &mut c.risk_inbox {
                inbox.push_back((ts, RiskInput::Command { cmd: cmd.clone(), meta: env.meta.clone() }));
            }
        };
        match cmd {
            Command::AddAsset { .. } | Command::AddSymbol(_) => {
                to_all_risk(self);
                for inbox in &mut self.matching_inbox {
                    inbox.push_back((ts, MatchInput::Command(cmd.clone())));
                }
            }
            Command::SetKillSwitch { user: None, .. } => to_all_risk(self),
            Command::CreateUser { user, .. }
            | Command::Deposit { user, .. }
            | Command::Withdraw { user, .. }
            | Command::Cancel { user, .. }
            | Command::Amend { user, .. }
            | Command::MassCancel { user, .. }
            | Command::SetLimits { user, .. }
            | Command::SetKillSwitch { user: Some(user), .. } => {
                let k = self.risk_of(*user);
                self.risk_inbox[k].push_back((ts, RiskInput::Command { cmd: cmd.clone(), meta: env.meta.clone() }));
            }
            Command::Place(order) => {
                let k = self.risk_of(order.user);
                self.risk_inbox[k].push_back((ts, RiskInput::Command { cmd: cmd.clone(), meta: env.meta.clone() }));
            }
        }
    }

    /// The inboxes that have something to apply, in a fixed order.
    pub fn ready(&self) -> Vec<Input> {
        let risk = self.risk_inbox.iter().enumerate().filter(|(_, q)| !q.is_empty()).map(|(k, _)| Input::Risk(k));
        let matching =
            self.matching_inbox.iter().enumerate().filter(|(_, q)| !q.is_empty()).map(|(m, _)| Input::Matching(m));
        risk.chain(matching).collect()
    }

    /// Applies the head of one inbox and queues what it produced; false when it was empty.
    pub fn step(&mut self, which: Input) -> bool {
        match which {
            Input::Risk(k) => {
                let Some((ts, input)) = self.risk_inbox[k].pop_front() else { return false };
                self.risk_seq[k] += 1;
                let mut out = std::mem::take(&mut self.risk_out);
                out.clear();
                let input = Sequenced { seq: self.risk_seq[k], ts, input };
                self.risk[k].apply(&input, &mut out);
                if let Some(journal) = &mut self.journal {
                    journal.push(Journaled::Risk(k, input));
                }
                let shards = self.matching.len() as u32;
                for request in out.requests.drain(..) {
                    let m = matching_shard_of(request.symbol(), shards) as usize;
                    self.matching_inbox[m].push_back((ts, MatchInput::Request(request)));
                }
                self.events.extend(out.events.drain(..).map(|e| (which, e)));
                self.risk_out = out;
            }
            Input::Matching(m) => {
                let Some((ts, input)) = self.matching_inbox[m].pop_front() else { return false };
                self.matching_seq[m] += 1;
                let mut out = std::mem::take(&mut self.match_out);
                out.clear();
                let input = Sequenced { seq: self.matching_seq[m], ts, input };
                self.matching[m].apply(&input, &mut out);
                if let Some(journal) = &mut self.journal {
                    journal.push(Journaled::Matching(m, input));
                }
                for report in out.reports.drain(..) {
                    let k = self.risk_of(report.user());
                    self.risk_inbox[k].push_back((ts, RiskInput::Report(report)));
                }
                for update in out.market.drain(..) {
                    for inbox in &mut self.risk_inbox {
                        inbox.push_back((ts, RiskInput::Market(update)));
                    }
                }
                self.events.extend(out.events.drain(..).map(|e| (which, e)));
                self.match_out = out;
            }
        }
        true
    }

    /// Applies messages until every inbox is empty: each risk shard's inbox, then each
    /// matching shard's, round after round.
    pub fn drain(&mut self) {
        loop {
            let mut progressed = false;
            for k in 0..self.risk.len() {
                while self.step(Input::Risk(k)) {
                    progressed = true;
                }
            }
            for m in 0..self.matching.len() {
                while self.step(Input::Matching(m)) {
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Messages waiting in all inboxes.
    pub fn pending(&self) -> usize {
        self.risk_inbox.iter().map(VecDeque::len).sum::<usize>()
            + self.matching_inbox.iter().map(VecDeque::len).sum::<usize>()
    }

    /// Every shard's invariants, and, once nothing is in flight, the cluster's: the clearing
    /// columns sum to zero per asset (both sides of every fill are settled), and every open
    /// order is known to both its risk shard and its matching shard.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (k, r) in self.risk.iter().enumerate() {
            r.check_invariants().map_err(|e| format!("risk shard {k}: {e}"))?;
        }
        for (m, s) in self.matching.iter().enumerate() {
            s.check_invariants().map_err(|e| format!("matching shard {m}: {e}"))?;
        }
        if self.pending() > 0 {
            return Ok(());
        }
        let assets = self.risk.first().map_or(0, |r| r.ledger().clearing().len());
        for a in 0..assets {
            let sum: i128 = self.risk.iter().map(|r| r.ledger().clearing().get(a).copied().unwrap_or(0)).sum();
            if sum != 0 {
                return Err(format!("asset {a}: clearing sums to {sum}, not 0, with nothing in flight"));
            }
        }
        let risk_open: usize = self.risk.iter().map(|r| r.orders().count()).sum();
        let matching_open: usize = self.matching.iter().map(|m| m.orders().count()).sum();
        for m in &self.matching {
            for o in m.orders() {
                let k = self.risk_of(o.order.user);
                let Some(r) = self.risk[k].order(o.order.order_id) else {
                    return Err(format!("order {:?} open in matching, unknown to its risk shard", o.order.order_id));
                };
                if o.budget.is_some_and(|b| b != r.reserved) {
                    return Err(format!(
                        "order {:?}: budget {:?} != reserved {:?}",
                        o.order.order_id, o.budget, r.reserved
                    ));
                }
            }
        }
        if risk_open != matching_open {
            return Err(format!("{risk_open} orders open in risk shards, {matching_open} in matching shards"));
        }
        Ok(())
    }
}
