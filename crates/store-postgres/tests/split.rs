//! The read model of the split engine: the journals of two risk shards (by user) and a
//! matching shard, each projected as a source of its own, give the same rows as the whole
//! exchange's journal projected as one source (against a real PostgreSQL, `DATABASE_URL`
//! from `scripts/servers/with-servers postgres -- …`; SKIPPED without it unless
//! `QT_REQUIRE_SERVERS=1`).
//!
//! What differs by construction is left out of the comparison: the `cmd_seq` of a row (a
//! sequence number within its source) and the projector's high-water marks.

use qt_core::UserId;
use qt_engine::shard::{Cluster, Journaled, MatchInput, RiskInput};
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig, EventEnvelope, Exchange};
use qt_store_postgres::{PgConfig, PgStore, Projected};
use qt_testkit::workload::{Workload, WorkloadSpec};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

async fn store(url: &str) -> PgStore {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let schema = format!("s{}_{nanos}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let config = PgConfig { schema: Some(schema), max_connections: 4, ..PgConfig::with_url(url.to_string()) };
    let s = PgStore::connect(&config).unwrap();
    s.migrate().await.unwrap();
    s
}

/// The read model's rows as JSON text, without the columns that depend on the source.
async fn rows(s: &PgStore) -> Vec<String> {
    let c = s.pool().get().await.unwrap();
    let mut out = Vec::new();
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
    ] {
        let sql = format!(
            "SELECT (to_jsonb(t) - 'cmd_seq' - 'updated_at')::TEXT FROM (SELECT * FROM {table} ORDER BY {order}) t"
        );
        for r in c.query(&sql, &[]).await.unwrap() {
            out.push(format!("{table} {}", without_cmd_seq(&r.get::<_, String>(0))));
        }
    }
    out
}

/// `text` with the number after every `cmd_seq` key blanked (a stored answer's body holds
/// the order row as JSON text, `cmd_seq` included).
fn without_cmd_seq(text: &str) -> String {
    const KEY: &str = "cmd_seq";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        rest = &rest[at + KEY.len()..];
        let digits_at = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let prefix = &rest[..digits_at];
        // Only `":` and escapes between the key and its number.
        if prefix.chars().all(|c| matches!(c, '"' | '\\' | ':' | ' ')) {
            out.push_str(prefix);
            out.push('_');
            rest = rest[digits_at..].trim_start_matches(|c: char| c.is_ascii_digit());
        }
    }
    out.push_str(rest);
    out
}

/// The workload with an idempotency key on every fifth place, so stored answers are
/// compared too.
fn commands() -> Vec<CommandEnvelope> {
    let spec = WorkloadSpec { symbols: 2, users: 40, orders_per_book: 60, ops: 1_500, seed: 11 };
    let w = Workload::generate(&spec);
    let mut cmds: Vec<CommandEnvelope> = w.setup.into_iter().chain(w.ops).collect();
    let mut n = 0;
    for env in &mut cmds {
        if let Command::Place(o) = &env.cmd {
            n += 1;
            if n % 5 == 0 {
                env.meta = Some(Box::new(CommandMeta {
                    idempotency_key: Some(format!("key-{}", o.order_id.0)),
                    request_hash: Some(format!("hash-{}", o.order_id.0)),
                    ..CommandMeta::default()
                }));
            }
        }
    }
    cmds
}

/// One journaled input of a shard as the projector takes it.
struct Item {
    source: String,
    seq: u64,
    ts: i64,
    command: Option<(Command, Option<CommandMeta>)>,
    events: Vec<EventEnvelope>,
}

#[tokio::test]
async fn split_journals_project_to_the_whole_exchanges_read_model() {
    let Some([url]) = qt_testkit::servers::server_urls("split_projection", ["DATABASE_URL"]) else { return };
    let cmds = commands();

    // The whole exchange, one source.
    let whole = store(&url).await;
    let mut ex = Exchange::new(EngineConfig::default());
    let applied: Vec<(CommandEnvelope, Vec<EventEnvelope>)> = cmds
        .iter()
        .map(|c| {
            let mut out = Vec::new();
            ex.apply(c, &mut out);
            (c.clone(), out)
        })
        .collect();
    let mut projector = whole.projector();
    for chunk in applied.chunks(64) {
        let items: Vec<Projected<'_>> = chunk.iter().map(|(c, e)| Projected::of(c, e)).collect();
        projector.project("whole", &items).await.unwrap();
    }

    // The split engine in lock step: two risk shards, one matching shard (so trade ids, and
    // the execution ids made from them, are the whole exchange's).
    let mut cluster = Cluster::new(EngineConfig::default(), 2, 1).recording();
    for c in &cmds {
        cluster.submit(c);
        cluster.drain();
    }
    cluster.check_invariants().unwrap();
    let mut events: HashMap<(String, u64), Vec<EventEnvelope>> = HashMap::new();
    for (shard, e) in &cluster.events {
        let source = match shard {
            qt_engine::shard::Input::Risk(k) => format!("risk-{k}"),
            qt_engine::shard::Input::Matching(m) => format!("matching-{m}"),
        };
        events.entry((source, e.cmd_seq)).or_default().push(e.clone());
    }
    let journal = cluster.journal.take().unwrap();
    let items: Vec<Item> = journal
        .iter()
        .map(|j| {
            let (source, seq, ts, command) = match j {
                Journaled::Risk(k, input) => {
                    let command = match &input.input {
                        RiskInput::Command { cmd, meta } => Some((cmd.clone(), meta.as_deref().cloned())),
                        RiskInput::Report(_) | RiskInput::Market(_) => None,
                    };
                    (format!("risk-{k}"), input.seq, input.ts, command)
                }
                Journaled::Matching(m, input) => {
                    let command = match &input.input {
                        MatchInput::Command(cmd) => Some((cmd.clone(), None)),
                        MatchInput::Request(r) => {
                            let (cmd, meta) = r.command();
                            Some((cmd, meta.cloned()))
                        }
                    };
                    (format!("matching-{m}"), input.seq, input.ts, command)
                }
            };
            let events = events.remove(&(source.clone(), seq)).unwrap_or_default();
            Item { source, seq, ts, command, events }
        })
        .collect();
    assert!(events.is_empty(), "every event belongs to a journaled input");

    // Each source projected in its own order, in batches, the sources interleaved.
    let split = store(&url).await;
    let mut projector = split.projector();
    let mut by_source: Vec<(String, Vec<&Item>)> = Vec::new();
    for item in &items {
        match by_source.iter_mut().find(|(s, _)| *s == item.source) {
            Some((_, v)) => v.push(item),
            None => by_source.push((item.source.clone(), vec![item])),
        }
    }
    let longest = by_source.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    for start in (0..longest).step_by(64) {
        for (source, v) in &by_source {
            let chunk = &v[start.min(v.len())..(start + 64).min(v.len())];
            let batch: Vec<Projected<'_>> = chunk
                .iter()
                .map(|i| Projected {
                    seq: i.seq,
                    ts: i.ts,
                    command: i.command.as_ref().map(|(c, m)| (c, m.as_ref())),
                    events: &i.events,
                })
                .collect();
            projector.project(source, &batch).await.unwrap();
        }
    }

    let (expected, got) = (rows(&whole).await, rows(&split).await);
    assert!(expected.iter().any(|r| r.starts_with("executions ")), "the workload trades");
    assert!(expected.iter().any(|r| r.starts_with("idempotency ")), "the workload stores answers");
    for (e, g) in expected.iter().zip(&got) {
        if g != e {
            let at = e.chars().zip(g.chars()).take_while(|(a, b)| a == b).count();
            let (from, to) = (at.saturating_sub(80), (at + 80).min(e.len()).min(g.len()));
            panic!("rows differ at {at}:\n expected …{}…\n      got …{}…", &e[from..to], &g[from..to]);
        }
    }
    assert_eq!(got.len(), expected.len());
    // Users' balances come from their own risk shard only.
    let balances = split.reader().balances(UserId(1)).await.unwrap();
    assert!(!balances.is_empty());
}
