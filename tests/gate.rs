//! End to end, the gating half: a model fitted from recorded sessions drives simulated users
//! in real Chromium against two builds of the test shop; the gate decides, reports, shards
//! and merges.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn scenario(dir: &Path, model: &Path, baseline: &str, candidate: &str, max: usize) -> String {
    let text = format!(
        r#"name = "test-shop"
model = "{model}"
baseline = "{baseline}"
candidate = "{candidate}"
goals = ["purchase=url:/confirm"]
funnel = ["/", "/product/*", "/cart", "/checkout", "/confirm"]
concurrency = 8
seed = 7
time_scale = 0.2

[pairs]
min = 30
max = {max}
check_every = 15

# The simulated shop converts about 18% here, so a dead checkout (about 2%) shows as a
# drop of about 15 pp with an interval about ±11 pp wide at 45 pairs: against 5 pp allowed,
# one conversion more or less decided the verdict (a loaded CI run saw 7/45 and passed).
[[checks]]
metric = "conversion"
max_drop = 0.02
level = "error"

[[checks]]
metric = "rage_click"
max_rise = 0.5
level = "warn"
"#,
        model = model.display()
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn results(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

/// Every session the report shows links its replay, written beside the report from the
/// kept simulated sessions.
fn assert_replays_linked(out: &Path, r: &Value) {
    let sessions = r["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty(), "the report shows sessions");
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    for s in sessions {
        let sid = s["session_id"].as_str().unwrap();
        let link = format!("replays/{sid}.html");
        assert_eq!(s["replay"], link.as_str(), "{s}");
        assert!(html.contains(&format!("href=\"{link}\"")), "{link} linked");
        let player = std::fs::read_to_string(out.join("report").join(&link)).unwrap();
        assert!(player.contains("id=\"replay-frame\""), "{link} is a player");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_users_gate_builds_and_shards_merge_to_the_same_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let collector = Collector::start(&db);
    let baseline = serve_site(&collector.url()).await;
    let broken = serve_site_variant(&collector.url(), true).await;
    record_population(baseline, 60, 6).await;
    wait_for_sessions(&db, 60);
    drop(collector);
    let model = dir.path().join("shop.json");
    fit_shop(&db, &model);
    let (base_url, broken_url) = (format!("http://{baseline}/"), format!("http://{broken}/"));

    // simulate: users on one build, recorded by the same capture.js and cooked.
    let sim = dir.path().join("sim");
    let started = std::time::Instant::now();
    let (code, out, err) = run(&[
        "simulate",
        "--model",
        model.to_str().unwrap(),
        "--url",
        &base_url,
        "--users",
        "16",
        "--out",
        sim.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    eprintln!("simulate 16 users: {:?}\n{out}", started.elapsed());
    let outcomes: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(sim.join("outcomes.json")).unwrap()).unwrap();
    assert_eq!(outcomes.len(), 16);
    let converted = outcomes.iter().filter(|o| o["converted"] == true).count();
    assert!(converted > 0, "some simulated users convert: {out}");
    // Every user loaded the page; the model decides how far each goes.
    assert!(outcomes
        .iter()
        .all(|o| o["browser_actions"].as_u64().unwrap() >= 1));

    // A regression fails the gate (exit 1) and every report is written.
    let sc = scenario(dir.path(), &model, &base_url, &broken_url, 45);
    let out_fail = dir.path().join("fail");
    let (code, stdout, err) = run(&[
        "gate",
        "--scenario",
        &sc,
        "--out",
        out_fail.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "dead checkout must fail the gate\n{stdout}\n{err}");
    for f in [
        "junit.xml",
        "report/index.html",
        "summary.md",
        "results.json",
    ] {
        assert!(out_fail.join(f).exists(), "{f} written");
    }
    let r = results(&out_fail);
    assert_replays_linked(&out_fail, &r);
    let delta = r["checks"][0]["estimate"].as_f64().unwrap();
    assert!(
        delta < -0.05,
        "conversion drops on the broken build: {delta}"
    );

    // The same build on both sides: nothing to fail (exit 0).
    let sc_same = scenario(dir.path(), &model, &base_url, &base_url, 30);
    let out_same = dir.path().join("same");
    let (code, stdout, err) = run(&[
        "gate",
        "--scenario",
        &sc_same,
        "--out",
        out_same.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "identical builds must not fail\n{stdout}\n{err}");

    // Three shards plus merge give the verdict and counts of one run.
    let sc = scenario(dir.path(), &model, &base_url, &broken_url, 45);
    let mut blobs = Vec::new();
    for i in 0..3 {
        let out = dir.path().join(format!("shard-{i}"));
        let (code, _, err) = run(&[
            "gate",
            "--scenario",
            &sc,
            "--shard",
            &format!("{i}/3"),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        blobs.push(out.join("run.blob").to_str().unwrap().to_string());
    }
    let merged = dir.path().join("merged");
    let mut args = vec!["merge", "--out", merged.to_str().unwrap()];
    args.extend(blobs.iter().map(String::as_str));
    let (code, _, err) = run(&args);
    assert_eq!(code, 1, "merged shards fail like the single run: {err}");
    let (one, many) = (results(&out_fail), results(&merged));
    assert_replays_linked(&merged, &many);
    assert_eq!(one["outcome"]["verdict"], many["outcome"]["verdict"]);
    assert_eq!(one["pairs"], many["pairs"]);
    assert_eq!(
        one["candidate"]["conversion"]["successes"],
        many["candidate"]["conversion"]["successes"]
    );
    assert_eq!(
        one["baseline"]["conversion"]["successes"],
        many["baseline"]["conversion"]["successes"]
    );

    // A missing shard is a usage error.
    let (code, _, err) = run(&[
        "merge",
        "--out",
        merged.to_str().unwrap(),
        &blobs[0],
        &blobs[1],
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing"), "{err}");

    // An unreachable candidate is an infrastructure error with a clear message.
    let sc_down = scenario(dir.path(), &model, &base_url, "http://127.0.0.1:9/", 45);
    let (code, _, err) = run(&[
        "gate",
        "--scenario",
        &sc_down,
        "--out",
        dir.path().join("down").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("candidate build is unreachable"), "{err}");
}

/// For working on the simulator by hand: `cargo test --test gate -- --ignored --nocapture`
/// serves the test shop (and its broken variant) for ten minutes and prints their URLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "manual: serves the test shop for ten minutes"]
async fn serve_the_test_shop_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(&dir.path().join("sessions.db"));
    let baseline = serve_site(&collector.url()).await;
    let broken = serve_site_variant(&collector.url(), true).await;
    eprintln!(
        "collector {} baseline http://{baseline}/ broken http://{broken}/ db {}",
        collector.url(),
        dir.path().display()
    );
    if std::env::var_os("RECORD").is_some() {
        record_population(baseline, 60, 6).await;
        eprintln!("recorded");
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
}
