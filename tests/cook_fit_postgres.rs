//! `cook` and `fit` read the same from either backend: the same sessions imported into a
//! SQLite file and into PostgreSQL give byte-identical cooked sessions and models.
//!
//! Needs a server: `UNDERSTUDY_TEST_POSTGRES` (see `scripts/test-postgres`).

mod pg;

use std::io::Write;
use std::process::{Command, Output};

use understudy::bench::synth;

const GOAL: &str = "purchase=element:[data-testid=order-confirmation]";

fn understudy(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the understudy binary");
    assert!(
        out.status.success(),
        "understudy {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn cook_and_fit_read_the_same_from_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let pg = pg::TestDb::new();
    let sqlite = dir.path().join("sessions.db");
    let sqlite = sqlite.to_str().unwrap();

    // The same batches, in the same shuffled-by-session order, into both.
    let file = dir.path().join("sessions.ndjson");
    let mut out = std::fs::File::create(&file).unwrap();
    let sessions = synth::sessions(150, 9);
    for batch in sessions.iter().rev().flatten() {
        writeln!(out, "{}", serde_json::to_string(batch).unwrap()).unwrap();
    }
    drop(out);
    let file = file.to_str().unwrap();
    for db in [sqlite, pg.url.as_str()] {
        let out = understudy(&["sessions", "import", file, "--db", db]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("skipped 0 duplicates"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let listing = |db: &str| understudy(&["sessions", "list", "--db", db, "--json"]).stdout;
    assert_eq!(listing(sqlite), listing(&pg.url), "sessions list --json");

    let cook = |db: &str| understudy(&["cook", "--db", db, "--goal", GOAL, "--json"]).stdout;
    let from_sqlite = cook(sqlite);
    let cooked: Vec<serde_json::Value> = serde_json::from_slice(&from_sqlite).unwrap();
    assert_eq!(cooked.len(), 150);
    assert!(from_sqlite == cook(&pg.url), "cook --json differs");
    let text = |db: &str| understudy(&["cook", "--db", db, "--goal", GOAL]).stdout;
    assert!(text(sqlite) == text(&pg.url), "cook (text) differs");

    let fit = |db: &str, name: &str| {
        let model = dir.path().join(name);
        let out = understudy(&[
            "fit",
            "--db",
            db,
            "--out",
            model.to_str().unwrap(),
            "--goal",
            GOAL,
            "--seed",
            "3",
        ]);
        // Everything but the line that names the file written.
        let printed: String = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("wrote "))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
        assert!(json["written_at_ms"].is_number());
        json["written_at_ms"] = serde_json::Value::Null;
        (printed, json)
    };
    let (printed_sqlite, model_sqlite) = fit(sqlite, "sqlite.json");
    let (printed_pg, model_pg) = fit(&pg.url, "postgres.json");
    assert!(
        printed_sqlite.contains("fitted on 150 sessions"),
        "{printed_sqlite}"
    );
    assert_eq!(printed_sqlite, printed_pg, "fit output");
    assert!(model_sqlite == model_pg, "the fitted models differ");
}
