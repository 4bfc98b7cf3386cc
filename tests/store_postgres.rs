//! The store test suite (`tests/store_suite`) on PostgreSQL, plus what only PostgreSQL has:
//! migrations under concurrent opens, uncompressed event storage, reconnecting, several
//! writers at once, and the `sessions` commands on a `postgres://` URL.
//!
//! Needs a server: `UNDERSTUDY_TEST_POSTGRES` (see `scripts/test-postgres`); each test
//! gets a schema of its own.

#[macro_use]
mod store_suite;
mod pg;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pg::TestDb;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use store_suite::{batch, vis, Place};
use understudy::event::Batch;
use understudy::store::{
    self, DbSpec, EncodedBatch, PostgresStore, PutOutcome, SessionStore, StoreError,
};

const T: i64 = 1_733_300_000_000;

fn postgres() -> Place {
    let db = TestDb::new();
    Place {
        spec: DbSpec::Postgres(db.url.clone()),
        keep: Box::new(db),
    }
}

store_suite!(postgres);

fn understudy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the understudy binary")
}

#[test]
fn concurrent_opens_apply_each_migration_once() {
    let db = TestDb::new();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || PostgresStore::open(&url).map(drop))
        })
        .collect();
    for t in threads {
        t.join().unwrap().expect("every concurrent open succeeds");
    }
    let versions = db.query("SELECT version::text FROM schema_version ORDER BY version");
    assert_eq!(versions, [Some("1".to_string()), Some("2".to_string())]);
}

#[test]
fn refuses_a_newer_schema() {
    let db = TestDb::new();
    drop(PostgresStore::open(&db.url).unwrap());
    db.query("INSERT INTO schema_version (version) VALUES (99)");
    let err = PostgresStore::open(&db.url).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 99,
                supported: 2
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade understudy"), "{err}");
}

#[test]
fn events_are_kept_as_plain_uncompressed_json() {
    let db = TestDb::new();
    let mut store = PostgresStore::open(&db.url).unwrap();
    // Very compressible, and far over the 2 kB at which PostgreSQL would compress.
    let text = "CANARY-7f3a ".repeat(20_000);
    let b = batch(
        "s1",
        "p1",
        0,
        &format!(r#"[{{"k":"custom","t":1000,"name":"note","data":{{"text":"{text}"}}}}]"#),
    );
    store.put_batch(&b, 0).unwrap();
    let row = db.query(
        "SELECT concat_ws(' ', coalesce(pg_column_compression(events), 'none'),
                          octet_length(events), strpos(events, '\"text\":\"CANARY-7f3a') > 0)
         FROM batches",
    );
    let want = format!(
        "none {} t",
        understudy::event::to_json(&b.events).unwrap().len()
    );
    assert_eq!(row, [Some(want)]);
}

#[test]
fn a_broken_connection_is_replaced_without_failing_a_call() {
    let db = TestDb::new();
    let url = format!("{}&application_name={}", db.url, db.schema);
    let mut store = PostgresStore::open(&url).unwrap();
    store.put_batch(&vis("s1", 0, 1_000), 0).unwrap();
    let backends = format!(
        "SELECT pid FROM pg_stat_activity WHERE application_name = '{}'",
        db.schema
    );
    let killed = db.query(&format!(
        "SELECT pg_terminate_backend(pid)::text FROM ({backends}) b"
    ));
    assert_eq!(killed, [Some("true".to_string())]);
    let until = Instant::now() + Duration::from_secs(10);
    while !db.query(&backends).is_empty() {
        assert!(Instant::now() < until, "the backend did not go away");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The store meets the dead connection, connects again and stores the batch.
    assert_eq!(
        store.put_batch(&vis("s1", 1, 2_000), 0).unwrap(),
        PutOutcome::Stored
    );
    let seqs: Vec<u64> = store
        .session_batches("s1")
        .unwrap()
        .iter()
        .map(|b| b.seq)
        .collect();
    assert_eq!(seqs, [0, 1]);
    assert_eq!(db.query(&backends).len(), 1, "one new connection");
}

#[test]
fn a_batch_the_server_refuses_fails_its_whole_group() {
    let db = TestDb::new();
    let mut store = PostgresStore::open(&db.url).unwrap();
    db.query(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON batches FOR EACH ROW
             WHEN (NEW.session_id = 's-boom') EXECUTE FUNCTION refuse();",
    );
    let group = [vis("s-ok", 0, T), vis("s-boom", 0, T), vis("s-ok2", 0, T)];
    let err = store.put_batches_each(&group, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "session database error: ERROR: refused by the test"
    );
    assert!(store.list_sessions().unwrap().is_empty(), "nothing stored");
    // The connection is fine for the next call.
    assert_eq!(
        store.put_batch(&vis("s-ok", 0, T), 0).unwrap(),
        PutOutcome::Stored
    );
}

#[test]
fn open_errors_say_what_failed_without_the_password() {
    let server = pg::server_url();
    let missing = match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/understudy_no_such_db"),
        None => panic!("{server} has no database part"),
    };
    let Err(err) = store::open(&missing.parse().unwrap()) else {
        panic!("opened a database that does not exist");
    };
    let text = err.to_string();
    assert!(matches!(err, StoreError::PostgresOpen { .. }), "{text}");
    assert!(
        text.starts_with("cannot open session database postgres"),
        "{text}"
    );
    assert!(
        text.contains("understudy_no_such_db\" does not exist"),
        "{text}"
    );

    let out = understudy(&[
        "sessions",
        "list",
        "--db",
        "postgres://ann:s3cret@127.0.0.1:1/db?connect_timeout=5",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot open session database postgres://ann:***@127.0.0.1:1/db"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let out = understudy(&["sessions", "list", "--db", "postgres://[::1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid PostgreSQL URL"), "{stderr}");
}

/// Sessions `s-0` … with `seqs` one-event batches each, in session order.
fn visibility_batches(sessions: u64, seqs: u64) -> Vec<Batch> {
    (0..sessions)
        .flat_map(|s| (0..seqs).map(move |q| vis(&format!("s-{s}"), q, 1_000 + q as i64)))
        .collect()
}

/// Four connections store overlapping groups at once (the same sessions, in different
/// orders, with copies of each other's batches): nothing fails, waits forever, is lost or
/// is stored twice.
#[test]
fn concurrent_writers_lose_and_duplicate_nothing() {
    let db = TestDb::new();
    drop(PostgresStore::open(&db.url).unwrap());
    const SESSIONS: u64 = 40;
    const SEQS: u64 = 25;
    let all = visibility_batches(SESSIONS, SEQS);
    let started = Instant::now();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let url = db.url.clone();
            let mut mine = all.clone();
            // Each writer its own random order, so that one transaction touches many
            // sessions in an order another transaction reverses.
            mine.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(w));
            std::thread::spawn(move || {
                let mut store = PostgresStore::open(&url).unwrap();
                let mut stored = 0;
                for group in mine.chunks(64) {
                    for outcome in store.put_batches_each(group, 0).unwrap() {
                        stored += usize::from(outcome == PutOutcome::Stored);
                    }
                }
                stored
            })
        })
        .collect();
    let stored: usize = writers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        stored,
        all.len(),
        "each batch is stored by exactly one writer"
    );
    let store = PostgresStore::open(&db.url).unwrap();
    let list = store.list_sessions().unwrap();
    assert_eq!(list.len() as u64, SESSIONS);
    for s in &list {
        assert_eq!((s.batches, s.events, s.pages), (SEQS, SEQS, 1), "{}", s.id);
        let seqs: Vec<u64> = store
            .session_batches(&s.id)
            .unwrap()
            .iter()
            .map(|b| b.seq)
            .collect();
        assert_eq!(seqs, (0..SEQS).collect::<Vec<_>>());
    }
}

/// Four connections, each putting every batch of the same new sessions for a project of
/// its own, at once: each session is claimed by exactly one project, all its batches are
/// stored once, by that project's writer, and the other projects' copies are refused.
#[test]
fn concurrent_projects_claim_each_session_once() {
    let db = TestDb::new();
    drop(PostgresStore::open(&db.url).unwrap());
    const SESSIONS: u64 = 30;
    const SEQS: u64 = 10;
    let all = visibility_batches(SESSIONS, SEQS);
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let url = db.url.clone();
            let mut mine = all.clone();
            mine.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(w));
            std::thread::spawn(move || {
                let project = format!("p{w}");
                let mut store = PostgresStore::open(&url).unwrap();
                // sid → (stored, foreign) by this writer.
                let mut tally = std::collections::BTreeMap::<String, (u64, u64)>::new();
                for group in mine.chunks(16) {
                    let encoded: Vec<EncodedBatch> = group
                        .iter()
                        .map(|b| EncodedBatch::of(b).unwrap().for_project(&project))
                        .collect();
                    for (b, outcome) in group.iter().zip(store.put_encoded(&encoded, 0).unwrap()) {
                        let t = tally.entry(b.sid.clone()).or_default();
                        match outcome {
                            PutOutcome::Stored => t.0 += 1,
                            PutOutcome::Foreign => t.1 += 1,
                            PutOutcome::Duplicate => {}
                        }
                    }
                }
                (project, tally)
            })
        })
        .collect();
    let tallies: Vec<_> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    let store = PostgresStore::open(&db.url).unwrap();
    assert_eq!(store.list_sessions().unwrap().len() as u64, SESSIONS);
    for s in 0..SESSIONS {
        let sid = format!("s-{s}");
        let owner = store.session_project(&sid).unwrap().expect("claimed");
        for (project, tally) in &tallies {
            let (stored, foreign) = tally[&sid];
            if *project == owner {
                assert_eq!((stored, foreign), (SEQS, 0), "{sid}: owner {project}");
            } else {
                assert_eq!((stored, foreign), (0, SEQS), "{sid}: not owner {project}");
            }
        }
        let seqs: Vec<u64> = store
            .session_batches(&sid)
            .unwrap()
            .iter()
            .map(|b| b.seq)
            .collect();
        assert_eq!(seqs, (0..SEQS).collect::<Vec<_>>());
    }
}

#[test]
fn sessions_commands_work_on_a_postgres_url() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.ndjson");
    let lines: Vec<String> = [
        vis("s-b", 1, T + 2_000),
        vis("s-a", 0, T),
        vis("s-b", 0, T + 1_500),
    ]
    .iter()
    .map(|b| serde_json::to_string(b).unwrap())
    .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let file = file.to_str().unwrap();

    let out = understudy(&["sessions", "import", file, "--db", &db.url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 3, skipped 0 duplicates"));
    let out = understudy(&["sessions", "import", file, "--db", &db.url]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 0, skipped 3 duplicates"));

    let out = understudy(&["sessions", "list", "--db", &db.url, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["s-a", "s-b"]);

    let out = understudy(&["sessions", "export", "s-b", "--db", &db.url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported: Vec<Batch> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        exported,
        [vis("s-b", 0, T + 1_500), vis("s-b", 1, T + 2_000)]
    );

    let out = understudy(&["sessions", "export", "nope", "--db", &db.url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session with id `nope`"));
}
