//! `understudy cook`, `fit` and `model show` as a user runs them: synthetic sessions written
//! through the real SQLite store into a temporary file, then the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use understudy::bench::synth;
use understudy::model::Model;
use understudy::store::{SessionStore, SqliteStore};

const GOAL: &str = "purchase=element:[data-testid=order-confirmation]";
const SESSIONS: usize = 300;

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A database with `SESSIONS` synthetic sessions, stored as the collector would.
fn seeded_db(dir: &Path) -> PathBuf {
    let db = dir.join("sessions.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let all: Vec<_> = synth::sessions(SESSIONS, 5).into_iter().flatten().collect();
    let report = store.put_batches(&all, synth::BASE_EPOCH_MS).unwrap();
    assert_eq!(report.stored, all.len());
    db
}

#[test]
fn fit_writes_a_model_that_show_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_db(dir.path());
    let out = dir.path().join("models").join("shop.json");

    let fit = understudy(&[
        "fit",
        "--db",
        path(&db),
        "--out",
        path(&out),
        "--goal",
        GOAL,
        "--seed",
        "3",
    ]);
    assert!(fit.status.success(), "fit failed: {}", stderr(&fit));
    let text = stdout(&fit);
    for want in [
        &format!("fitted on {SESSIONS} sessions"),
        "log-loss",
        "perplexity",
        "first-order MLE baseline",
        "top-1 accuracy",
        "conversion: observed",
        "model-implied",
        "wrote ",
    ] {
        assert!(text.contains(want), "fit output lacks {want:?}:\n{text}");
    }

    let model = Model::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(model.provenance.sessions, SESSIONS as u64);
    assert_eq!(model.provenance.goals, vec![GOAL.to_string()]);
    assert!(model.written_at_ms.is_some());
    let eval = model.evaluation.as_ref().expect("20% held out by default");
    assert_eq!(eval.test.sessions, (SESSIONS as f64 * 0.2).round() as u64);
    assert_eq!(eval.conversion.as_ref().unwrap().seed, 3);

    let show = understudy(&["model", "show", path(&out), "--top", "3"]);
    assert!(show.status.success(), "show failed: {}", stderr(&show));
    let text = stdout(&show);
    for want in [
        "model: 300 sessions",
        "top 3 paths",
        "states (top 3 by visits)",
        "where users leave",
        "START",
    ] {
        assert!(text.contains(want), "show output lacks {want:?}:\n{text}");
    }
}

#[test]
fn malformed_model_files_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"format":"understudy-model","version":99}"#,
            "unsupported model version 99",
        ),
        (
            r#"{"format":"understudy-model","version":1,"#,
            "not valid JSON",
        ),
        (r#"{"format":"other","version":1}"#, "unknown format"),
        ("hello", "expected a JSON object"),
        (
            r#"{"format":"understudy-model","version":1,"states":[]}"#,
            "malformed model",
        ),
    ];
    for (k, (content, want)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{k}.json"));
        std::fs::write(&file, content).unwrap();
        let o = understudy(&["model", "show", path(&file)]);
        assert_eq!(o.status.code(), Some(2), "{content}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(want), "{content}: {err}");
        assert!(
            err.contains(path(&file)),
            "the message names the file: {err}"
        );
    }
    let o = understudy(&["model", "show", path(&dir.path().join("missing.json"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no model file"));
}

#[test]
fn cook_prints_text_and_json_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("small.db");
    {
        let mut store = SqliteStore::open(&db).unwrap();
        let all: Vec<_> = synth::sessions(3, 9).into_iter().flatten().collect();
        store.put_batches(&all, 0).unwrap();
    }
    let sid = synth::sessions(1, 9)[0][0].sid.clone();

    let o = understudy(&["cook", "--db", path(&db), "--goal", GOAL]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.matches("session s-").count(), 3, "{text}");
    assert!(text.contains(" navigate "), "{text}");

    let o = understudy(&["cook", "--db", path(&db), "--session", &sid, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["sid"], sid.as_str());
    assert!(!v[0]["actions"].as_array().unwrap().is_empty());

    let o = understudy(&["cook", "--db", path(&db), "--session", "s-nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("s-nope"));

    let o = understudy(&["cook", "--db", path(&db), "--goal", "click:/x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown kind `click`"),
        "{}",
        stderr(&o)
    );

    let o = understudy(&[
        "fit",
        "--db",
        path(&dir.path().join("none.db")),
        "--out",
        "x.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no session database"));
}
