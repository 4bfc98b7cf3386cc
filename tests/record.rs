//! End to end, the recording half: real Chromium loads a real multi-page site that includes
//! capture.js from a real collector process, a person-like script clicks, types and navigates,
//! and the session lands in a real SQLite file, from which `cook` and `fit` work.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const CANARY_NAME: &str = "Zebulon Quixote-Farnsworth";
const CANARY_EMAIL: &str = "zebulon.canary@example.org";

fn lower(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_is_stored_cooked_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let collector = Collector::start(&db);
    let site = serve_site(&collector.url()).await;
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;

    // Catalog → product (full navigation).
    page.goto(format!("http://{site}/")).await.unwrap();
    wait_path(&page, "/").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    click(&page, "[data-testid=product-2]").await;
    wait_path(&page, "/product/2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Add to cart: a request, then a DOM change.
    click(&page, "[data-testid=add-to-cart]").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    click(&page, "[data-testid=go-to-cart]").await;
    wait_path(&page, "/cart").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Rage on a button that does nothing: three clicks 150 ms apart, then wait out the
    // dead-click window.
    for _ in 0..3 {
        click(&page, "[data-testid=apply-coupon]").await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    click(&page, "[data-testid=checkout]").await;
    wait_path(&page, "/checkout").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Type a name and an e-mail; the page echoes the name back into its DOM.
    type_into(&page, "#name", CANARY_NAME, Duration::from_millis(15)).await;
    type_into(&page, "#email", CANARY_EMAIL, Duration::from_millis(15)).await;
    let shown: String = page
        .evaluate("document.getElementById('hello').textContent")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert!(shown.contains(CANARY_NAME), "the page shows the name");
    click(&page, "[data-testid=place-order]").await;
    wait_path(&page, "/confirm").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    close_tab(page).await;

    // The session is in the SQLite file, with every page view.
    let sessions = eventually(Duration::from_secs(15), || {
        let s = sessions_json(&db);
        let done = s.len() == 1 && s[0]["pages"].as_u64() == Some(5);
        done.then_some(s)
    });
    let sid = sessions[0]["id"].as_str().unwrap().to_string();
    chromium.close().await;

    // cook yields the actions, and the rage and dead clicks where we made them.
    let (code, out, err) = run(&[
        "cook",
        "--db",
        db.to_str().unwrap(),
        "--session",
        &sid,
        "--json",
        "--goal",
        "purchase=url:/confirm",
    ]);
    assert_eq!(code, 0, "cook failed: {err}");
    let cooked: Value = serde_json::from_str(&out).unwrap();
    let session = &cooked[0];
    let actions = session["actions"].as_array().unwrap();
    let steps: Vec<(String, String, String)> = actions
        .iter()
        .map(|a| {
            (
                lower(&a["kind"]),
                a["route"].as_str().unwrap_or_default().to_string(),
                a["target"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let has = |kind: &str, route: &str, target: &str| {
        steps
            .iter()
            .any(|(k, r, t)| k == kind && r == route && t == target)
    };
    assert!(has("navigate", "/", ""), "entry navigation in {steps:#?}");
    assert!(has("click", "/", "testid:product-2"), "{steps:#?}");
    assert!(has("navigate", "/product/:id", ""), "{steps:#?}");
    assert!(
        has("click", "/product/:id", "testid:add-to-cart"),
        "{steps:#?}"
    );
    assert!(has("click", "/cart", "testid:apply-coupon"), "{steps:#?}");
    assert!(has("click", "/cart", "testid:checkout"), "{steps:#?}");
    assert!(has("input", "/checkout", "id:name"), "{steps:#?}");
    assert!(has("input", "/checkout", "id:email"), "{steps:#?}");
    assert!(has("submit", "/checkout", "id:checkout-form"), "{steps:#?}");
    assert!(has("navigate", "/confirm", ""), "{steps:#?}");
    let email = actions
        .iter()
        .find(|a| a["target"] == "id:email" && a["kind"] == "input")
        .unwrap();
    assert_eq!(lower(&email["value_class"]), "email");

    let signals = session["signals"].as_array().unwrap();
    let count = |kind: &str, target: &str| {
        signals
            .iter()
            .filter(|s| lower(&s["kind"]) == kind && s["target"] == target)
            .count()
    };
    assert_eq!(
        count("rage_click", "testid:apply-coupon"),
        1,
        "{signals:#?}"
    );
    assert_eq!(
        count("dead_click", "testid:apply-coupon"),
        1,
        "{signals:#?}"
    );
    // No false alarms on buttons that worked.
    assert_eq!(count("dead_click", "testid:add-to-cart"), 0, "{signals:#?}");
    assert_eq!(count("rage_click", "testid:checkout"), 0, "{signals:#?}");
    let outcomes = session["outcomes"].as_array().unwrap();
    assert!(
        outcomes.iter().any(|o| o["goal"] == "purchase"),
        "{outcomes:#?}"
    );

    // Private by default: the name and e-mail typed and shown appear in no stored byte, nor
    // does the query string of the order request.
    drop(collector);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(stored.len() > 10_000, "the database holds the session");
    let haystack = String::from_utf8_lossy(&stored).to_ascii_lowercase();
    for canary in [
        "zebulon",
        "quixote",
        "farnsworth",
        "canary@",
        "example.org",
        "coupon=none",
    ] {
        assert!(
            !haystack.contains(canary),
            "PII canary {canary:?} found in stored bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_hundred_recorded_sessions_fit_a_model() {
    const PEOPLE: u64 = 200;
    const AT_ONCE: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let collector = Collector::start(&db);
    let site = serve_site(&collector.url()).await;
    let started = std::time::Instant::now();
    record_population(site, PEOPLE, AT_ONCE).await;
    eprintln!("recorded {PEOPLE} sessions in {:?}", started.elapsed());
    wait_for_sessions(&db, PEOPLE as usize);
    drop(collector);

    let model = dir.path().join("shop.json");
    let out = fit_shop(&db, &model);
    assert!(out.to_lowercase().contains("perplexity"), "{out}");
    let (code, out, err) = run(&["model", "show", model.to_str().unwrap()]);
    assert_eq!(code, 0, "model show failed: {err}");
    assert!(out.contains("testid:add-to-cart"), "{out}");

    // A malformed model is a clear error with exit code 2.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"format\":\"understudy-model\",\"version\":1,").unwrap();
    let (code, _, err) = run(&["model", "show", broken.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.is_empty());
}
