//! capture.js in real Chromium: fidelity (the DOM rebuilt from a recording equals the live
//! DOM, serialised the same way) and main-thread protection (sliced snapshot, storm
//! throttling, circuit breaker).
//!
//! Real headless Chromium records the fixture pages in `tests/fixtures/fidelity` (SPA
//! routing, forms, same-origin iframes, shadow DOM, `<template>`, SVG) and rrweb's six
//! benchmark workloads plus the 100 000-node page (`understudy::bench::capture`). At each
//! checkpoint (after load, then after each of the page's `window.steps`) the live document's
//! canonical form is compared with the canonical form of the document that `rebuild.js` (the
//! player's code) builds from the batches recorded so far, in a second page. Each page runs
//! twice: with text unmasked (exact comparison, except what capture.js never sends), and with
//! the default masking (text and attribute values compared by shape).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use chromiumoxide::Page;
use common::Chromium;
use understudy::event::{Batch, Event};

const REBUILD_JS: &str = include_str!("../src/replay/rebuild.js");
const FIXTURES: &[(&str, &str)] = &[
    ("forms", include_str!("fixtures/fidelity/forms.html")),
    ("spa", include_str!("fixtures/fidelity/spa.html")),
    ("shadow", include_str!("fixtures/fidelity/shadow.html")),
    (
        "template-svg",
        include_str!("fixtures/fidelity/template-svg.html"),
    ),
    ("frames", include_str!("fixtures/fidelity/frames.html")),
    ("child", include_str!("fixtures/fidelity/child.html")),
    ("child2", include_str!("fixtures/fidelity/child2.html")),
    ("misc", include_str!("fixtures/fidelity/misc.html")),
];

const GUARD: &[(&str, &str)] = &[
    ("storm", include_str!("fixtures/capture/storm.html")),
    ("runaway", include_str!("fixtures/capture/runaway.html")),
];

/// Pages under `/fidelity/{name}.html`, `/guard/{name}.html` and `/bench/{name}.html`, and a blank page for rebuilds.
async fn serve() -> SocketAddr {
    let mut pages: HashMap<String, String> = FIXTURES
        .iter()
        .map(|(n, h)| (format!("fidelity/{n}.html"), h.to_string()))
        .collect();
    for (name, html) in understudy::bench::capture::workload_pages() {
        pages.insert(format!("bench/{name}.html"), html);
    }
    for (name, html) in GUARD {
        pages.insert(format!("guard/{name}.html"), html.to_string());
    }
    pages.insert(
        "rebuild.html".into(),
        "<!doctype html><html><body></body></html>".into(),
    );
    async fn page(
        State(p): State<std::sync::Arc<HashMap<String, String>>>,
        UrlPath(path): UrlPath<String>,
    ) -> axum::response::Response {
        match p.get(&path) {
            Some(h) => Html(h.clone()).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain")],
                "no such page",
            )
                .into_response(),
        }
    }
    let app = Router::new()
        .route("/{*path}", get(page))
        .with_state(std::sync::Arc::new(pages));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn init_script(page: &Page, source: &str) {
    page.execute(
        AddScriptToEvaluateOnNewDocumentParams::builder()
            .source(source)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
}

/// A fresh page where capture.js runs with `config` and hands its batches to the in-page
/// array `__batches` (`__snapped` turns true with the snapshot); rebuild.js is loaded too,
/// for `canon`.
async fn recording_page(chromium: &Chromium, config: &str) -> Page {
    let page = chromium.isolated_page().await;
    init_script(
        &page,
        &format!(
            "window.understudyConfig = {config}; window.__batches = []; \
             window.__understudyEmit = function (s) {{ __batches.push(s); \
             if (s.indexOf('\"k\":\"snap\"') >= 0) window.__snapped = true; }};"
        ),
    )
    .await;
    init_script(&page, REBUILD_JS).await;
    init_script(&page, understudy::capture::SCRIPT).await;
    page
}

async fn eval<T: serde::de::DeserializeOwned>(page: &Page, js: &str) -> T {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("evaluate {js:.80}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("value of {js:.80}: {e}"))
}

/// Waits until the recorder has emitted a snapshot and then nothing new for 150 ms.
async fn quiet(page: &Page) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = usize::MAX;
    loop {
        let n: usize = eval(
            page,
            "new Promise(r => setTimeout(() => r(window.__snapped ? __batches.length : 0), 150))",
        )
        .await;
        if n > 0 && n == last {
            return;
        }
        assert!(Instant::now() < deadline, "the recorder never went quiet");
        last = n;
    }
}

/// The events of the page's current page view, in stream order, parsed as the wire format.
async fn recorded(page: &Page) -> String {
    let raw: Vec<String> = eval(page, "__batches").await;
    let batches: Vec<Batch> = raw
        .iter()
        .map(|s| {
            let b: Batch =
                understudy::event::from_json(s).expect("capture.js sends the wire format");
            b.validate().unwrap();
            b
        })
        .collect();
    let pvid = batches.last().expect("batches").pvid.clone();
    let mut seqs: Vec<u64> = batches.iter().map(|b| b.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..batches.len() as u64).collect::<Vec<_>>(),
        "no gaps"
    );
    let events: Vec<Event> = batches
        .into_iter()
        .filter(|b| b.pvid == pvid)
        .flat_map(|b| b.events)
        .filter(|e| matches!(e, Event::Snap(_) | Event::Mut(_)))
        .collect();
    understudy::event::to_json(&events).unwrap()
}

struct Checkpoint {
    page: String,
    masked: bool,
    step: usize,
    equal: bool,
    diff: String,
}

fn first_difference(live: &str, rebuilt: &str) -> String {
    let (l, r): (Vec<_>, Vec<_>) = (live.lines().collect(), rebuilt.lines().collect());
    for i in 0..l.len().max(r.len()) {
        let (a, b) = (l.get(i), r.get(i));
        if a != b {
            let cut = |s: Option<&&str>| s.map(|s| s.chars().take(160).collect::<String>());
            return format!(
                "line {}: live {:?} / rebuilt {:?} ({} vs {} lines)",
                i + 1,
                cut(a),
                cut(b),
                l.len(),
                r.len()
            );
        }
    }
    String::new()
}

async fn check_page(
    chromium: &Chromium,
    rebuild: &Page,
    url: &str,
    name: &str,
    masked: bool,
) -> Vec<Checkpoint> {
    let unmask = if masked { "[]" } else { "['*']" };
    let page = recording_page(chromium, &format!("{{ flushMs: 0, unmask: {unmask} }}")).await;
    page.goto(url).await.unwrap();
    page.wait_for_navigation().await.unwrap();
    // The benchmark pages have one step, `workload()` (a no-op on the snapshot page).
    let steps: usize = eval(
        &page,
        "(window.steps = window.steps || (window.workload && window.workload.toString().length > 16 \
         ? [window.workload] : [])).length",
    )
    .await;
    let opts = format!("{{ live: true, mask: {masked} }}");
    let mut out = Vec::new();
    for step in 0..=steps {
        if step > 0 {
            let _: Option<serde_json::Value> = page
                .evaluate(format!(
                    "Promise.resolve(window.steps[{}]()).then(() => null)",
                    step - 1
                ))
                .await
                .unwrap()
                .into_value()
                .ok();
        }
        quiet(&page).await;
        let live: String = eval(&page, &format!("UnderstudyRebuild.canon(document, {opts})")).await;
        let events = recorded(&page).await;
        let js = format!(
            "(() => {{ const old = document.getElementById('r'); if (old) old.remove(); \
             const f = document.createElement('iframe'); f.id = 'r'; \
             f.setAttribute('sandbox', 'allow-same-origin'); document.body.appendChild(f); \
             const rb = new UnderstudyRebuild.Rebuilder(f.contentDocument); \
             for (const e of {events}) rb.apply(e); \
             return UnderstudyRebuild.canon(f.contentDocument, {{ mask: {masked} }}); }})()"
        );
        let rebuilt: String = eval(rebuild, &js).await;
        // FIDELITY_DUMP=dir keeps both forms and the events of every checkpoint, to debug.
        if let Ok(dir) = std::env::var("FIDELITY_DUMP") {
            let base = format!("{dir}/{name}-{}-{step}", if masked { "m" } else { "u" });
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(format!("{base}.live.txt"), &live).unwrap();
            std::fs::write(format!("{base}.rebuilt.txt"), &rebuilt).unwrap();
            std::fs::write(format!("{base}.events.json"), &events).unwrap();
        }
        assert!(
            live.lines().count() > 5,
            "{name}: the live canonical form is too small to mean anything:\n{live}"
        );
        out.push(Checkpoint {
            page: name.to_string(),
            masked,
            step,
            equal: live == rebuilt,
            diff: first_difference(&live, &rebuilt),
        });
    }
    common::close_tab(page).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilt_dom_equals_live_dom_at_every_checkpoint() {
    let site = serve().await;
    let chromium = Chromium::launch().await;
    let rebuild = chromium.isolated_page().await;
    rebuild
        .goto(format!("http://{site}/rebuild.html"))
        .await
        .unwrap();
    let _: Option<bool> = rebuild
        .evaluate(format!("{REBUILD_JS}; true"))
        .await
        .unwrap()
        .into_value()
        .ok();
    let mut pages: Vec<(String, String)> = FIXTURES
        .iter()
        .filter(|(n, _)| !n.starts_with("child"))
        .map(|(n, _)| (n.to_string(), format!("http://{site}/fidelity/{n}.html")))
        .collect();
    for (name, _) in understudy::bench::capture::workload_pages() {
        pages.push((name.to_string(), format!("http://{site}/bench/{name}.html")));
    }
    let mut all = Vec::new();
    // FIDELITY_ONLY=name runs one page, to debug.
    if let Ok(only) = std::env::var("FIDELITY_ONLY") {
        pages.retain(|(n, _)| *n == only);
    }
    for (name, url) in &pages {
        for masked in [false, true] {
            all.extend(check_page(&chromium, &rebuild, url, name, masked).await);
        }
    }
    chromium.close().await;
    let equal = all.iter().filter(|c| c.equal).count();
    println!(
        "fidelity: {equal}/{} checkpoints equal ({:.1}%)",
        all.len(),
        100.0 * equal as f64 / all.len() as f64
    );
    for c in &all {
        println!(
            "  {:<24} {:<8} step {}  {}",
            c.page,
            if c.masked { "masked" } else { "unmasked" },
            c.step,
            if c.equal { "equal" } else { &c.diff }
        );
    }
    if std::env::var("FIDELITY_ONLY").is_err() {
        assert!(all.len() >= 40, "too few checkpoints: {}", all.len());
    }
    assert_eq!(equal, all.len(), "every checkpoint must be equal");
}

#[test]
fn the_fixture_pages_all_have_steps() {
    for (name, html) in FIXTURES {
        if !name.starts_with("child") {
            assert!(html.contains("window.steps"), "{name} has no steps");
        }
    }
}

/// Every event recorded so far on `page`, as JSON values, in stream order.
async fn events(page: &Page) -> Vec<serde_json::Value> {
    let raw: Vec<String> = eval(page, "__batches").await;
    // Through the wire format's parser, which fills in the ids the page leaves implicit.
    raw.iter()
        .flat_map(|s| {
            let b: Batch = understudy::event::from_json(s).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&understudy::event::to_json(&b.events).unwrap()).unwrap();
            v.as_array().unwrap().clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_thread_is_protected() {
    let site = serve().await;
    let chromium = Chromium::launch().await;

    // The 100 000-node snapshot is built in slices: a ticker in the page gets turns while
    // it is under way, and the snapshot still equals the page.
    let page = recording_page(
        &chromium,
        "{ flushMs: 0 }; (function () { var c = new MessageChannel(); window.__ticks = []; \
         c.port1.onmessage = function () { __ticks.push(performance.now()); \
         if (!window.__snapped) c.port2.postMessage(0); }; \
         document.addEventListener('DOMContentLoaded', function () { \
         window.__t0 = performance.now(); c.port2.postMessage(0); }); })()",
    )
    .await;
    page.goto(format!("http://{site}/bench/snapshot-100k.html"))
        .await
        .unwrap();
    quiet(&page).await;
    let turns: usize = eval(&page, "__ticks.filter(t => t > __t0).length").await;
    assert!(
        turns >= 3,
        "the page got {turns} turns while the snapshot was built: it ran in one task"
    );
    let live: String = eval(
        &page,
        "UnderstudyRebuild.canon(document, { live: true, mask: true })",
    )
    .await;
    let snap = events(&page)
        .await
        .into_iter()
        .find(|e| e["k"] == "snap")
        .expect("a snapshot");
    let nodes = snap.to_string().matches("\"nt\":").count();
    assert!(nodes > 100_000, "snapshot has {nodes} nodes");
    assert!(live.lines().count() > 100_000);
    common::close_tab(page).await;

    // An attribute storm on one node (3 000 changes in about a second) is throttled: the
    // node's changes are folded to a few per flush, and the last value arrives.
    let page = recording_page(&chromium, "{ flushMs: 200, unmask: ['*'] }").await;
    page.goto(format!("http://{site}/guard/storm.html"))
        .await
        .unwrap();
    let _: bool = eval(&page, "window.storm()").await;
    quiet(&page).await;
    let ev = events(&page).await;
    let id = find_id(&ev, "storm").expect("the storm node is in the snapshot");
    let changes: Vec<&serde_json::Value> = ev
        .iter()
        .filter(|e| e["k"] == "mut")
        .flat_map(|e| e["attrs"].as_array().into_iter().flatten())
        .filter(|a| a["id"] == id)
        .collect();
    assert!(
        (2..=200).contains(&changes.len()),
        "3 000 changes on one node were sent as {} attribute changes",
        changes.len()
    );
    assert_eq!(changes.last().unwrap()["a"]["data-n"], "2999");
    common::close_tab(page).await;

    // A runaway page (thousands of nodes added and removed in every task) trips the
    // breaker: DOM recording stops, the stream says so, and other events still flow.
    let page = recording_page(&chromium, "{ flushMs: 200 }").await;
    page.goto(format!("http://{site}/guard/runaway.html"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let breaker = loop {
        let ev = events(&page).await;
        if let Some(b) = ev.iter().find(|e| e["name"] == "$breaker") {
            break b.clone();
        }
        assert!(Instant::now() < deadline, "the breaker never tripped");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        breaker["data"]["ms"].as_f64().unwrap() >= 1000.0,
        "{breaker}"
    );
    let muts_then = events(&page)
        .await
        .iter()
        .filter(|e| e["k"] == "mut")
        .count();
    let _: bool = eval(&page, "window.understudy('event', 'still-here'), true").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let ev = events(&page).await;
    assert_eq!(
        ev.iter().filter(|e| e["k"] == "mut").count(),
        muts_then,
        "DOM recording went on after the breaker"
    );
    assert!(ev.iter().any(|e| e["name"] == "still-here"));
    common::close_tab(page).await;
    chromium.close().await;
}

/// The id of the element with `id` attribute `dom_id` in the first snapshot.
fn find_id(events: &[serde_json::Value], dom_id: &str) -> Option<serde_json::Value> {
    fn walk(n: &serde_json::Value, dom_id: &str) -> Option<serde_json::Value> {
        if n["a"]["id"] == dom_id {
            return Some(n["id"].clone());
        }
        n["c"].as_array()?.iter().find_map(|c| walk(c, dom_id))
    }
    walk(&events.iter().find(|e| e["k"] == "snap")?["node"], dom_id)
}
