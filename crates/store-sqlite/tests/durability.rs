//! Journal and snapshots on real SQLite files: append, read back, ordering, reopen,
//! pruning, truncation guard, and recovery through the engine's `recover`.

mod common;

use common::{Driver, TempDir};
use qt_core::{Side, UserId};
use qt_engine::ports::{Journal, MemEventSink, SnapshotStore};
use qt_engine::replay::recover;
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig};
use qt_store_sqlite::{Store, StoreError, SNAPSHOTS_KEPT};
use qt_testkit::fixtures::{BTC, BTC_USD, UNIT, USD};

fn envelope(seq: u64) -> CommandEnvelope {
    CommandEnvelope::new(seq, 1_000 + seq as i64, Command::MassCancel { user: UserId(seq), symbol: None })
}

#[test]
fn journal_appends_reads_and_survives_reopen() {
    let dir = TempDir::new("journal");
    {
        let store = Store::open(dir.path()).unwrap();
        let mut j = store.journal().unwrap();
        assert_eq!(j.last_seq().unwrap(), 0);
        assert!(j.read_from(1, 10).unwrap().is_empty());
        j.append(&[]).unwrap();
        let mut with_meta = envelope(1);
        with_meta.meta = Some(Box::new(CommandMeta {
            idempotency_key: Some("k".into()),
            user_name: Some("alice".into()),
            ..CommandMeta::default()
        }));
        j.append(&[with_meta.clone(), envelope(2), envelope(3)]).unwrap();
        j.append(&[envelope(5)]).unwrap();
        assert_eq!(j.last_seq().unwrap(), 5);
        let all = j.read_from(1, 100).unwrap();
        assert_eq!(all, vec![with_meta, envelope(2), envelope(3), envelope(5)]);
        assert_eq!(j.read_from(3, 100).unwrap(), vec![envelope(3), envelope(5)]);
        assert_eq!(j.read_from(4, 100).unwrap(), vec![envelope(5)]);
        assert_eq!(j.read_from(1, 2).unwrap().len(), 2);
        assert!(j.read_from(6, 100).unwrap().is_empty());
    }
    let store = Store::open(dir.path()).unwrap();
    let j = store.journal().unwrap();
    assert_eq!(j.last_seq().unwrap(), 5);
    assert_eq!(j.read_from(0, 100).unwrap().len(), 4);
    assert_eq!(j.first_seq().unwrap(), Some(1));
}

#[test]
fn journal_refuses_out_of_order_batches_whole() {
    let dir = TempDir::new("order");
    let store = Store::open(dir.path()).unwrap();
    let mut j = store.journal().unwrap();
    j.append(&[envelope(1), envelope(2)]).unwrap();
    // Repeats the last sequence number.
    assert!(matches!(j.append(&[envelope(2)]), Err(StoreError::OutOfOrder { last: 2, got: 2 })));
    // Goes back inside the batch: nothing of it may be written.
    assert!(matches!(
        j.append(&[envelope(3), envelope(5), envelope(4)]),
        Err(StoreError::OutOfOrder { last: 5, got: 4 })
    ));
    assert_eq!(j.last_seq().unwrap(), 2);
    assert_eq!(j.read_from(1, 10).unwrap().len(), 2);
    // A second handle sees the same journal and keeps the order too.
    let mut j2 = store.journal().unwrap();
    assert!(j2.append(&[envelope(1)]).is_err());
    j2.append(&[envelope(3)]).unwrap();
    assert_eq!(j.last_seq().unwrap(), 3);
}

/// A small live session to snapshot: a few users, deposits and orders.
fn session() -> Driver {
    let mut d = Driver::new();
    let a = d.user(1, "alice");
    let b = d.user(2, "bob");
    d.cmd(Command::Deposit { user: a, asset: USD, amount: qt_core::Amount(1_000_000 * UNIT) });
    d.cmd(Command::Deposit { user: b, asset: BTC, amount: qt_core::Amount(10 * UNIT) });
    for i in 0..5 {
        let o = d.order(a, BTC_USD, Side::Buy, 3_000_000 - i, 1_000);
        d.place_key(o, None);
    }
    let o = d.order(b, BTC_USD, Side::Sell, 2_999_999, 2_500);
    d.place_key(o, None);
    d
}

#[test]
fn snapshots_keep_the_newest_three_and_survive_reopen() {
    let dir = TempDir::new("snap");
    let mut d = session();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut s = store.snapshots().unwrap();
        assert!(s.latest().unwrap().is_none());
        let mut hashes = Vec::new();
        for i in 0..5u64 {
            d.cmd(Command::Deposit { user: UserId(1), asset: USD, amount: qt_core::Amount(1 + i as i64) });
            let snap = d.ex.snapshot();
            hashes.push(snap.hash().unwrap());
            s.save(&snap).unwrap();
            assert_eq!(s.latest().unwrap().unwrap().hash().unwrap(), *hashes.last().unwrap());
        }
        assert_eq!(s.list().unwrap().len(), SNAPSHOTS_KEPT);
        // Saving the same sequence number again replaces it.
        s.save(&d.ex.snapshot()).unwrap();
        assert_eq!(s.list().unwrap().len(), SNAPSHOTS_KEPT);
    }
    let store = Store::open(dir.path()).unwrap();
    let s = store.snapshots().unwrap();
    let latest = s.latest().unwrap().unwrap();
    assert_eq!(latest.last_cmd_seq, d.seq);
    assert_eq!(latest.hash().unwrap(), d.ex.state_hash());
    let seqs = s.list().unwrap();
    assert_eq!(seqs, vec![d.seq, d.seq - 1, d.seq - 2]);
}

#[test]
fn a_corrupt_snapshot_falls_back_to_an_older_one_the_journal_covers() {
    let dir = TempDir::new("corrupt");
    let d = session();
    let store = Store::open(dir.path()).unwrap();
    let mut j = store.journal().unwrap();
    let cmds: Vec<CommandEnvelope> = d.log.iter().map(|(c, _)| c.clone()).collect();
    j.append(&cmds).unwrap();
    let mut s = store.snapshots().unwrap();
    // An older state, then the current one, whose body we then damage.
    let mut older = Driver::new();
    for (c, _) in d.log.iter().take(8) {
        older.ex.apply(c, &mut Vec::new());
    }
    s.save(&older.ex.snapshot()).unwrap();
    s.save(&d.ex.snapshot()).unwrap();
    let raw = rusqlite::Connection::open(store.path()).unwrap();
    raw.execute("UPDATE snapshots SET body = substr(body, 1, 20) WHERE seq = ?1", [d.seq as i64]).unwrap();
    let latest = s.latest().unwrap().unwrap();
    assert_eq!(latest.last_cmd_seq, 8);
    // Recovery from the fallback plus the journal still reaches the live state.
    let (ex, report) = recover(EngineConfig::default(), &j, &s, &mut MemEventSink::default()).unwrap();
    assert_eq!(report.snapshot_seq, Some(8));
    assert_eq!(ex.state_hash(), d.ex.state_hash());
    // Once the journal no longer covers the older snapshot, refusing beats replaying a gap.
    raw.execute("DELETE FROM journal WHERE seq <= 9", []).unwrap();
    assert!(s.latest().is_err());
}

#[test]
fn recovery_from_snapshot_and_journal_reaches_the_live_state() {
    let dir = TempDir::new("recover");
    let d = session();
    let store = Store::open(dir.path()).unwrap();
    let mut j = store.journal().unwrap();
    let mut s = store.snapshots().unwrap();
    let mut mirror = Driver::new();
    // Journal in batches of 4 and snapshot halfway, as the runtime would.
    let cmds: Vec<CommandEnvelope> = d.log.iter().skip(mirror.log.len()).map(|(c, _)| c.clone()).collect();
    j.append(&d.log.iter().take(mirror.log.len()).map(|(c, _)| c.clone()).collect::<Vec<_>>()).unwrap();
    for (i, chunk) in cmds.chunks(4).enumerate() {
        j.append(chunk).unwrap();
        for c in chunk {
            mirror.ex.apply(c, &mut Vec::new());
        }
        if i == 1 {
            s.save(&mirror.ex.snapshot()).unwrap();
        }
    }
    drop((j, s));
    let store = Store::open(dir.path()).unwrap();
    let (j, s) = (store.journal().unwrap(), store.snapshots().unwrap());
    let mut sink = MemEventSink::default();
    let (ex, report) = recover(EngineConfig::default(), &j, &s, &mut sink).unwrap();
    assert_eq!(ex.state_hash(), d.ex.state_hash());
    assert_eq!(report.last_cmd_seq, d.seq);
    assert!(report.snapshot_seq.is_some());
    assert!(report.replayed_commands > 0 && report.replayed_commands < d.seq);
}

#[test]
fn truncation_is_guarded_by_the_latest_snapshot_and_keeps_the_last_command() {
    let dir = TempDir::new("truncate");
    let store = Store::open(dir.path()).unwrap();
    let mut j = store.journal().unwrap();
    j.append(&(1..=10).map(envelope).collect::<Vec<_>>()).unwrap();
    assert!(matches!(j.truncate_before(5), Err(StoreError::TruncateBeyondSnapshot { requested: 5, snapshot: 0 })));
    let mut d = Driver::new();
    // A snapshot claiming commands up to 10: make the engine's last seq 10.
    while d.seq < 10 {
        d.cmd(Command::MassCancel { user: UserId(99), symbol: None });
    }
    store.snapshots().unwrap().save(&d.ex.snapshot()).unwrap();
    assert_eq!(j.truncate_before(5).unwrap(), 4);
    assert_eq!(j.first_seq().unwrap(), Some(5));
    // Asking for everything still keeps the last command, so last_seq never goes back.
    assert_eq!(j.truncate_before(11).unwrap(), 5);
    assert_eq!(j.last_seq().unwrap(), 10);
    assert_eq!(j.read_from(0, 100).unwrap(), vec![envelope(10)]);
    assert!(j.truncate_before(12).is_err());
}

#[test]
fn open_refuses_a_schema_from_the_future() {
    let dir = TempDir::new("future");
    let store = Store::open(dir.path()).unwrap();
    let raw = rusqlite::Connection::open(store.path()).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    assert!(matches!(Store::open(dir.path()), Err(StoreError::SchemaTooNew { found: 99, .. })));
}

#[test]
fn open_creates_missing_directories_in_wal_mode() {
    let dir = TempDir::new("mkdir");
    let nested = dir.path().join("a/b/c");
    let store = Store::open(&nested).unwrap();
    assert!(store.path().exists());
    let raw = rusqlite::Connection::open(store.path()).unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let page: i64 = raw.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!(page, 1024);
    // Opening again is a no-op migration.
    Store::open(&nested).unwrap();
}

#[test]
fn the_background_checkpointer_moves_the_wal_into_the_database() {
    let dir = TempDir::new("checkpoint");
    let store = Store::open(dir.path()).unwrap();
    let db_len = || std::fs::metadata(store.path()).unwrap().len();
    let before = db_len();
    let mut j = store.journal().unwrap();
    // About 2 MB of journal: far below SQLite's own autocheckpoint threshold, which is
    // off on writer connections anyway; only the checkpointer can move it.
    let big: Vec<CommandEnvelope> = (1..=4_000)
        .map(|seq| {
            let mut c = envelope(seq);
            c.meta = Some(Box::new(CommandMeta { request_id: Some("x".repeat(400)), ..CommandMeta::default() }));
            c
        })
        .collect();
    j.append(&big).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db_len() < before + 1_000_000 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint within 10 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(j.read_from(1, 10_000).unwrap(), big);
}

#[test]
fn handles_can_move_between_threads() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    fn movable<T: Send + 'static>() {}
    shared::<Store>();
    shared::<qt_store_sqlite::Reader>();
    movable::<qt_store_sqlite::SqliteJournal>();
    movable::<qt_store_sqlite::SqliteSnapshots>();
    movable::<qt_store_sqlite::Projector>();
    // Handles outlive the Store value they came from.
    let dir = TempDir::new("handles");
    let reader = Store::open(dir.path()).unwrap().reader().unwrap();
    assert!(reader.symbols().unwrap().is_empty());
}

/// Under sustained appends a passive checkpoint always finishes behind new frames, so the
/// WAL was never reset and grew without bound; past the bound the checkpointer restarts it.
#[test]
fn wal_stays_bounded_under_sustained_appends() {
    let dir = TempDir::new("walbound");
    let store = Store::open_with_wal_bound(dir.path(), 512 * 1024).unwrap();
    let mut j = store.journal().unwrap();
    let wal = dir.path().join("quanttrader.db-wal");
    let padded = |seq: u64| {
        let mut env = envelope(seq);
        env.meta = Some(Box::new(CommandMeta { user_name: Some("x".repeat(900)), ..CommandMeta::default() }));
        env
    };
    let (mut seq, mut largest) = (0u64, 0u64);
    // About 96 MiB of commands, a commit (and an fsync) per 64 of them.
    while seq < 96 * 1024 {
        let batch: Vec<_> = (seq + 1..=seq + 64).map(padded).collect();
        seq += 64;
        j.append(&batch).unwrap();
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    assert_eq!(j.last_seq().unwrap(), seq);
    assert!(largest < 24 * 1024 * 1024, "the WAL reached {largest} bytes");
}
