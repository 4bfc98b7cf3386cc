//! `understudy sessions …` as a user runs it: the built binary, real SQLite files in
//! temporary directories, exit codes and messages checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use understudy::event::Batch;
use understudy::store::{SessionStore, SessionSummary, SqliteStore};

const T: i64 = 1_733_300_000_000;

fn understudy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the understudy binary")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn batch_json(sid: &str, pvid: &str, seq: u64, t: i64) -> String {
    format!(
        r#"{{"v":1,"sid":"{sid}","pvid":"{pvid}","seq":{seq},"events":[{{"k":"meta","t":{t},"url":"http://shop.test/{pvid}","load":"navigate","w":390,"h":844,"touch":true}},{{"k":"custom","t":{t1},"name":"identify","data":{{"user":"u-{sid}"}}}},{{"k":"scroll","t":{t2},"x":0,"y":300.5}}]}}"#,
        t1 = t + 10,
        t2 = t + 2_000,
    )
}

fn batch(sid: &str, pvid: &str, seq: u64, t: i64) -> Batch {
    serde_json::from_str(&batch_json(sid, pvid, seq, t)).unwrap()
}

/// A database holding two sessions, the second one's batches stored out of order.
fn seeded_db(dir: &Path) -> PathBuf {
    let db = dir.join("source.db");
    let mut store = SqliteStore::open(&db).unwrap();
    store.put_batch(&batch("s-a", "p1", 0, T), T).unwrap();
    for (seq, pvid) in [(2, "p2"), (0, "p1"), (1, "p1")] {
        store
            .put_batch(&batch("s-b", pvid, seq, T + 60_000 + seq as i64 * 1_000), T)
            .unwrap();
    }
    db
}

fn rows(db: &Path) -> usize {
    let store = SqliteStore::open(db).unwrap();
    store
        .list_sessions()
        .unwrap()
        .iter()
        .map(|s| store.session_batches(&s.id).unwrap().len())
        .sum()
}

#[test]
fn list_shows_a_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_db(dir.path());

    let out = understudy(&["sessions", "list", "--db", path(&db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ID "), "{text}");
    assert!(lines[1].starts_with("s-a  2024-12-04T08:13:20Z"), "{text}");
    assert!(lines[2].contains("2024-12-04T08:14:20Z"), "{text}");
    assert!(
        lines[2].contains("http://shop.test/p1") && lines[2].contains("u-s-b"),
        "{text}"
    );

    let out = understudy(&["sessions", "list", "--db", path(&db), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Vec<SessionSummary> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[1],
        SessionSummary {
            id: "s-b".into(),
            started_at: T + 60_000,
            ended_at: T + 64_000,
            batches: 3,
            events: 9,
            pages: 2,
            first_url: Some("http://shop.test/p1".into()),
            user: Some("u-s-b".into()),
        }
    );
}

#[test]
fn missing_database_and_unknown_session_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let out = understudy(&["sessions", "list", "--db", path(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no session database at"),
        "{}",
        stderr(&out)
    );
    assert!(!missing.exists(), "list must not create a database");

    let db = seeded_db(dir.path());
    let out = understudy(&["sessions", "export", "nope", "--db", path(&db)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no session with id `nope`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn export_then_import_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_db(dir.path());
    let file = dir.path().join("s-b.ndjson");

    let out = understudy(&[
        "sessions",
        "export",
        "s-b",
        "--db",
        path(&db),
        "--out",
        path(&file),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exported 3 batches (9 events) of session s-b"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<Batch>(l).unwrap().seq)
        .collect();
    assert_eq!(seqs, [0, 1, 2], "exported in seq order");

    // Standard output gives the same bytes.
    let out = understudy(&["sessions", "export", "s-b", "--db", path(&db)]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), text);

    let fresh = dir.path().join("fresh.db");
    let out = understudy(&["sessions", "import", path(&file), "--db", path(&fresh)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported 3, skipped 0 duplicates"),
        "{}",
        stdout(&out)
    );

    let source = SqliteStore::open(&db).unwrap();
    let copy = SqliteStore::open(&fresh).unwrap();
    assert_eq!(
        copy.session_batches("s-b").unwrap(),
        source.session_batches("s-b").unwrap()
    );
    assert_eq!(
        copy.list_sessions().unwrap()[0],
        source.list_sessions().unwrap()[1]
    );

    // Importing again changes nothing and says so.
    let out = understudy(&["sessions", "import", path(&file), "--db", path(&fresh)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported 0, skipped 3 duplicates"),
        "{}",
        stdout(&out)
    );
    assert_eq!(rows(&fresh), 3);
}

#[test]
fn bad_import_files_exit_2_and_import_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good0 = batch_json("s-x", "p1", 0, T);
    let good1 = batch_json("s-x", "p1", 1, T + 100);
    let nine_mib = format!("{{\"v\":1,\"sid\":\"{}\"}}", "a".repeat(9 << 20));
    let mut garbage: Vec<u8> = (0..=255u8).rev().cycle().take(64 * 1024).collect();
    garbage.extend_from_slice(b"\n\x00\x01\x02\n");

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed JSON line",
            format!("{good0}\n{{\"v\":1,\n{good1}\n").into_bytes(),
            "line 2: malformed batch: EOF while parsing",
        ),
        (
            "wrong types",
            format!(
                "{good0}\n{}\n",
                good1.replace(r#""seq":1"#, r#""seq":"one""#)
            )
            .into_bytes(),
            "line 2: malformed batch: invalid type: string \"one\", expected u64",
        ),
        (
            "wrong version",
            format!("{good0}\n\n{}\n", good1.replace(r#""v":1"#, r#""v":7"#)).into_bytes(),
            "line 3: invalid batch: unsupported schema version 7",
        ),
        (
            "unknown field",
            format!("{}\n", good0.replace(r#""seq":0"#, r#""seq":0,"x":1"#)).into_bytes(),
            "line 1: malformed batch: unknown field `x`",
        ),
        (
            "implausible timestamp",
            format!(
                "{good0}\n{}\n",
                good1.replace(&format!(r#""t":{}"#, T + 100), r#""t":5"#)
            )
            .into_bytes(),
            "line 2: invalid batch: event 0 (meta) timestamp 5 is outside",
        ),
        (
            "a 9 MiB line",
            format!("{good0}\n{nine_mib}\n{good1}\n").into_bytes(),
            "line 2: longer than 8388608 bytes",
        ),
        (
            "deep nesting",
            format!(
                "{good0}\n{}\n",
                good1.replace(
                    r#"{"user":"u-s-x"}"#,
                    &format!("{}1{}", "[".repeat(200_000), "]".repeat(200_000))
                )
            )
            .into_bytes(),
            "line 2: JSON is nested too deeply",
        ),
        (
            "binary garbage",
            garbage,
            "line 1: not valid UTF-8 (first invalid byte at offset 0)",
        ),
        ("empty file", Vec::new(), "it contains no batches"),
        (
            "only blank lines",
            b"\n  \n\r\n".to_vec(),
            "it contains no batches",
        ),
    ];
    for (case, content, message) in cases {
        let file = dir.path().join("bad.ndjson");
        std::fs::write(&file, &content).unwrap();
        let db = dir.path().join(format!("{}.db", case.replace(' ', "-")));
        let out = understudy(&["sessions", "import", path(&file), "--db", path(&db)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{case}: {err}");
        assert!(
            err.contains(message),
            "{case}: got {err:?}, want {message:?}"
        );
        assert!(
            err.len() < 2_000,
            "{case}: message too long: {} bytes",
            err.len()
        );
        assert!(!db.exists(), "{case}: the database was created or touched");
    }

    let out = understudy(&[
        "sessions",
        "import",
        path(&dir.path().join("absent.ndjson")),
        "--db",
        path(&dir.path().join("x.db")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));

    let db = seeded_db(dir.path());
    let nowhere = dir.path().join("no-such-dir").join("out.ndjson");
    let out = understudy(&[
        "sessions",
        "export",
        "s-a",
        "--db",
        path(&db),
        "--out",
        path(&nowhere),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
}

#[test]
fn a_bad_line_after_good_ones_leaves_an_existing_database_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_db(dir.path());
    let before = rows(&db);
    let file = dir.path().join("mixed.ndjson");
    let lines = [
        batch_json("s-new", "p1", 0, T),
        batch_json("s-new", "p1", 1, T + 1),
        r#"{"v":1,"sid":"s-new","pvid":"p1","seq":2,"events":[]}"#.to_string(),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = understudy(&["sessions", "import", path(&file), "--db", path(&db)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 3: invalid batch: batch has no events"),
        "{}",
        stderr(&out)
    );
    assert_eq!(rows(&db), before);
}

#[test]
fn forget_deletes_every_session_of_a_user_and_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_db(dir.path());
    // A third session in which u-s-b identified too, next to other people's.
    let mut store = SqliteStore::open(&db).unwrap();
    let mut b = batch("s-c", "p1", 0, T + 120_000);
    b.events.push(
        serde_json::from_str(&format!(
            r#"{{"k":"custom","t":{},"name":"identify","data":{{"user":"u-s-b"}}}}"#,
            T + 120_500
        ))
        .unwrap(),
    );
    store.put_batch(&b, T).unwrap();
    drop(store);

    let out = understudy(&["sessions", "forget", "--user", "u-s-b", "--db", path(&db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "forgot user u-s-b: deleted 2 sessions (4 batches, 13 events)\n"
    );
    let left: Vec<String> = SqliteStore::open(&db)
        .unwrap()
        .list_sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, ["s-a"]);
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        raw.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(
        !raw.windows(5).any(|w| w == b"u-s-b"),
        "the user's bytes remain"
    );
    assert!(raw.windows(5).any(|w| w == b"u-s-a"), "others' bytes stay");

    let out = understudy(&["sessions", "forget", "--user", "nobody", "--db", path(&db)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("deleted 0 sessions"),
        "{}",
        stdout(&out)
    );
    let missing = dir.path().join("missing.db");
    let out = understudy(&["sessions", "forget", "--user", "x", "--db", path(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no session database at"),
        "{}",
        stderr(&out)
    );
    assert!(!missing.exists());
}

#[test]
fn prune_deletes_sessions_whose_last_batch_is_older_than_n_days() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day = 86_400_000;
    let mut store = SqliteStore::open(&db).unwrap();
    for (sid, received) in [("s-old", now), ("s-edge", now), ("s-new", now)] {
        store.put_batch(&batch(sid, "p1", 0, T), received).unwrap();
    }
    drop(store);
    // Backdate two sessions' last receipt: 45 days ago, and just inside 30 days.
    let conn = rusqlite::Connection::open(&db).unwrap();
    for (sid, age) in [("s-old", 45 * day), ("s-edge", 29 * day)] {
        conn.execute(
            "UPDATE sessions SET received_at = ?1 WHERE id = ?2",
            rusqlite::params![now - age, sid],
        )
        .unwrap();
    }
    drop(conn);

    let out = understudy(&[
        "sessions",
        "prune",
        "--older-than-days",
        "30",
        "--db",
        path(&db),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(
            "deleted 1 sessions (1 batches, 3 events) whose last batch arrived before "
        ),
        "{}",
        stdout(&out)
    );
    let left: Vec<String> = SqliteStore::open(&db)
        .unwrap()
        .list_sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, ["s-edge", "s-new"]);

    let out = understudy(&[
        "sessions",
        "prune",
        "--older-than-days",
        "0",
        "--db",
        path(&db),
    ]);
    assert_eq!(out.status.code(), Some(2), "0 days would delete everything");
    assert_eq!(rows(&db), 2);
}
