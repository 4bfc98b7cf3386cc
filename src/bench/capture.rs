//! `understudy bench capture`: capture.js against rrweb's recorder, in the same Chromium
//! and the same run.
//!
//! The workloads are rrweb's six DOM-mutation benchmarks, reproduced as pages of our own
//! ([`workload_pages`]), and a static page of about 100 000 nodes for the full snapshot.
//! Every page is a complete document without any recorder; each defines a synchronous
//! `window.workload()`. They are served on loopback by axum.
//!
//! Each run opens a fresh tab in its own browser context (without the driver's settle
//! probe, whose MutationObserver would add work to every change), loads the page, lets it
//! calm down, starts one recorder (understudy, rrweb or none), waits until it is quiet, and
//! then, in a task of its own, notes `t0 = performance.now()` and calls `workload()`. The
//! run ends once no recorder emission has come for `quiet` ms. Per run:
//!
//! * **time**: from `t0` to the recorder's last emission (no recorder: to the end of
//!   `workload()`). On the snapshot page, `t0` is taken just before the recorder is started
//!   and the end is the emission that carries the full snapshot (capture.js: the batch with
//!   its `snap` event; rrweb: the `FullSnapshot` event, type 2).
//! * **longest task**: the longer of the longest `longtask` entry overlapping the window
//!   (PerformanceObserver, buffered) and the longest gap between two ticks of an in-page
//!   MessageChannel ping-pong running through it.
//! * **gzipped bytes**: capture.js's batch JSON strings concatenated; rrweb's events as one
//!   JSON array; compressed here with flate2 at its default level.
//!
//! Recorders alternate their order from run to run; medians are reported.
//!
//! capture.js runs with `understudyConfig = {flushMs: 0}` and hands each batch to
//! `window.__understudyEmit`, defined by the page before the script runs. rrweb's recorder
//! comes from a UMD bundle on disk (`scripts/bench-capture` installs it from npm).
//!
//! `--soak SECS` instead records a page that mutates without end with capture.js, and
//! samples the page's JavaScript heap after a forced GC every 10 s.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::de::DeserializeOwned;

use crate::simulate::driver::{is_headless_shell, Chromium, DriverConfig, Tab, TabOptions};

/// Name of the 100 000-node static page (its `workload()` does nothing).
pub const SNAPSHOT: &str = "snapshot-100k";
/// Cards on the snapshot page: 50 sections of 100 cards of 20 nodes, in a `<main>`.
const CARDS: usize = 5000;
const CARDS_PER_SECTION: usize = 100;

/// rrweb's six mutation workloads, in the order of its benchmark suite.
const WORKLOADS: [(&str, &str); 6] = [
    (
        "nested-deep",
        include_str!("capture_pages/nested-deep.html"),
    ),
    (
        "nodes-1000x10",
        include_str!("capture_pages/nodes-1000x10.html"),
    ),
    (
        "add-remove-1000x10x2",
        include_str!("capture_pages/add-remove-1000x10x2.html"),
    ),
    (
        "append-descendants-1000",
        include_str!("capture_pages/append-descendants-1000.html"),
    ),
    ("move-10000", include_str!("capture_pages/move-10000.html")),
    (
        "attributes-10000",
        include_str!("capture_pages/attributes-10000.html"),
    ),
];
const SOAK_PAGE: &str = include_str!("capture_pages/soak.html");
const HARNESS: &str = include_str!("capture_pages/harness.js");

/// Goals from issue 4, as ratios understudy/rrweb or absolute figures.
const GOAL_TIME: f64 = 0.5;
const GOAL_BYTES: f64 = 0.7;
const GOAL_LONGEST_MS: f64 = 50.0;
const GOAL_SCRIPT_BYTES: usize = 10 * 1024;
/// Seconds between heap samples in soak mode.
const SOAK_EVERY: u64 = 10;

/// Every benchmark page as (name, complete HTML document): the six workloads, then
/// [`SNAPSHOT`]. None includes a recorder; each defines a synchronous `window.workload()`
/// (a no-op on the snapshot page).
pub fn workload_pages() -> Vec<(&'static str, String)> {
    let mut pages: Vec<(&'static str, String)> = WORKLOADS
        .iter()
        .map(|(name, html)| (*name, html.to_string()))
        .collect();
    pages.push((SNAPSHOT, snapshot_page()));
    pages
}

/// The static page for the full snapshot: 100 051 nodes in the body (a `<main>`, 50
/// sections and 5 000 cards of 20 nodes: headings, text, lists, links, images without a
/// source, buttons and inputs), no whitespace text between elements.
pub fn snapshot_page() -> String {
    let mut s = String::with_capacity(CARDS * 420);
    s.push_str(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>workload: snapshot-100k</title>\
         <style>.card{display:inline-block;width:220px;margin:4px;font:12px sans-serif}</style>\
         <script>window.workload = function () {};</script></head><body><main id=\"catalogue\">",
    );
    for i in 0..CARDS {
        if i % CARDS_PER_SECTION == 0 {
            if i > 0 {
                s.push_str("</section>");
            }
            s.push_str(&format!(
                "<section class=\"shelf\" id=\"shelf-{}\">",
                i / CARDS_PER_SECTION
            ));
        }
        // 20 nodes: div, h3+text, p+text, ul + 3×(li+text), span+text, img, a+text,
        // button+text, input.
        s.push_str(&format!(
            "<div class=\"card\" id=\"card-{i}\" data-testid=\"card-{i}\">\
             <h3 class=\"title\">Item number {i}</h3>\
             <p class=\"blurb\">A short description of item {i}, with a few words of copy.</p>\
             <ul class=\"features\"><li>Feature {a}</li><li>Feature {b}</li><li>Feature {c}</li></ul>\
             <span class=\"price\">$ {p}.99</span>\
             <img alt=\"Picture of item {i}\" width=\"40\" height=\"40\">\
             <a href=\"/item/{i}?ref=list\" title=\"Open item {i}\">Details</a>\
             <button type=\"button\" class=\"add\">Add to cart</button>\
             <input type=\"text\" name=\"note-{i}\" value=\"note {i}\" placeholder=\"Note\">\
             </div>",
            a = i % 7,
            b = i % 11,
            c = i % 13,
            p = 5 + i % 90,
        ));
    }
    s.push_str("</section></main></body></html>");
    s
}

/// The benchmark pages on loopback. The server stops when this is dropped.
pub struct PageServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    /// URL of the page named `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{}", self.addr, name)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `pages` as `http://127.0.0.1:PORT/NAME` (a tokio runtime must be running).
pub async fn serve_pages(pages: Vec<(String, String)>) -> anyhow::Result<PageServer> {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    use axum::response::{Html, IntoResponse};
    let pages: Arc<HashMap<String, String>> = Arc::new(pages.into_iter().collect());
    let app =
        axum::Router::new()
            .route(
                "/{name}",
                axum::routing::get(
                    |State(p): State<Arc<HashMap<String, String>>>,
                     UrlPath(name): UrlPath<String>| async move {
                        match p.get(&name) {
                            Some(html) => Html(html.clone()).into_response(),
                            None => StatusCode::NOT_FOUND.into_response(),
                        }
                    },
                ),
            )
            .with_state(pages);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(PageServer { addr, task })
}

/// The in-page harness: sinks for both recorders, long-task observer, ticker. `keep`: keep
/// every emission (benchmark) or only count capture.js's bytes (soak). `config` is
/// `window.understudyConfig`.
pub fn harness_js(keep: bool, config: &str) -> String {
    HARNESS
        .replace("__KEEP__", if keep { "true" } else { "false" })
        .replace("__CONFIG__", config)
}

/// Which recorder a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Recorder {
    None,
    Understudy,
    Rrweb,
}

impl Recorder {
    fn name(self) -> &'static str {
        match self {
            Recorder::None => "none",
            Recorder::Understudy => "understudy",
            Recorder::Rrweb => "rrweb",
        }
    }
}

/// What `__bench.result()` answers.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageResult {
    t0: f64,
    t_work: f64,
    n0: usize,
    times: Vec<f64>,
    longtask: f64,
    gap: f64,
    /// When the longest task started, ms after t0.
    longest_at: f64,
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Time to the last emission (or to the snapshot's), ms; `None` if nothing came.
    time_ms: Option<f64>,
    longest_ms: f64,
    /// When the longest task started, ms after t0.
    longest_at: f64,
    gz: Option<usize>,
    /// capture.js said `$breaker`: it stopped recording the DOM.
    breaker: bool,
}

/// Options of `understudy bench capture`.
#[derive(Debug, Clone)]
pub struct Options {
    /// rrweb's recorder as a UMD bundle (`@rrweb/record`'s `record.umd.min.cjs` or
    /// `rrweb`'s `rrweb.umd.min.cjs`); without it only capture.js and the baseline run.
    pub rrweb: Option<PathBuf>,
    /// capture.js minified (terser), for the script-size line.
    pub capture_min: Option<PathBuf>,
    /// Runs per workload and recorder.
    pub runs: usize,
    /// Workloads to run (all when empty).
    pub only: Vec<String>,
    /// Quiet time that ends a run, ms.
    pub quiet_ms: u64,
    /// Write one CPU profile per workload and recorder here, and print where the time went.
    pub profile: Option<PathBuf>,
    /// Write each recorder's recording of its last run per workload here.
    pub dump: Option<PathBuf>,
    /// Options for rrweb's `record()` besides `emit`, as a JSON object (e.g.
    /// `{"maskTextSelector":"*","maskAllInputs":true}` to mask like capture.js does).
    pub rrweb_options: Option<String>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn driver_config() -> DriverConfig {
    DriverConfig {
        call_timeout: Duration::from_secs(60),
        nav_timeout: Duration::from_secs(60),
        ..DriverConfig::default()
    }
}

/// Evaluates `js` in the tab; a document that went away is an error here.
async fn ev<T: DeserializeOwned>(tab: &Tab, js: &str) -> anyhow::Result<T> {
    tab.eval::<T>(js)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the page went away during `{}`", short(js)))
}

fn short(js: &str) -> String {
    js.chars().take(60).collect()
}

/// Waits for two animation frames and 200 ms, so that the first layout of a big page is
/// done before anything is measured.
async fn calm(tab: &Tab) -> anyhow::Result<()> {
    ev::<bool>(
        tab,
        "new Promise(function (res) { requestAnimationFrame(function () { \
         requestAnimationFrame(function () { setTimeout(function () { res(true); }, 200); }); }); })",
    )
    .await?;
    Ok(())
}

/// Waits until the task the harness started last is over, no emission came for `quiet_ms`
/// and the main thread was less than 3/4 busy in that time (a time-sliced recorder still at
/// work keeps it busier); with `need_emit`, until at least one emission came since t0, with
/// `need_snap` until the full snapshot did. At most `max`.
async fn wait_quiet(
    tab: &Tab,
    quiet_ms: u64,
    need_emit: bool,
    need_snap: bool,
    max: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let js = format!(
        "new Promise(function (res) {{ var s = performance.now();
           (function p() {{ if (window.__bench.quiet({quiet_ms}, {need_emit}, {need_snap})) return res(true);
             if (performance.now() - s > 2000) return res(false);
             setTimeout(p, 10); }})(); }})"
    );
    loop {
        if ev::<bool>(tab, &js).await? {
            return Ok(());
        }
        if start.elapsed() > max {
            let why: serde_json::Value = ev(
                tab,
                "(() => { const B = window.__bench; return {now: performance.now(), \
                 tWork: B.tWork, emissions: B.times.length, n0: B.n0, \
                 lastEmissions: B.times.slice(-5), lastGaps: B.gaps.slice(-5)}; })()",
            )
            .await
            .unwrap_or_default();
            anyhow::bail!("the page was not quiet within {max:?}: {why}");
        }
    }
}

fn gzip_len(parts: &[&[u8]], level: flate2::Compression) -> usize {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
    for p in parts {
        enc.write_all(p).expect("writing to a Vec");
    }
    enc.finish().expect("writing to a Vec").len()
}

/// The whole recording, gzipped at flate2's default level: capture.js's batches
/// concatenated, rrweb's events as one JSON array.
fn recording_gz(recorder: Recorder, strings: &[String]) -> usize {
    let level = flate2::Compression::default();
    match recorder {
        Recorder::Rrweb => {
            let mut parts: Vec<&[u8]> = vec![b"["];
            for (i, s) in strings.iter().enumerate() {
                if i > 0 {
                    parts.push(b",");
                }
                parts.push(s.as_bytes());
            }
            parts.push(b"]");
            gzip_len(&parts, level)
        }
        _ => {
            let parts: Vec<&[u8]> = strings.iter().map(|s| s.as_bytes()).collect();
            gzip_len(&parts, level)
        }
    }
}

/// Whether an emission carries the full snapshot.
fn is_snapshot(recorder: Recorder, s: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Ty {
        r#type: i64,
    }
    match recorder {
        Recorder::Understudy => s.contains("\"k\":\"snap\""),
        Recorder::Rrweb => serde_json::from_str::<Ty>(s).is_ok_and(|t| t.r#type == 2),
        Recorder::None => false,
    }
}

/// The recorders' sources, ready for an indirect eval in the page.
struct Sources {
    understudy: String,
    rrweb: Option<String>,
}

impl Sources {
    fn get(&self, r: Recorder) -> Option<&str> {
        match r {
            Recorder::Understudy => Some(&self.understudy),
            Recorder::Rrweb => self.rrweb.as_deref(),
            Recorder::None => None,
        }
    }
}

/// One run of one recorder on one page, in a fresh browser context.
async fn one_run(
    chromium: &Chromium,
    server: &PageServer,
    page: &str,
    recorder: Recorder,
    sources: &Sources,
    opts: &Options,
    profile: Option<&Path>,
) -> anyhow::Result<Sample> {
    let tab = chromium
        .open_unprobed(&TabOptions {
            capture: false,
            init_script: Some(harness_js(true, "{flushMs: 0}")),
            ..TabOptions::default()
        })
        .await?;
    let r = measure(&tab, server, page, recorder, sources, opts, profile).await;
    let _ = chromium.dispose(tab).await;
    r.with_context(|| format!("{page} with recorder {}", recorder.name()))
}

async fn measure(
    tab: &Tab,
    server: &PageServer,
    page: &str,
    recorder: Recorder,
    sources: &Sources,
    opts: &Options,
    profile: Option<&Path>,
) -> anyhow::Result<Sample> {
    let max = Duration::from_secs(60);
    let snapshot = page == SNAPSHOT;
    let recording = recorder != Recorder::None;
    tab.goto(&server.url(page)).await?;
    calm(tab).await?;
    if let Some(src) = sources.get(recorder) {
        let set = format!(
            "(window.__bench.src = {}, true)",
            serde_json::to_string(src)?
        );
        ev::<bool>(tab, &set).await?;
    }
    if let (Recorder::Rrweb, Some(o)) = (recorder, &opts.rrweb_options) {
        ev::<bool>(tab, &format!("(window.__bench.rrOptions = {o}, true)")).await?;
    }
    if recording && !snapshot {
        // Start recording unmeasured, and let the initial snapshot go out.
        ev::<bool>(
            tab,
            &format!("window.__bench.inject('{}', false)", recorder.name()),
        )
        .await?;
        wait_quiet(tab, opts.quiet_ms, true, true, max).await?;
    }
    if profile.is_some() {
        tab.profile_start(100).await?;
    }
    if recording && snapshot {
        ev::<bool>(
            tab,
            &format!("window.__bench.inject('{}', true)", recorder.name()),
        )
        .await?;
    } else {
        ev::<bool>(tab, "window.__bench.go()").await?;
    }
    wait_quiet(tab, opts.quiet_ms, recording, recording && snapshot, max).await?;
    let res: PageResult = ev(tab, "window.__bench.result()").await?;
    if let Some(dir) = profile {
        let p = tab.profile_stop().await?;
        let file = dir.join(format!("{page}-{}.cpuprofile", recorder.name()));
        std::fs::write(&file, serde_json::to_vec(&p)?)
            .with_context(|| format!("writing {}", file.display()))?;
        print_profile(page, recorder, &p);
    }
    let longest_ms = res.longtask.max(res.gap);
    if !recording {
        return Ok(Sample {
            time_ms: Some(res.t_work - res.t0),
            longest_ms,
            longest_at: res.longest_at,
            gz: None,
            breaker: false,
        });
    }
    let strings: Vec<String> = ev(tab, "window.__bench.strings()").await?;
    anyhow::ensure!(
        strings.len() == res.times.len(),
        "{} emissions but {} times",
        strings.len(),
        res.times.len()
    );
    if let Some(dir) = &opts.dump {
        let file = dir.join(format!("{page}-{}.ndjson", recorder.name()));
        std::fs::write(&file, strings.join("\n") + "\n")
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let end = if snapshot {
        (res.n0..strings.len())
            .find(|&i| is_snapshot(recorder, &strings[i]))
            .map(|i| res.times[i])
    } else if res.times.len() > res.n0 {
        res.times.last().copied()
    } else {
        None
    };
    Ok(Sample {
        time_ms: end.map(|e| e - res.t0),
        longest_ms,
        longest_at: res.longest_at,
        gz: Some(recording_gz(recorder, &strings)),
        breaker: recorder == Recorder::Understudy
            && strings.iter().any(|s| s.contains("\"$breaker\"")),
    })
}

/// Prints where a run's CPU time went: per innermost recorder function on the stack (with
/// the native and engine work it called), and garbage collection, over the whole profile.
fn print_profile(page: &str, recorder: Recorder, profile: &serde_json::Value) {
    let script = match recorder {
        Recorder::Understudy => "understudy-capture.js",
        Recorder::Rrweb => "rrweb-record.js",
        Recorder::None => return,
    };
    let nodes = profile["nodes"].as_array().cloned().unwrap_or_default();
    let mut parent: HashMap<i64, i64> = HashMap::new();
    let mut frame: HashMap<i64, (String, String, i64)> = HashMap::new();
    for n in &nodes {
        let id = n["id"].as_i64().unwrap_or(-1);
        let cf = &n["callFrame"];
        frame.insert(
            id,
            (
                cf["functionName"].as_str().unwrap_or("").to_string(),
                cf["url"].as_str().unwrap_or("").to_string(),
                cf["lineNumber"].as_i64().unwrap_or(-1) + 1,
            ),
        );
        for c in n["children"].as_array().into_iter().flatten() {
            if let Some(c) = c.as_i64() {
                parent.insert(c, id);
            }
        }
    }
    let samples: Vec<i64> = profile["samples"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
        .unwrap_or_default();
    let deltas: Vec<f64> = profile["timeDeltas"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    let mut by_fn: HashMap<String, f64> = HashMap::new();
    let (mut total, mut gc) = (0.0, 0.0);
    for (i, &leaf) in samples.iter().enumerate() {
        let ms = deltas.get(i + 1).copied().unwrap_or(0.0) / 1000.0;
        let leaf_name = frame.get(&leaf).map(|f| f.0.as_str()).unwrap_or("");
        if leaf_name == "(garbage collector)" {
            gc += ms;
            continue;
        }
        let mut at = Some(leaf);
        while let Some(id) = at {
            if let Some((name, url, line)) = frame.get(&id) {
                if url.ends_with(script) {
                    let name = if name.is_empty() { "(anonymous)" } else { name };
                    *by_fn.entry(format!("{name}:{line}")).or_default() += ms;
                    total += ms;
                    break;
                }
            }
            at = parent.get(&id).copied();
        }
    }
    let mut top: Vec<(String, f64)> = by_fn.into_iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let list: Vec<String> = top
        .iter()
        .take(8)
        .map(|(f, ms)| format!("{f} {ms:.0}"))
        .collect();
    println!(
        "  profile {page} / {}: {total:.0} ms in {script} (innermost function:line, ms: {}); GC {gc:.0} ms",
        recorder.name(),
        list.join(", ")
    );
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Medians of one recorder's runs on one page.
#[derive(Debug, Clone, Default)]
struct Summary {
    time_ms: Option<f64>,
    /// Runs in which nothing (or no snapshot) was emitted.
    missing: usize,
    longest_ms: Option<f64>,
    gz: Option<f64>,
    breakers: usize,
    /// Every run's (time, longest task, when it started after t0), in run order.
    runs: Vec<(Option<f64>, f64, f64)>,
}

fn summarise(samples: &[Sample]) -> Summary {
    Summary {
        time_ms: median(samples.iter().filter_map(|s| s.time_ms).collect()),
        missing: samples.iter().filter(|s| s.time_ms.is_none()).count(),
        longest_ms: median(samples.iter().map(|s| s.longest_ms).collect()),
        gz: median(
            samples
                .iter()
                .filter_map(|s| s.gz.map(|g| g as f64))
                .collect(),
        ),
        breakers: samples.iter().filter(|s| s.breaker).count(),
        runs: samples
            .iter()
            .map(|s| (s.time_ms, s.longest_ms, s.longest_at))
            .collect(),
    }
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
}

fn fmt_ratio(r: Option<f64>, goal: f64) -> String {
    match r {
        Some(r) => format!("{r:.2} {}", if r <= goal { "ok" } else { "MISS" }),
        None => "-".to_string(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// `name@version` of the npm package a bundle belongs to, from the nearest package.json.
fn package_label(bundle: &Path) -> String {
    for dir in bundle.ancestors().skip(1).take(4) {
        let Ok(text) = std::fs::read_to_string(dir.join("package.json")) else {
            continue;
        };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if let (Some(n), Some(ver)) = (v["name"].as_str(), v["version"].as_str()) {
                return format!("{n}@{ver}");
            }
        }
    }
    "unknown package".to_string()
}

/// Runs the side-by-side benchmark and prints its table.
pub fn run(opts: Options) -> anyhow::Result<()> {
    anyhow::ensure!(opts.runs > 0, "--runs must be at least 1");
    if let Some(o) = &opts.rrweb_options {
        let v: serde_json::Value =
            serde_json::from_str(o).context("--rrweb-options must be a JSON object")?;
        anyhow::ensure!(v.is_object(), "--rrweb-options must be a JSON object");
    }
    let rrweb_src = match &opts.rrweb {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading rrweb's recorder {}", p.display()))?,
        ),
        None => None,
    };
    let capture_min = match &opts.capture_min {
        Some(p) => Some(
            std::fs::read(p)
                .with_context(|| format!("reading minified capture.js {}", p.display()))?,
        ),
        None => None,
    };
    let pages: Vec<(&'static str, String)> = workload_pages()
        .into_iter()
        .filter(|(n, _)| opts.only.is_empty() || opts.only.iter().any(|o| o == n))
        .collect();
    anyhow::ensure!(
        !pages.is_empty(),
        "--only matches no workload; there are: {}",
        workload_pages()
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for dir in opts.profile.iter().chain(&opts.dump) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let sources = Sources {
        understudy: format!(
            "{}\n//# sourceURL=understudy-capture.js\n",
            crate::capture::SCRIPT
        ),
        rrweb: rrweb_src.map(|s| format!("{s}\n//# sourceURL=rrweb-record.js\n")),
    };
    let recorders: Vec<Recorder> = if sources.rrweb.is_some() {
        vec![Recorder::None, Recorder::Understudy, Recorder::Rrweb]
    } else {
        vec![Recorder::None, Recorder::Understudy]
    };
    let rt = runtime()?;
    let (version, rows) = rt.block_on(async {
        let server = serve_pages(
            pages
                .iter()
                .map(|(n, h)| (n.to_string(), h.clone()))
                .collect(),
        )
        .await?;
        let config = driver_config();
        let shell = is_headless_shell(&config.executable);
        let chromium = Chromium::launch(config).await?;
        let version = format!(
            "{}{}",
            chromium.version().await?,
            if shell { " (headless shell)" } else { "" }
        );
        let mut rows = Vec::new();
        let result: anyhow::Result<()> = async {
            for (page, _) in &pages {
                let started = Instant::now();
                let mut samples: HashMap<Recorder, Vec<Sample>> = HashMap::new();
                for i in 0..opts.runs {
                    let mut order = recorders.clone();
                    if i % 2 == 1 {
                        order.reverse();
                    }
                    for r in order {
                        let s = one_run(&chromium, &server, page, r, &sources, &opts, None).await?;
                        samples.entry(r).or_default().push(s);
                    }
                }
                if let Some(dir) = &opts.profile {
                    for &r in &recorders[1..] {
                        one_run(&chromium, &server, page, r, &sources, &opts, Some(dir)).await?;
                    }
                }
                eprintln!(
                    "  {page}: {} runs in {:.1} s",
                    opts.runs * recorders.len(),
                    started.elapsed().as_secs_f64()
                );
                let get = |r| summarise(samples.get(&r).map(Vec::as_slice).unwrap_or(&[]));
                rows.push((
                    *page,
                    get(Recorder::None),
                    get(Recorder::Understudy),
                    samples
                        .contains_key(&Recorder::Rrweb)
                        .then(|| get(Recorder::Rrweb)),
                ));
            }
            Ok(())
        }
        .await;
        chromium.close().await;
        result?;
        anyhow::Ok((version, rows))
    })?;

    println!(
        "bench capture: {version}; {} runs per workload and recorder, fresh browser context \
         each, alternating order; medians",
        opts.runs
    );
    println!(
        "  rrweb: {}",
        opts.rrweb.as_ref().map_or_else(
            || "not given (pass --rrweb, or use scripts/bench-capture)".to_string(),
            |p| format!("{} ({})", package_label(p), p.display())
        )
    );
    println!(
        "  rrweb options: {} (rrweb's defaults record text as is; capture.js masks it by default)",
        opts.rrweb_options.as_deref().unwrap_or("none besides emit")
    );
    println!(
        "  understudy: capture.js {} with understudyConfig {{flushMs: 0}}, batches to \
         window.__understudyEmit",
        crate::capture::script_version()
    );
    println!(
        "  time: t0 just before workload() (snapshot-100k: before the recorder starts) to the \
         last emission (snapshot-100k: the one with the full snapshot); run ends after {} ms \
         quiet",
        opts.quiet_ms
    );
    println!(
        "  longest task: max(longtask observer, MessageChannel ticker gap) from t0 to the end \
         of the run; gz: whole recording, flate2 gzip level 6 (default)"
    );
    println!();
    let header = format!(
        "{:<24} | {:>8} | {:>13} | {:>9} | {:>15} | {:>22} | {:>19} | {:>15}",
        "workload",
        "none ms",
        "understudy ms",
        "rrweb ms",
        "ratio (<=0.5)",
        "longest task n/u/r ms",
        "gz bytes u/r",
        "ratio (<=0.7)"
    );
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    let mut notes = Vec::new();
    let mut runs = Vec::new();
    for (page, none, us, rr) in &rows {
        let rr = rr.clone().unwrap_or_default();
        let mut u_ms = fmt_ms(us.time_ms);
        if us.breakers > 0 {
            u_ms = format!("{u_ms} B{}", us.breakers);
            notes.push(format!(
                "{page}: capture.js tripped its circuit breaker ($breaker) in {} of {} runs: it \
                 stopped recording the DOM, so its time and bytes cover less than rrweb's",
                us.breakers, opts.runs
            ));
        }
        for (who, s) in [("none", none), ("understudy", us), ("rrweb", &rr)] {
            if !s.runs.is_empty() {
                let list: Vec<String> = s
                    .runs
                    .iter()
                    .map(|(t, l, at)| format!("{}/{l:.0}@{at:.0}", fmt_ms(*t)))
                    .collect();
                runs.push(format!("{page:<24} {who:<10} {}", list.join("  ")));
            }
            if s.missing > 0 && who != "none" {
                notes.push(format!(
                    "{page}: {who} emitted nothing (or no snapshot) in {} runs",
                    s.missing
                ));
            }
        }
        let longest = format!(
            "{}/{}/{}",
            fmt_ms(none.longest_ms),
            fmt_ms(us.longest_ms),
            fmt_ms(rr.longest_ms)
        );
        let gz = format!(
            "{}/{}",
            us.gz.map_or("-".to_string(), |g| format!("{g:.0}")),
            rr.gz.map_or("-".to_string(), |g| format!("{g:.0}"))
        );
        println!(
            "{:<24} | {:>8} | {:>13} | {:>9} | {:>15} | {:>22} | {:>19} | {:>15}",
            page,
            fmt_ms(none.time_ms),
            u_ms,
            fmt_ms(rr.time_ms),
            fmt_ratio(ratio(us.time_ms, rr.time_ms), GOAL_TIME),
            longest,
            gz,
            fmt_ratio(ratio(us.gz, rr.gz), GOAL_BYTES),
        );
        if *page == SNAPSHOT {
            if let Some(l) = us.longest_ms {
                notes.push(format!(
                    "{SNAPSHOT}: understudy's longest task {l:.1} ms (goal <= {GOAL_LONGEST_MS} \
                     ms: {}); rrweb's {}",
                    if l <= GOAL_LONGEST_MS { "ok" } else { "MISS" },
                    rr.longest_ms
                        .map_or("-".to_string(), |v| format!("{v:.1} ms"))
                ));
            }
        }
    }
    println!();
    println!("  per run, in run order: time ms / longest task ms @ its start, ms after t0");
    for r in &runs {
        println!("    {r}");
    }
    for n in &notes {
        println!("  note: {n}");
    }
    print_sizes(capture_min.as_deref(), opts.rrweb.as_deref())?;
    Ok(())
}

/// The script-size line: both recorders minified, gzipped (level 9 and 6).
fn print_sizes(capture_min: Option<&[u8]>, rrweb: Option<&Path>) -> anyhow::Result<()> {
    let gz = |b: &[u8]| {
        (
            gzip_len(&[b], flate2::Compression::best()),
            gzip_len(&[b], flate2::Compression::default()),
        )
    };
    let (ours, label) = match capture_min {
        Some(b) => (b.to_vec(), "minified (terser)"),
        None => (
            crate::capture::SCRIPT.as_bytes().to_vec(),
            "NOT minified (pass --capture-min)",
        ),
    };
    let (u9, u6) = gz(&ours);
    print!(
        "script size, gzip -9 (-6): understudy capture.js {label} {} B -> {u9} B ({u6} B)",
        ours.len()
    );
    if let Some(p) = rrweb {
        let b = std::fs::read(p)?;
        let (r9, r6) = gz(&b);
        print!(
            " | rrweb {} {} B -> {r9} B ({r6} B) | ratio {:.2}",
            p.file_name().unwrap_or_default().to_string_lossy(),
            b.len(),
            u9 as f64 / r9 as f64
        );
    }
    println!(
        " | goal <= {} B: {}",
        GOAL_SCRIPT_BYTES,
        if u9 <= GOAL_SCRIPT_BYTES {
            "ok"
        } else {
            "MISS"
        }
    );
    Ok(())
}

/// One heap sample of the soak.
#[derive(Debug, serde::Deserialize)]
struct SoakState {
    nodes: usize,
    bytes: f64,
    batches: usize,
    breaker: bool,
}

/// Records the soak page with capture.js for `secs` seconds and prints the page's JS heap
/// (after a forced GC) every [`SOAK_EVERY`] seconds.
pub fn soak(secs: u64) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let server = serve_pages(vec![("soak".to_string(), SOAK_PAGE.to_string())]).await?;
        let config = driver_config();
        let chromium = Chromium::launch(config).await?;
        let version = chromium.version().await?;
        let tab = chromium
            .open_unprobed(&TabOptions {
                capture: false,
                // capture.js's defaults, as on a real page; batches are counted, not kept.
                init_script: Some(harness_js(false, "{}")),
                ..TabOptions::default()
            })
            .await?;
        let r = soak_in(&tab, &server, secs, &version).await;
        let _ = chromium.dispose(tab).await;
        chromium.close().await;
        r
    })
}

async fn soak_in(tab: &Tab, server: &PageServer, secs: u64, version: &str) -> anyhow::Result<()> {
    tab.goto(&server.url("soak")).await?;
    calm(tab).await?;
    let src = format!(
        "{}\n//# sourceURL=understudy-capture.js\n",
        crate::capture::SCRIPT
    );
    ev::<bool>(
        tab,
        &format!(
            "(window.__bench.src = {}, true)",
            serde_json::to_string(&src)?
        ),
    )
    .await?;
    ev::<bool>(tab, "window.__bench.inject('understudy', false)").await?;
    wait_quiet(tab, 300, true, true, Duration::from_secs(30)).await?;
    // The ticker only served the wait; over a soak its gaps would pile up in the page.
    ev::<bool>(
        tab,
        "(window.__bench.ticking = false, window.__bench.gaps = [], true)",
    )
    .await?;
    println!(
        "bench capture --soak {secs}: {version}; capture.js {} (default config) on a page that \
         adds, removes, retexts and re-attributes rows every 50 ms, with a 100-change \
         attribute storm on one node per step; JS heap after HeapProfiler.collectGarbage",
        crate::capture::script_version()
    );
    println!(
        "{:>6} | {:>10} | {:>11} | {:>9} | {:>13} | {:>8}",
        "t s", "heap MB", "heap tot MB", "DOM nodes", "emitted MB", "batches"
    );
    let state = "({nodes: document.getElementsByTagName('*').length, bytes: window.__bench.bytes, \
                 batches: window.__bench.batches, breaker: window.__bench.breaker})";
    let mut heap: Vec<(u64, f64)> = Vec::new();
    let sample = |t: u64| async move {
        tab.collect_garbage().await?;
        let (used, total) = tab.heap_usage().await?;
        let s: SoakState = ev(tab, state).await?;
        println!(
            "{:>6} | {:>10.2} | {:>11.2} | {:>9} | {:>13.2} | {:>8}{}",
            t,
            used / 1e6,
            total / 1e6,
            s.nodes,
            s.bytes / 1e6,
            s.batches,
            if s.breaker { "  $breaker seen" } else { "" }
        );
        anyhow::Ok((used, s))
    };
    let (used, _) = sample(0).await?;
    heap.push((0, used));
    ev::<bool>(tab, "window.startSoak()").await?;
    let start = Instant::now();
    let mut next = SOAK_EVERY;
    let mut last_state = None;
    while next <= secs {
        let due = start + Duration::from_secs(next);
        tokio::time::sleep_until(due.into()).await;
        let (used, s) = sample(next).await?;
        heap.push((next, used));
        last_state = Some(s);
        next += SOAK_EVERY;
    }
    let steps: u64 = ev(tab, "window.stopSoak()").await?;
    let first = heap[0].1;
    let after = heap.get(1).map_or(first, |h| h.1);
    let last = heap.last().map_or(first, |h| h.1);
    let max = heap.iter().map(|h| h.1).fold(0.0, f64::max);
    println!(
        "heap MB: recording, before the page mutates {:.2}; first sample while mutating {:.2}, \
         last {:.2}, max {:.2}; last - first {:+.2} MB over {} s; {} mutation steps",
        first / 1e6,
        after / 1e6,
        last / 1e6,
        max / 1e6,
        (last - after) / 1e6,
        heap.last().map_or(0, |h| h.0).saturating_sub(SOAK_EVERY),
        steps
    );
    if let Some(s) = last_state {
        if s.breaker {
            println!("note: capture.js tripped its circuit breaker: it stopped recording the DOM");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_complete_and_recorder_free() {
        let pages = workload_pages();
        assert_eq!(pages.len(), 7);
        for (name, html) in &pages {
            assert!(html.starts_with("<!doctype html>"), "{name}");
            assert!(html.contains("window.workload = function"), "{name}");
            assert!(html.trim_end().ends_with("</html>"), "{name}");
            // Their comments name rrweb's benchmarks, but no recorder is loaded or called.
            for bad in [
                "<script src",
                "capture.js",
                "understudyConfig",
                "__understudyEmit",
                "rrwebRecord",
                "rrweb.record",
            ] {
                assert!(!html.contains(bad), "{name} mentions {bad}");
            }
        }
    }

    #[test]
    fn snapshot_page_has_about_100k_nodes() {
        let html = snapshot_page();
        // Each card is 20 nodes: 11 elements with text children (9 carry text) ...
        let cards = html.matches("class=\"card\"").count();
        assert_eq!(cards, CARDS);
        assert_eq!(cards * 20 + CARDS / CARDS_PER_SECTION + 1, 100_051);
    }

    #[test]
    fn harness_placeholders_are_filled() {
        let js = harness_js(true, "{flushMs: 0}");
        assert!(!js.contains("__KEEP__") && !js.contains("__CONFIG__"));
        assert!(js.contains("window.understudyConfig = {flushMs: 0};"));
    }

    #[test]
    fn rrweb_recording_is_one_json_array() {
        let strings = vec!["{\"type\":4}".to_string(), "{\"type\":2}".to_string()];
        let a = recording_gz(Recorder::Rrweb, &strings);
        let b = gzip_len(
            &[b"[{\"type\":4},{\"type\":2}]"],
            flate2::Compression::default(),
        );
        assert_eq!(a, b);
        assert!(is_snapshot(Recorder::Rrweb, &strings[1]));
        assert!(!is_snapshot(Recorder::Rrweb, &strings[0]));
        assert!(is_snapshot(
            Recorder::Understudy,
            "{\"events\":[{\"k\":\"snap\",\"t\":1}]}"
        ));
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
