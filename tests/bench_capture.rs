//! The pages of `understudy bench capture` load in real Chromium without errors, and each
//! workload really changes the DOM the way rrweb's benchmark does. No recorder, no npm.

use std::time::{Duration, Instant};

use understudy::bench::capture::{serve_pages, workload_pages, SNAPSHOT};
use understudy::simulate::driver::{Chromium, DriverConfig, TabOptions};

/// Counts page errors from the first script on.
const ERRORS: &str = "window.__errors = 0; \
    addEventListener('error', function () { window.__errors++; }); \
    addEventListener('unhandledrejection', function () { window.__errors++; });";

/// Runs `workload()` under a MutationObserver and reports what it saw and what is left.
const PROBE: &str = "(() => {
    const before = document.getElementsByTagName('*').length;
    const mo = new MutationObserver(() => {});
    mo.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
    window.workload();
    const recs = mo.takeRecords();
    mo.disconnect();
    let added = 0, removed = 0, attrs = 0;
    for (const r of recs) {
      added += r.addedNodes.length;
      removed += r.removedNodes.length;
      if (r.type === 'attributes') attrs++;
    }
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_ALL);
    let bodyNodes = 0;
    while (walk.nextNode()) bodyNodes++;
    return {records: recs.length, added, removed, attrs, before, bodyNodes,
            divs: document.getElementsByTagName('div').length,
            foo: document.getElementsByClassName('foo').length,
            depth: (() => { let d = 0, n = document.body; while (n.lastElementChild) { n = n.lastElementChild; d++; } return d; })(),
            scripts: [...document.scripts].filter(s => s.src).length,
            errors: window.__errors};
})()";

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Seen {
    records: usize,
    added: usize,
    removed: usize,
    attrs: usize,
    body_nodes: usize,
    divs: usize,
    foo: usize,
    depth: usize,
    scripts: usize,
    errors: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_page_loads_and_mutates_the_dom() {
    let started = Instant::now();
    let pages = workload_pages();
    let server = serve_pages(
        pages
            .iter()
            .map(|(n, h)| (n.to_string(), h.clone()))
            .collect(),
    )
    .await
    .unwrap();
    let chromium = Chromium::launch(DriverConfig::default()).await.unwrap();
    let mut seen = Vec::new();
    for (name, _) in &pages {
        let tab = chromium
            .open_unprobed(&TabOptions {
                init_script: Some(ERRORS.to_string()),
                ..TabOptions::default()
            })
            .await
            .unwrap();
        tab.goto(&server.url(name)).await.unwrap();
        let s: Seen = tab.eval(PROBE).await.unwrap().expect("page answers");
        chromium.dispose(tab).await;
        seen.push((*name, s));
    }
    chromium.close().await;
    for (name, s) in &seen {
        assert_eq!(s.errors, 0, "{name}: page errors");
        assert_eq!(s.scripts, 0, "{name}: loads an external script");
        if *name != SNAPSHOT {
            assert!(s.records > 0, "{name}: workload() changed nothing: {s:?}");
        }
    }
    let get = |n: &str| &seen.iter().find(|(m, _)| *m == n).unwrap().1;
    // Clearing the body (one record, even when empty), then 100 chains 256 deep under 100
    // roots, each append in the document: one record each.
    let s = get("nested-deep");
    assert_eq!(
        (s.divs, s.records, s.depth),
        (100 * 257, 1 + 100 * 257, 257)
    );
    // One fragment of 1000 chains of 10.
    let s = get("nodes-1000x10");
    assert_eq!((s.divs, s.records, s.added, s.depth), (10_000, 1, 1000, 10));
    // Add, remove all 10 000 divs one by one (an observer still sees the removals inside
    // subtrees already taken out), add again.
    let s = get("add-remove-1000x10x2");
    assert_eq!(s.divs, 10_000);
    assert_eq!(
        (s.added, s.removed, s.records),
        (2000, 10_000, 10_002),
        "{s:?}"
    );
    // 1000 divs, each appended into the previous one.
    let s = get("append-descendants-1000");
    assert_eq!((s.divs, s.records, s.depth), (1000, 1000, 1000));
    // 10 000 divs moved into a new container; #app gone; one more container of one div.
    let s = get("move-10000");
    assert_eq!(s.divs, 1 + 10_000 + 1 + 2, "{s:?}");
    assert!(s.added >= 3 && s.removed >= 2, "{s:?}");
    // 10 000 divs get a class.
    let s = get("attributes-10000");
    assert_eq!((s.foo, s.attrs), (10_000, 10_000));
    // The snapshot page: about 100 000 nodes, and a workload that does nothing.
    let s = get(SNAPSHOT);
    assert!(
        (100_000..=100_100).contains(&s.body_nodes),
        "{SNAPSHOT} has {} nodes in its body",
        s.body_nodes
    );
    assert_eq!(s.records, 0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
