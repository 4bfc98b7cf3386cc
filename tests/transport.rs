//! Transport under stress, with real headless Chromium and real collector processes: the
//! collector killed for 30 s in the middle of a session and restarted on the same port and
//! database; a queue bound small enough to overflow (the loss counted in the stream as
//! `$lost`); and a large last batch delivered whole at page hide in payloads of at most
//! 64 KB.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use common::*;
use serde_json::Value;

/// A page that changes its DOM every 200 ms (a new `div#tick-N`, with `pad` random
/// characters in its class when `pad` > 0).
const TICKER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ticker</title>
<script>window.understudyConfig = {{CONFIG}};</script>
<script src="{{COLLECTOR}}/capture.js"></script>
</head><body>
<button id="poke" data-testid="poke" type="button">Poke</button>
<div id="log"></div>
<script>
var PAD = {{PAD}};
window.ticks = 0;
function noise(n) {
  var s = "";
  while (s.length < n) s += Math.random().toString(36).slice(2);
  return s.slice(0, n);
}
setInterval(function () {
  var d = document.createElement("div");
  d.id = "tick-" + window.ticks++;
  if (PAD) d.className = noise(PAD);
  document.getElementById("log").appendChild(d);
}, 200);
</script></body></html>"#;

/// A page that makes `n` custom events in one task and then leaves (or stays).
const BULK: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bulk</title>
<script src="{{COLLECTOR}}/capture.js"></script>
</head><body><p>Bulk</p>
<script>
// Ordinary, compressible events (about 90 bytes each as JSON): all of them fit the 64 KiB a
// browser allows in flight at page hide only when sent compressed.
window.bulk = function (n, next) {
  for (var i = 0; i < n; i++) understudy("event", "bulk", { i: i, item: "sku-" + (i % 7), qty: 1 });
  if (next) location.href = next;
  return n;
};
</script></body></html>"#;

const BYE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bye</title>
<script src="{{COLLECTOR}}/capture.js"></script>
</head><body><p>Bye</p></body></html>"#;

#[derive(Clone)]
struct Pages {
    collector: String,
    config: String,
    pad: usize,
}

fn render(p: &Pages, src: &str) -> Html<String> {
    Html(
        src.replace("{{COLLECTOR}}", &p.collector)
            .replace("{{CONFIG}}", &p.config)
            .replace("{{PAD}}", &p.pad.to_string()),
    )
}

/// The test pages on loopback, sending to `collector` with `config` as `understudyConfig`.
async fn serve_pages(collector: &str, config: &str, pad: usize) -> SocketAddr {
    let pages = Pages {
        collector: collector.to_string(),
        config: config.to_string(),
        pad,
    };
    let app = Router::new()
        .route(
            "/ticker",
            get(|State(p): State<Pages>| async move { render(&p, TICKER) }),
        )
        .route(
            "/bulk",
            get(|State(p): State<Pages>| async move { render(&p, BULK) }),
        )
        .route(
            "/bye",
            get(|State(p): State<Pages>| async move { render(&p, BYE) }),
        )
        .with_state(pages);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn events(batches: &[StoredBatch]) -> Vec<&Value> {
    batches.iter().flat_map(|b| b.events.iter()).collect()
}

fn customs<'a>(events: &[&'a Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .copied()
        .filter(|e| e["k"] == "custom" && e["name"] == name)
        .collect()
}

/// Tick number → timestamps of the `mut` events that added `div#tick-N`.
fn ticks(events: &[&Value]) -> BTreeMap<u64, Vec<i64>> {
    let mut out: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["k"] == "mut") {
        for a in e["adds"].as_array().into_iter().flatten() {
            if let Some(n) = a["node"]["a"]["id"]
                .as_str()
                .and_then(|id| id.strip_prefix("tick-"))
                .and_then(|n| n.parse().ok())
            {
                out.entry(n).or_default().push(e["t"].as_i64().unwrap());
            }
        }
    }
    out
}

fn has_meta(events: &[&Value], path: &str) -> bool {
    events
        .iter()
        .any(|e| e["k"] == "meta" && e["url"].as_str().unwrap_or("").ends_with(path))
}

/// Waits until a batch holding an event after `up_at` (epoch ms, a restart) is stored.
fn wait_flowing_again(db: &Path, up_at: i64) {
    wait_stored(
        db,
        Duration::from_secs(10),
        "a batch after the restart",
        |b| {
            events(b)
                .iter()
                .any(|e| e["t"].as_i64().unwrap_or(0) > up_at)
                .then_some(())
        },
    );
}

/// Seq numbers missing from 0..=max.
fn gaps(batches: &[StoredBatch]) -> Vec<u64> {
    let have: BTreeSet<u64> = batches.iter().map(|b| b.seq).collect();
    let max = have.iter().next_back().copied().unwrap_or(0);
    (0..=max).filter(|s| !have.contains(s)).collect()
}

/// The collector is killed (SIGKILL) for 30 s while the session keeps producing events,
/// then a new collector process comes back on the same port and database. After the page
/// leaves, the stored session is complete: seq 0..N without gaps, every DOM change exactly
/// once, the outage's events present, no `$lost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_down_for_30_s_loses_nothing() {
    const OUTAGE: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let addr = free_addr();
    let collector = Collector::start_at(&db, addr);
    let site = serve_pages(&collector.url(), "{}", 0).await;
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;
    page.goto(format!("http://{site}/ticker")).await.unwrap();
    wait_path(&page, "/ticker").await;
    wait_stored(&db, Duration::from_secs(10), "the first batches", |b| {
        (b.len() >= 3).then_some(())
    });

    collector.kill();
    let down_at = now_ms();
    let mut pokes = 0;
    let outage = Instant::now();
    while outage.elapsed() < OUTAGE {
        click(&page, "#poke").await;
        pokes += 1;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let up_at = now_ms();
    let collector = Collector::start_at(&db, addr);
    // New batches flow again.
    wait_flowing_again(&db, up_at);
    let ticked: u64 = eval(&page, "window.ticks").await;
    page.goto(format!("http://{site}/bye")).await.unwrap();
    wait_path(&page, "/bye").await;
    let batches = wait_stored(&db, Duration::from_secs(30), "the whole session", |b| {
        let ev = events(b);
        let t = ticks(&ev);
        let all_ticks = (0..ticked).all(|n| t.contains_key(&n));
        (has_meta(&ev, "/bye") && gaps(b).is_empty() && all_ticks).then(|| b.to_vec())
    });
    close_tab(page).await;
    chromium.close().await;
    drop(collector);

    let ev = events(&batches);
    let sids: BTreeSet<&str> = batches.iter().map(|b| b.sid.as_str()).collect();
    assert_eq!(sids.len(), 1, "one session");
    let seqs: Vec<u64> = batches.iter().map(|b| b.seq).collect();
    let want: Vec<u64> = (0..batches.len() as u64).collect();
    assert_eq!(seqs, want, "seq 0..N, no gaps, no duplicates");
    let t = ticks(&ev);
    for n in 0..ticked {
        assert_eq!(
            t.get(&n).map(Vec::len),
            Some(1),
            "tick {n} stored exactly once (of {ticked})"
        );
    }
    let in_outage = |t: i64| t > down_at + 500 && t < up_at - 500;
    let outage_ticks = t.values().filter(|ts| in_outage(ts[0])).count();
    let outage_clicks = ev
        .iter()
        .filter(|e| e["k"] == "click" && in_outage(e["t"].as_i64().unwrap()))
        .count();
    let outage_batches = batches
        .iter()
        .filter(|b| b.events.iter().all(|e| in_outage(e["t"].as_i64().unwrap())))
        .count();
    assert!(
        outage_ticks >= 100,
        "only {outage_ticks} DOM changes from the outage window"
    );
    assert!(
        outage_clicks + 3 >= pokes,
        "{outage_clicks} of {pokes} clicks from the outage window"
    );
    assert!(
        outage_batches >= 15,
        "{outage_batches} batches made during the outage"
    );
    assert!(
        customs(&ev, "$lost").is_empty(),
        "{:?}",
        customs(&ev, "$lost")
    );
    assert!(customs(&ev, "$breaker").is_empty());
    eprintln!(
        "collector down {} ms: {} batches, {} events, {outage_batches} batches and \
         {outage_ticks} DOM changes from the outage; total {:?}",
        up_at - down_at,
        batches.len(),
        ev.len(),
        started.elapsed()
    );
}

/// With `queueBytes: 20000` and the collector down long enough to exceed it, the oldest
/// waiting batches are dropped; once the collector is back the stream says so with a
/// `custom` `$lost` event `{batches, events, bytes}`, and the seq gaps are exactly the
/// batches it reports. Everything within the bound arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_the_oldest_and_reports_lost() {
    const OUTAGE: Duration = Duration::from_secs(12);
    const BOUND: u64 = 20_000;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let addr = free_addr();
    let collector = Collector::start_at(&db, addr);
    // 1500 random characters per DOM change: ~1 KB gzip'd, ~5 KB a second.
    let site = serve_pages(&collector.url(), &format!("{{queueBytes: {BOUND}}}"), 1500).await;
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;
    page.goto(format!("http://{site}/ticker")).await.unwrap();
    wait_path(&page, "/ticker").await;
    wait_stored(&db, Duration::from_secs(10), "the first batches", |b| {
        (b.len() >= 2).then_some(())
    });

    collector.kill();
    let down_at = now_ms();
    tokio::time::sleep(OUTAGE).await;
    let up_at = now_ms();
    let collector = Collector::start_at(&db, addr);
    wait_flowing_again(&db, up_at);
    let ticked: u64 = eval(&page, "window.ticks").await;
    page.goto(format!("http://{site}/bye")).await.unwrap();
    wait_path(&page, "/bye").await;
    // Wait for the page view that follows, and for every batch the reported loss does not
    // account for.
    let batches = wait_stored(
        &db,
        Duration::from_secs(30),
        "the session after the loss",
        |b| {
            let ev = events(b);
            let lost: u64 = customs(&ev, "$lost")
                .iter()
                .map(|l| l["data"]["batches"].as_u64().unwrap_or(0))
                .sum();
            (has_meta(&ev, "/bye") && lost > 0 && gaps(b).len() as u64 <= lost).then(|| b.to_vec())
        },
    );
    close_tab(page).await;
    chromium.close().await;
    drop(collector);

    let ev = events(&batches);
    let lost = customs(&ev, "$lost");
    let sum = |k: &str| -> u64 {
        lost.iter()
            .map(|l| {
                l["data"][k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("$lost data has no {k}: {l}"))
            })
            .sum()
    };
    let (lost_batches, lost_events, lost_bytes) = (sum("batches"), sum("events"), sum("bytes"));
    for l in &lost {
        let keys: BTreeSet<&str> = l["data"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["batches", "bytes", "events"]), "{l}");
    }
    let missing_seqs = gaps(&batches);
    assert_eq!(
        missing_seqs.len() as u64,
        lost_batches,
        "seq gaps {missing_seqs:?} vs $lost {lost:?}"
    );
    let t = ticks(&ev);
    let missing_ticks = (0..ticked).filter(|n| !t.contains_key(n)).count() as u64;
    assert!(
        missing_ticks > 0,
        "the bound was exceeded, yet no change is missing"
    );
    assert!(
        t.values().all(|ts| ts.len() == 1),
        "a DOM change stored twice"
    );
    // Every missing change is counted; a dropped batch may also have carried an earlier
    // `$lost` report (one event each).
    assert!(
        lost_events >= missing_ticks && lost_events <= missing_ticks + lost_batches,
        "$lost says {lost_events} events; {missing_ticks} DOM changes are missing"
    );
    assert!(
        lost_bytes >= 500 * missing_ticks,
        "$lost says {lost_bytes} bytes for {missing_ticks} changes of ~1 KB"
    );
    // Within the bound nothing is lost: the changes of the last ~bound bytes before the
    // collector returned are all there.
    let outage_kept = t
        .values()
        .filter(|ts| ts[0] > down_at && ts[0] < up_at)
        .count();
    assert!(
        outage_kept >= 5,
        "only {outage_kept} changes from the outage kept within a {BOUND}-byte bound"
    );
    eprintln!(
        "queue bound {BOUND} B, collector down {} ms: $lost {{batches: {lost_batches}, events: \
         {lost_events}, bytes: {lost_bytes}}}, {missing_ticks} changes missing, \
         {outage_kept} kept from the outage; total {:?}",
        up_at - down_at,
        started.elapsed()
    );
}

/// A session whose last moments make 3 100 events (about 260 KB of JSON) is delivered whole
/// when the page navigates away: what does not fit the browser's 64 KiB keepalive quota at
/// page hide waits in sessionStorage for the session's next page view. Closing the tab
/// instead delivers what fits the quota, in order, and no more (nothing can run after a
/// closed tab); no payload the page sends is over 64 KB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_last_batch_is_delivered_at_page_hide_in_64_kb_payloads() {
    const N: u64 = 3100;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let collector = Collector::start(&db);
    let tap = Tap::start(collector.addr).await;
    let site = serve_pages(&tap.url(), "{}", 0).await;
    let chromium = Chromium::launch().await;

    // Navigating away in the same task that made the events.
    let leaving = chromium.isolated_page().await;
    leaving.goto(format!("http://{site}/bulk")).await.unwrap();
    wait_path(&leaving, "/bulk").await;
    let _: u64 = eval(&leaving, &format!("bulk({N}, '/bye')")).await;
    wait_path(&leaving, "/bye").await;
    // Closing the tab right after the events.
    let closing = chromium.isolated_page().await;
    closing.goto(format!("http://{site}/bulk")).await.unwrap();
    wait_path(&closing, "/bulk").await;
    let _: u64 = eval(&closing, &format!("bulk({N}, null)")).await;
    close_tab(closing).await;

    let complete = |b: &[StoredBatch]| {
        let mut by_sid: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
        for batch in b {
            for e in batch.events.iter().filter(|e| e["name"] == "bulk") {
                by_sid
                    .entry(batch.sid.as_str())
                    .or_default()
                    .insert(e["data"]["i"].as_u64().unwrap());
            }
        }
        // The navigating session is whole; the closed one has arrived as far as it will.
        by_sid.len() == 2 && by_sid.values().any(|s| s.len() as u64 == N)
    };
    let wait = Instant::now();
    let mut batches = stored_batches(&db);
    while !complete(&batches) && wait.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        batches = stored_batches(&db);
    }
    close_tab(leaving).await;
    chromium.close().await;
    let posts: Vec<Tapped> = tap
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    drop(collector);

    // Per session: every event exactly once, seqs without gaps.
    let mut report = Vec::new();
    let sids: BTreeSet<&str> = batches.iter().map(|b| b.sid.as_str()).collect();
    assert_eq!(sids.len(), 2, "two sessions");
    for sid in sids {
        let mine: Vec<StoredBatch> = batches.iter().filter(|b| b.sid == sid).cloned().collect();
        let ev = events(&mine);
        let how = if has_meta(&ev, "/bye") {
            "navigation"
        } else {
            "tab close"
        };
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        for e in customs(&ev, "bulk") {
            *seen.entry(e["data"]["i"].as_u64().unwrap()).or_default() += 1;
        }
        let missing: Vec<u64> = (0..N).filter(|i| !seen.contains_key(i)).collect();
        let twice: Vec<u64> = seen
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(&i, _)| i)
            .collect();
        let seq_gaps = gaps(&mine);
        if how == "tab close" {
            // What fit the quota arrived, from the start of the burst on.
            assert!(
                missing.len() < N as usize && missing.first().is_none_or(|&m| m > 0),
                "tab close: {} of {N} events missing, from {:?}",
                missing.len(),
                missing.first()
            );
            eprintln!(
                "tab close: {} of {N} events delivered within the keepalive quota",
                N as usize - missing.len()
            );
            continue;
        }
        if !missing.is_empty() || !twice.is_empty() || !seq_gaps.is_empty() {
            let ranges = |v: &[u64]| {
                let mut out: Vec<String> = Vec::new();
                let mut i = 0;
                while i < v.len() {
                    let mut j = i;
                    while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
                        j += 1;
                    }
                    out.push(format!("{}..={}", v[i], v[j]));
                    i = j + 1;
                }
                out.join(", ")
            };
            report.push(format!(
                "{how}: {} of {N} events missing ({}), {} twice, seq gaps {seq_gaps:?}",
                missing.len(),
                ranges(&missing),
                twice.len()
            ));
        }
    }
    let sizes: Vec<usize> = posts.iter().map(|r| r.body_len).collect();
    let over: Vec<usize> = sizes.iter().copied().filter(|&s| s > 65_536).collect();
    eprintln!(
        "page hide: {} POSTs, largest {} bytes; total {:?}",
        posts.len(),
        sizes.iter().max().unwrap_or(&0),
        started.elapsed()
    );
    assert!(
        over.is_empty(),
        "payloads over 64 KB: {over:?} (all sizes {sizes:?})"
    );
    assert!(
        report.is_empty(),
        "not delivered whole at page hide:\n{}\n(POST sizes {sizes:?}; statuses {:?})",
        report.join("\n"),
        posts.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}
