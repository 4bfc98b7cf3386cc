//! Privacy you can prove: real headless Chromium loads fixture pages full of distinctive
//! canary strings (text, attributes, inputs typed with CDP input, URLs, headers, bodies,
//! errors, shadow DOM, iframes, templates, mutations, SPA routes), capture.js from a real
//! collector process records them under default settings, and then every byte the collector
//! stored (SQLite database, -wal, -shm, anything else in its folder) is searched for every
//! canary in several encodings. Zero hits, and the session must really be there.
//!
//! The other tests check the ways to let data through or keep it out: unmask (attribute and
//! selector list), exclude (size only, no observer work), the header allow-list and consent.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, InsertTextParams,
};
use chromiumoxide::Page;
use common::*;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Every secret canary starts with this; any occurrence in stored bytes is a leak.
const MARKER: &str = "zqcanary";
/// Text that an unmask rule lets through starts with this.
const VISIBLE: &str = "zqvisible";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/privacy");

/// A `traceparent` the fixture server answers `/api/trace` with.
const TRACE_RESPONSE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

// ---------------------------------------------------------------------------------------
// Canaries

/// The canaries of one test run: `zqcanary` + a name + a random suffix, random digit
/// strings, and a registry of all of them for the final search.
struct Canaries {
    suffix: String,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
    secret: Mutex<BTreeMap<String, String>>,
    digits: Mutex<BTreeMap<String, String>>,
    visible: Mutex<BTreeMap<String, String>>,
}

impl Canaries {
    fn new() -> Arc<Canaries> {
        let seed: u64 = rand::rng().random();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let suffix: String = (0..6)
            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
            .collect();
        eprintln!("canary suffix {suffix} (seed {seed})");
        Arc::new(Canaries {
            suffix,
            rng: Mutex::new(rng),
            secret: Mutex::default(),
            digits: Mutex::default(),
            visible: Mutex::default(),
        })
    }

    /// A secret text canary, e.g. `zqcanarytitleqwerty`.
    fn text(&self, name: &str) -> String {
        let v = format!("{MARKER}{name}{}", self.suffix);
        self.secret.lock().unwrap().insert(name.into(), v.clone());
        v
    }

    /// A secret canary with non-ASCII characters (masked per character, JSON-escaped
    /// differently).
    fn unicode(&self, name: &str) -> String {
        let v = format!("{MARKER}{name}\u{dc}\u{f1}\u{20ac}\u{1f600}{}", self.suffix);
        self.secret.lock().unwrap().insert(name.into(), v.clone());
        v
    }

    /// A secret run of 10 random digits starting with 9 (a phone number, an account).
    fn digits(&self, name: &str) -> String {
        let mut map = self.digits.lock().unwrap();
        map.entry(name.into())
            .or_insert_with(|| {
                let mut rng = self.rng.lock().unwrap();
                let mut s = String::from("9");
                for _ in 0..9 {
                    s.push(char::from(b'0' + rng.random_range(0..10u8)));
                }
                s
            })
            .clone()
    }

    /// A secret 16-digit card number that passes the Luhn check.
    fn card(&self, name: &str) -> String {
        let mut map = self.digits.lock().unwrap();
        map.entry(name.into())
            .or_insert_with(|| {
                let mut rng = self.rng.lock().unwrap();
                let mut d: Vec<u8> = vec![4];
                for _ in 0..14 {
                    d.push(rng.random_range(0..10u8));
                }
                // Luhn: double every second digit from the right, counting the check digit.
                let sum: u32 = d
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(i, &x)| {
                        let x = u32::from(x);
                        if i % 2 == 0 {
                            let y = x * 2;
                            if y > 9 {
                                y - 9
                            } else {
                                y
                            }
                        } else {
                            x
                        }
                    })
                    .sum();
                d.push(((10 - sum % 10) % 10) as u8);
                d.iter().map(|x| char::from(b'0' + x)).collect()
            })
            .clone()
    }

    /// Text an unmask rule must let through, e.g. `zqvisibleheadingqwerty`.
    fn visible(&self, name: &str) -> String {
        let v = format!("{VISIBLE}{name}{}", self.suffix);
        self.visible.lock().unwrap().insert(name.into(), v.clone());
        v
    }

    fn secret_digits(&self) -> Vec<String> {
        self.digits.lock().unwrap().values().cloned().collect()
    }

    fn visibles(&self) -> Vec<String> {
        self.visible.lock().unwrap().values().cloned().collect()
    }

    fn secret_count(&self) -> usize {
        self.secret.lock().unwrap().len() + self.digits.lock().unwrap().len()
    }
}

/// `*` for every non-space character: what masked text and attribute values look like.
fn masked(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() { c } else { '*' })
        .collect()
}

/// `*` per UTF-16 unit: capture.js masks attribute values with `"*".repeat(v.length)`.
fn masked_attr(s: &str) -> String {
    "*".repeat(s.encode_utf16().count())
}

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The base64 text `s` produces wherever it sits in a longer input: for each of the three
/// alignments, the characters that depend on `s`'s bytes alone.
fn base64_forms(s: &str) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    for k in 0..3usize {
        let mut input = vec![0u8; k];
        input.extend(s.as_bytes());
        let full = input.len() / 3 * 3;
        let skip = [0, 2, 3][k];
        for alphabet in [STD, URL] {
            let enc = base64(&input[..full], alphabet);
            let end = full / 3 * 4;
            if end > skip + 4 {
                out.push(enc[skip..end].to_string());
            }
        }
    }
    out
}

/// What to search stored bytes for: each string in several encodings. `true` means the
/// search ignores ASCII case.
fn needles(s: &str) -> Vec<(String, String, bool)> {
    let mut v = vec![("as is".to_string(), s.to_string(), true)];
    let pct: String = s.bytes().map(|b| format!("%{b:02x}")).collect();
    v.push(("percent-encoded".into(), pct, true));
    let json_u: String = s.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
    v.push(("JSON \\u-escaped".into(), json_u, true));
    let ent: String = s.chars().map(|c| format!("&#{};", c as u32)).collect();
    v.push(("HTML entities".into(), ent, true));
    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    v.push(("hex".into(), hex, true));
    let le: String = s.chars().flat_map(|c| [c, '\0']).collect();
    v.push(("UTF-16LE".into(), le, true));
    let be: String = s.chars().flat_map(|c| ['\0', c]).collect();
    v.push(("UTF-16BE".into(), be, true));
    v.push(("reversed".into(), s.chars().rev().collect(), true));
    for f in base64_forms(s)
        .into_iter()
        .chain(base64_forms(&s.to_ascii_uppercase()))
    {
        v.push(("base64".into(), f, false));
    }
    v
}

/// Every hit of any secret canary in `bytes`, described with its surroundings.
fn leaks(bytes: &[u8], canaries: &Canaries) -> Vec<String> {
    let exact = String::from_utf8_lossy(bytes).into_owned();
    let lower = exact.to_ascii_lowercase();
    let mut secrets = vec![MARKER.to_string()];
    secrets.extend(canaries.secret_digits());
    let mut hits = Vec::new();
    for secret in &secrets {
        for (how, needle, ci) in needles(secret) {
            let (hay, needle) = if ci {
                (&lower, needle.to_ascii_lowercase())
            } else {
                (&exact, needle)
            };
            let mut from = 0;
            while let Some(at) = hay[from..].find(&needle) {
                let at = from + at;
                let ctx = |i: usize| {
                    let mut i = i.min(exact.len());
                    while !exact.is_char_boundary(i) {
                        i -= 1;
                    }
                    i
                };
                let (a, b) = (ctx(at.saturating_sub(120)), ctx(at + needle.len() + 120));
                hits.push(format!("{secret:?} ({how}) at {at}: …{}…", &exact[a..b]));
                from = at + needle.len().max(1);
                if hits.len() > 40 {
                    return hits;
                }
            }
        }
    }
    hits
}

// ---------------------------------------------------------------------------------------
// The fixture site

#[derive(Clone)]
struct Site {
    /// Where pages send batches (`{{COLLECTOR}}`).
    collector: String,
    /// The `src` of capture.js (`{{CAPTURE}}`).
    capture: String,
    canaries: Arc<Canaries>,
}

/// Replaces `{{COLLECTOR}}`, `{{CAPTURE}}` and canary tokens (`{{C:name}}` text,
/// `{{U:name}}` non-ASCII text, `{{D:name}}` digits, `{{V:name}}` visible text).
fn render(src: &str, site: &Site) -> String {
    let src = src
        .replace("{{COLLECTOR}}", &site.collector)
        .replace("{{CAPTURE}}", &site.capture);
    let mut out = String::with_capacity(src.len() * 2);
    let mut rest = src.as_str();
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").expect("unclosed {{") + i;
        let token = &rest[i + 2..end];
        let (kind, name) = token.split_once(':').expect("token is KIND:name");
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase()),
            "canary names are lower-case letters: {token}"
        );
        let c = &site.canaries;
        out.push_str(&match kind {
            "C" => c.text(name),
            "U" => c.unicode(name),
            "D" => c.digits(name),
            "V" => c.visible(name),
            _ => panic!("unknown token {token}"),
        });
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A fixture file (`dir` is "" or "static"), rendered.
fn fixture(site: &Site, dir: &str, file: &str) -> Option<String> {
    if !file
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        || file.starts_with('.')
    {
        return None;
    }
    let src = std::fs::read_to_string(Path::new(FIXTURES).join(dir).join(file)).ok()?;
    Some(render(&src, site))
}

fn with_type(body: String, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn page(State(site): State<Site>, UrlPath(name): UrlPath<String>) -> Response {
    match fixture(&site, "", &format!("{name}.html")) {
        Some(html) => with_type(html, "text/html; charset=utf-8"),
        None => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

async fn asset(State(site): State<Site>, UrlPath(file): UrlPath<String>) -> Response {
    let kind = if file.ends_with(".js") {
        "application/javascript"
    } else {
        "text/css"
    };
    match fixture(&site, "static", &file) {
        Some(body) => with_type(body, kind),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// An API answer that carries canaries in its headers, a cookie and its body.
async fn echo(State(site): State<Site>) -> Response {
    let c = &site.canaries;
    let body = serde_json::json!({
        "echo": c.text("respbody"),
        "email": format!("{}@example.com", c.text("respemail")),
        "card": c.card("respcard"),
    })
    .to_string();
    let mut h = HeaderMap::new();
    let mut set = |k: &'static str, v: String| {
        h.insert(k, HeaderValue::from_str(&v).unwrap());
    };
    set("content-type", "application/json".into());
    set("cache-control", "no-store".into());
    set("x-resp-canary", c.text("resphdr"));
    set(
        "set-cookie",
        format!("sid={}; Path=/", c.text("respcookie")),
    );
    set(
        "server-timing",
        format!("db;desc=\"{}\"", c.text("servertiming")),
    );
    (h, body).into_response()
}

/// An answer whose only interesting header is a `traceparent` (and a canary header).
async fn trace(State(site): State<Site>) -> Response {
    let mut h = HeaderMap::new();
    h.insert("traceparent", HeaderValue::from_static(TRACE_RESPONSE));
    h.insert(
        "x-resp-canary",
        HeaderValue::from_str(&site.canaries.text("traceresphdr")).unwrap(),
    );
    (h, "{}").into_response()
}

async fn script() -> Response {
    with_type(
        understudy::capture::SCRIPT.to_string(),
        "application/javascript",
    )
}

/// Serves the fixture pages on loopback. `capture_from_site` serves capture.js from the
/// site itself (so the page needs no request to the collector to load it).
async fn serve_fixtures(
    collector: &str,
    canaries: Arc<Canaries>,
    capture_from_site: bool,
) -> SocketAddr {
    let site = Site {
        collector: collector.to_string(),
        capture: if capture_from_site {
            "/capture.js".to_string()
        } else {
            format!("{collector}/capture.js")
        },
        canaries,
    };
    let app = Router::new()
        .route("/p/{name}", get(page))
        .route("/static/{file}", get(asset))
        .route("/api/echo", any(echo))
        .route("/api/trace", get(trace))
        .route("/capture.js", get(script))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .with_state(site);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

// ---------------------------------------------------------------------------------------
// Driving the page

/// Waits until the page says it is ready (`window.__ready`), at most 15 s.
async fn ready(page: &Page, what: &str) {
    let start = Instant::now();
    loop {
        let ok: Option<bool> = page
            .evaluate("window.__ready === true")
            .await
            .ok()
            .and_then(|v| v.into_value().ok());
        if ok == Some(true) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{what} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Opens `url` and waits for the page's own readiness flag.
async fn open(page: &Page, url: &str) {
    page.goto(url).await.unwrap();
    ready(page, url).await;
}

/// Clicks the point a JS expression returns as `[x, y]`.
async fn click_js(page: &Page, js: &str) {
    let (x, y): (f64, f64) = eval(page, js).await;
    click_at(page, x, y).await;
}

/// Types with real key events (`keyDown` with text, `keyUp`), one per character.
async fn key_type(page: &Page, text: &str) {
    for ch in text.chars() {
        let s = ch.to_string();
        page.execute(
            DispatchKeyEventParams::builder()
                .r#type(DispatchKeyEventType::KeyDown)
                .key(s.clone())
                .text(s.clone())
                .unmodified_text(s.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
        page.execute(
            DispatchKeyEventParams::builder()
                .r#type(DispatchKeyEventType::KeyUp)
                .key(s)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    }
}

/// Presses a non-text key such as ArrowDown.
async fn press(page: &Page, key: &str, vk: i64) {
    for kind in [
        DispatchKeyEventType::RawKeyDown,
        DispatchKeyEventType::KeyUp,
    ] {
        page.execute(
            DispatchKeyEventParams::builder()
                .r#type(kind)
                .key(key)
                .code(key)
                .windows_virtual_key_code(vk)
                .native_virtual_key_code(vk)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    }
}

/// Inserts text as an IME would, in one go (one `input` event).
async fn insert_text(page: &Page, text: &str) {
    page.execute(InsertTextParams::new(text)).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Reading what was stored

fn all_events(batches: &[StoredBatch]) -> Vec<&Value> {
    batches.iter().flat_map(|b| b.events.iter()).collect()
}

fn kind<'a>(events: &[&'a Value], k: &str) -> Vec<&'a Value> {
    events.iter().copied().filter(|e| e["k"] == k).collect()
}

/// Calls `f` on every node of a serialised tree, through children, shadow roots, iframe
/// documents and template contents.
fn walk<'a>(node: &'a Value, f: &mut impl FnMut(&'a Value)) {
    f(node);
    if let Some(c) = node["c"].as_array() {
        for n in c {
            walk(n, f);
        }
    }
    for k in ["shadow", "frame", "tpl"] {
        if node[k].is_object() {
            walk(&node[k], f);
        }
    }
}

/// Every serialised tree in the events: snapshots, added subtrees and new roots.
fn trees<'a>(events: &[&'a Value]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for e in events {
        if e["k"] == "snap" {
            out.push(&e["node"]);
        }
        for list in ["adds", "roots"] {
            if let Some(a) = e[list].as_array() {
                out.extend(a.iter().map(|x| &x["node"]));
            }
        }
    }
    out
}

/// Every text value recorded anywhere in the events: text nodes and text changes.
fn texts(events: &[&Value]) -> Vec<String> {
    let mut out = Vec::new();
    for t in trees(events) {
        walk(t, &mut |n| {
            if let Some(x) = n["x"].as_str() {
                out.push(x.to_string());
            }
        });
    }
    for e in events {
        if let Some(tt) = e["texts"].as_array() {
            out.extend(tt.iter().filter_map(|t| t["x"].as_str().map(String::from)));
        }
    }
    out
}

/// Texts found under a given kind of root (`shadow`, `frame`, `tpl`): in snapshots, in roots
/// added later, and in subtrees added under such a root afterwards (an iframe's document may
/// be recorded empty and filled by the parser's mutations).
fn texts_under(events: &[&Value], root: &str) -> Vec<String> {
    use std::collections::HashSet;
    let mut out = Vec::new();
    let mut inside: HashSet<u64> = HashSet::new();
    let mut grab = |n: &Value, inside: &mut HashSet<u64>| {
        walk(n, &mut |m| {
            inside.extend(m["id"].as_u64());
            if let Some(x) = m["x"].as_str() {
                out.push(x.to_string());
            }
        })
    };
    let nt = match root {
        "frame" => 9,
        _ => 11,
    };
    for e in events {
        let mut found = Vec::new();
        if e["k"] == "snap" {
            walk(&e["node"], &mut |n| {
                if n[root].is_object() {
                    found.push(&n[root]);
                }
            });
        }
        for a in e["adds"].as_array().into_iter().flatten() {
            if a["p"].as_u64().is_some_and(|p| inside.contains(&p)) {
                found.push(&a["node"]);
            } else {
                walk(&a["node"], &mut |n| {
                    if n[root].is_object() {
                        found.push(&n[root]);
                    }
                });
            }
        }
        for r in e["roots"].as_array().into_iter().flatten() {
            if r["node"]["nt"] == nt {
                found.push(&r["node"]);
            }
        }
        for f in found {
            grab(f, &mut inside);
        }
    }
    out
}

/// Every attribute map recorded: on nodes and in attribute changes.
fn attr_maps<'a>(events: &[&'a Value]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for t in trees(events) {
        walk(t, &mut |n| {
            if n["a"].is_object() {
                out.push(&n["a"]);
            }
        });
    }
    for e in events {
        if let Some(a) = e["attrs"].as_array() {
            out.extend(a.iter().map(|x| &x["a"]));
        }
    }
    out
}

fn has_attr(events: &[&Value], name: &str, value: &str) -> bool {
    attr_maps(events).iter().any(|a| a[name] == value)
}

/// The events of the page view whose meta URL ends with `path`.
fn page_view<'a>(batches: &'a [StoredBatch], path: &str) -> Vec<&'a Value> {
    let pvid = batches
        .iter()
        .find(|b| {
            b.events
                .iter()
                .any(|e| e["k"] == "meta" && e["url"].as_str().unwrap_or("").ends_with(path))
        })
        .unwrap_or_else(|| panic!("no page view of {path}"))
        .pvid
        .clone();
    batches
        .iter()
        .filter(|b| b.pvid == pvid)
        .flat_map(|b| b.events.iter())
        .collect()
}

fn seqs_contiguous(batches: &[StoredBatch]) -> bool {
    batches
        .iter()
        .enumerate()
        .all(|(i, b)| b.seq == i as u64 && b.sid == batches[0].sid)
}

fn custom_named<'a>(events: &[&'a Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .copied()
        .filter(|e| e["k"] == "custom" && e["name"] == name)
        .collect()
}

/// A collector process storing into a folder of its own.
fn collector_in(dir: &Path) -> (Collector, PathBuf, PathBuf) {
    let data = dir.join("collector-data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("sessions.db");
    (Collector::start(&db), db, data)
}

fn assert_no_leaks(data: &Path, canaries: &Canaries) -> usize {
    let bytes = all_bytes(data);
    let hits = leaks(&bytes, canaries);
    assert!(
        hits.is_empty(),
        "{} canary hit(s) in the {} stored bytes:\n{}",
        hits.len(),
        bytes.len(),
        hits.join("\n")
    );
    bytes.len()
}

// ---------------------------------------------------------------------------------------
// Tests

/// The search itself: a canary is found in every encoding it knows, inside binary noise and
/// at every base64 alignment; stored-looking data without canaries gives no hit.
#[test]
fn the_search_finds_a_canary_in_every_encoding() {
    let c = Canaries::new();
    let secret = c.unicode("probe");
    let digits = c.card("probe");
    let noisy = |s: &[u8]| {
        let mut b = vec![0x13u8, 0xfe, b'x', 0];
        b.extend(s);
        b.extend([0xff, b'"', 0x80]);
        b
    };
    let clean = br#"{"k":"snap","x":"*********","msg":"Card 0 for <email>","t":1764912345678}"#;
    assert!(leaks(&noisy(clean), &c).is_empty());
    for s in [&secret, &digits] {
        for (how, needle, _) in needles(s) {
            assert!(
                !leaks(&noisy(needle.as_bytes()), &c).is_empty(),
                "{how} of {s}: {needle}"
            );
        }
        for form in [
            s.to_uppercase(),
            serde_json::to_string(s).unwrap(),
            format!("https://x.example/?q={s}&r=1"),
        ] {
            assert!(!leaks(&noisy(form.as_bytes()), &c).is_empty(), "{form}");
        }
        for pad in 0..3 {
            for upper in [false, true] {
                let mut text = "#".repeat(pad + 1);
                text.push_str(&if upper { s.to_uppercase() } else { s.clone() });
                text.push_str("#####");
                const STD: &[u8; 64] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                let enc = base64(text.as_bytes(), STD);
                assert!(
                    !leaks(&noisy(enc.as_bytes()), &c).is_empty(),
                    "base64 at {pad}: {enc}"
                );
            }
        }
    }
}

/// Twelve page views of canary-laden fixtures under default settings; not one canary in any
/// stored byte, and everything the pages did is there (masked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_reaches_any_stored_byte() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (collector, db, data) = collector_in(dir.path());
    let canaries = Canaries::new();
    let c = canaries.clone();
    let site = serve_fixtures(&collector.url(), canaries.clone(), false).await;
    let base = format!("http://{site}");
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;
    let gap = Duration::from_millis(2);

    // 1. Text of every kind; the page URL carries canaries in query and fragment.
    open(
        &page,
        &format!(
            "{base}/p/text?email={}%40example.com&token={}&phone={}#{}",
            c.text("pageemail"),
            c.text("pagetoken"),
            c.digits("pagephone"),
            c.text("pagefrag")
        ),
    )
    .await;
    click(&page, "#btn").await;
    click(&page, "#bold").await;
    click(&page, "#h1").await;
    // 2. Attributes (followed by a link whose query and fragment carry canaries).
    click(&page, "#to-attrs").await;
    wait_path(&page, "/p/attrs").await;
    ready(&page, "attrs").await;
    click(&page, "#a-button").await;
    click(&page, "#logo").await;
    click(&page, "#abbr").await;
    click(&page, "#a-ibtn").await;
    // 3. URLs in href/src/action.
    click(&page, "#a-link").await;
    wait_path(&page, "/p/urls").await;
    ready(&page, "urls").await;
    // 4. A form of every input type, typed into with CDP input.
    click(&page, "#to-form").await;
    wait_path(&page, "/p/form").await;
    ready(&page, "form").await;
    let typed_first = c.text("typedfirst");
    let typed_email = format!("{}@example.com", c.text("typedemail"));
    let typed_password = c.text("typedpassword");
    let typed_tel = c.digits("typedtel");
    let typed_number = c.digits("typednumber");
    let typed_search = c.text("typedsearch");
    let typed_url = format!("https://example.com/?u={}", c.text("typedurl"));
    let typed_card = c.card("typedcard");
    let typed_notes = c.text("typednotes");
    let typed_editor = c.text("typededitor");
    let typed_preset = c.text("typedpreset");
    type_into(&page, "#first", &typed_first, gap).await;
    type_into(&page, "#preset", &typed_preset, gap).await;
    type_into(&page, "#email", &typed_email, gap).await;
    click(&page, "#password").await;
    key_type(&page, &typed_password).await;
    click(&page, "#tel").await;
    key_type(&page, &typed_tel).await;
    type_into(&page, "#number", &typed_number, gap).await;
    type_into(&page, "#search", &typed_search, gap).await;
    click(&page, "#url").await;
    insert_text(&page, &typed_url).await;
    type_into(&page, "#card", &typed_card, gap).await;
    click(&page, "#notes").await;
    key_type(&page, &format!(" {typed_notes}")).await;
    click(&page, "#editor").await;
    key_type(&page, &format!(" {typed_editor}")).await;
    click(&page, "#check").await;
    click(&page, "#radio").await;
    let _: bool = eval(&page, "document.getElementById('choice').focus(), true").await;
    press(&page, "ArrowDown", 40).await;
    let chosen: i64 = eval(&page, "document.getElementById('choice').selectedIndex").await;
    if chosen != 1 {
        // The headless shell may not move a closed <select> with the keyboard.
        let _: bool = eval(
            &page,
            "(() => { const s = document.getElementById('choice'); s.selectedIndex = 1;
               s.dispatchEvent(new Event('input', {bubbles: true}));
               s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()",
        )
        .await;
    }
    let shown: String = eval(&page, "document.getElementById('mirror').textContent").await;
    assert!(
        shown.starts_with("You typed"),
        "the page echoes typed text: {shown}"
    );
    // 5. Submitting the form puts every typed value into the next page's query string.
    click(&page, "#send").await;
    wait_path(&page, "/p/shadow").await;
    let search: String = eval(&page, "location.search").await;
    assert!(search.contains(&typed_first), "GET form carries the values");
    ready(&page, "shadow").await;
    let typed_shadow = c.text("typedshadow");
    click_js(
        &page,
        "(() => { const r = document.getElementById('host').shadowRoot.getElementById('sin')
           .getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()",
    )
    .await;
    insert_text(&page, &typed_shadow).await;
    click_js(
        &page,
        "(() => { const r = document.getElementById('host').shadowRoot.getElementById('sp')
           .getBoundingClientRect(); return [r.x + 5, r.y + r.height / 2]; })()",
    )
    .await;
    // 6. A same-origin iframe and a srcdoc iframe.
    open(&page, &format!("{base}/p/frame?s={}", c.text("gotoframe"))).await;
    let start = Instant::now();
    loop {
        let ok: bool = eval(
            &page,
            "(() => { try { return document.getElementById('fr').contentWindow.__ready === true; }
               catch (e) { return false; } })()",
        )
        .await;
        if ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "iframe not ready"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let typed_inner = c.text("typedinner");
    click_js(
        &page,
        "(() => { const f = document.getElementById('fr'), o = f.getBoundingClientRect();
           const r = f.contentDocument.getElementById('innerinput').getBoundingClientRect();
           return [o.x + f.clientLeft + r.x + r.width / 2, o.y + f.clientTop + r.y + r.height / 2]; })()",
    )
    .await;
    insert_text(&page, &typed_inner).await;
    // 7. <template> content, stamped into the page on click.
    open(
        &page,
        &format!("{base}/p/template#{}", c.text("gototplfrag")),
    )
    .await;
    click(&page, "#stamp").await;
    // 8. Text and attributes added and changed after load.
    open(
        &page,
        &format!("{base}/p/mutations?m={}", c.text("gotomut")),
    )
    .await;
    click(&page, "#reveal").await;
    // 9. fetch and XHR.
    open(&page, &format!("{base}/p/net?n={}", c.text("gotonet"))).await;
    // 10. Errors.
    open(&page, &format!("{base}/p/errors?e={}", c.text("gotoerr"))).await;
    // 11. Client-side routing.
    open(&page, &format!("{base}/p/spa?s={}", c.text("gotospa"))).await;
    click(&page, "#spa-link").await;
    let back_at: String = eval(&page, "window.spaSteps()").await;
    assert_eq!(back_at, "/p/spa/item");
    // 12. Leave for a last page, say "done", and close the tab (pagehide).
    open(&page, &format!("{base}/p/bye?b={}", c.text("gotobye"))).await;
    let _: bool = eval(&page, "understudy('event', 'done'), true").await;
    close_tab(page).await;

    const PAGES: [&str; 12] = [
        "/p/text",
        "/p/attrs",
        "/p/urls",
        "/p/form",
        "/p/shadow",
        "/p/frame",
        "/p/template",
        "/p/mutations",
        "/p/net",
        "/p/errors",
        "/p/spa",
        "/p/bye",
    ];
    // Stored: one session, every batch (seq 0..N), the last page view's leave.
    let batches = wait_stored(&db, Duration::from_secs(20), "the whole session", |b| {
        let ev = all_events(b);
        let left = ev
            .iter()
            .filter(|e| e["k"] == "nav" && e["nav"] == "leave")
            .count();
        (!b.is_empty()
            && seqs_contiguous(b)
            && left >= PAGES.len()
            && !custom_named(&ev, "done").is_empty())
        .then(|| b.to_vec())
    });
    chromium.close().await;
    collector.kill();
    let recorded = started.elapsed();

    // Nothing leaked, in any encoding, in any file the collector wrote.
    let stored_bytes = assert_no_leaks(&data, &canaries);
    // The search did look at the events (a control: these are stored and not secret).
    let hay = String::from_utf8_lossy(&all_bytes(&data)).into_owned();
    for known in [
        format!("\"url\":\"{base}/p/spa/other\""),
        masked(&c.text("hone")),
        "\"k\":\"snap\"".to_string(),
    ] {
        assert!(
            hay.contains(&known),
            "control {known:?} not in the stored bytes"
        );
    }

    // And it is not vacuous: the session is complete and shows what the pages did, masked.
    // Every miss is collected, so that one run lists them all.
    let mut misses: Vec<String> = Vec::new();
    macro_rules! check {
        ($cond:expr, $($msg:tt)+) => {
            if !$cond {
                misses.push(format!($($msg)+));
            }
        };
    }
    let ev = all_events(&batches);
    let sids: BTreeSet<&str> = batches.iter().map(|b| b.sid.as_str()).collect();
    assert_eq!(sids.len(), 1, "one session");
    let metas: Vec<String> = kind(&ev, "meta")
        .iter()
        .map(|m| m["url"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = PAGES.iter().map(|p| format!("{base}{p}")).collect();
    assert_eq!(metas, want, "one page view per page, URLs without query");
    let pvids: BTreeSet<&str> = batches.iter().map(|b| b.pvid.as_str()).collect();
    assert_eq!(pvids.len(), PAGES.len());
    check!(
        kind(&ev, "snap").len() == PAGES.len(),
        "{} snapshots for {} page views",
        kind(&ev, "snap").len(),
        PAGES.len()
    );
    check!(ev.len() > 100, "only {} events", ev.len());

    // Text keeps its length, masked.
    let text = page_view(&batches, "/p/text");
    let tx = texts(&text);
    for name in [
        "hone", "plain", "bold", "td", "caption", "button", "svgtext",
    ] {
        let want = masked(&c.text(name));
        check!(
            tx.contains(&want),
            "text page: masked {name} ({want}) missing"
        );
    }
    check!(
        tx.contains(&masked(&format!(" {} ", c.text("comment")))),
        "text page: masked comment missing"
    );
    check!(
        tx.contains(&masked(&c.digits("tdphone"))),
        "text page: masked digits missing"
    );
    // Attributes keep their length, masked; URLs keep origin and path.
    let attrs = page_view(&batches, "/p/attrs");
    for (attr, name) in [
        ("alt", "alt"),
        ("title", "abbrtitle"),
        ("placeholder", "placeholder"),
        ("aria-label", "arialabel"),
        ("data-foo", "datafoo"),
        ("foo-bar", "custom"),
        ("value", "valuetext"),
        ("content", "content"),
    ] {
        check!(
            has_attr(&attrs, attr, &masked_attr(&c.text(name))),
            "attrs page: {attr} not stored masked"
        );
    }
    let urls = page_view(&batches, "/p/urls");
    for (attr, value) in [
        ("href", format!("{base}/p/form")),
        ("href", "mailto:".to_string()),
        ("href", "https://other.example/login".to_string()),
        ("action", format!("{base}/p/none")),
        ("src", format!("{base}/img.png")),
        ("href", format!("{base}/static/style.css")),
        ("src", format!("{base}/static/noop.js")),
    ] {
        check!(
            has_attr(&urls, attr, &value),
            "urls page: no {attr}={value}"
        );
    }
    // Clicks: on text, buttons, images and links.
    let clicks = kind(&ev, "click");
    check!(clicks.len() >= 20, "{} clicks", clicks.len());
    match clicks.iter().find(|k| k["tgt"]["eid"] == "to-form") {
        Some(k) => check!(
            k["tgt"]["href"] == format!("{base}/p/form"),
            "link target href: {}",
            k["tgt"]
        ),
        None => misses.push("no click on the form link".into()),
    }
    // Inputs: class and length only.
    let inputs = kind(&ev, "input");
    let input = |eid: &str| inputs.iter().find(|i| i["tgt"]["eid"] == eid).copied();
    let len16 = |s: &str| s.encode_utf16().count() as u64;
    let preset = format!("{}{}", c.text("presetvalue"), typed_preset);
    for (eid, cls, len) in [
        ("first", "short_text", len16(&typed_first)),
        ("preset", "long_text", len16(&preset)),
        ("email", "email", len16(&typed_email)),
        ("password", "other", len16(&typed_password)),
        ("tel", "phone", len16(&typed_tel)),
        ("number", "number", len16(&typed_number)),
        ("card", "card", len16(&typed_card)),
        ("search", "short_text", len16(&typed_search)),
    ] {
        match input(eid) {
            Some(i) => check!(
                i["cls"] == cls && i["len"].as_u64() == Some(len),
                "input #{eid}: want {cls}/{len}, got {i}"
            ),
            None => misses.push(format!("no input event for #{eid}")),
        }
    }
    for eid in ["url", "notes", "editor"] {
        check!(input(eid).is_some(), "no input event for #{eid}");
    }
    for eid in ["check", "radio", "choice"] {
        match input(eid) {
            Some(i) => check!(i["idx"] == 1, "input #{eid}: {i}"),
            None => misses.push(format!("no input event for #{eid}")),
        }
    }
    check!(!kind(&ev, "submit").is_empty(), "no submit event");
    // Shadow DOM, iframe and template text: recorded, masked.
    let shadow = page_view(&batches, "/p/shadow");
    let st = texts_under(&shadow, "shadow");
    for name in ["shadowtext", "nestedshadow", "slotshadow"] {
        check!(
            st.contains(&masked(&c.text(name))),
            "shadow page: masked {name} not under a shadow root"
        );
    }
    let sx = texts(&shadow);
    for name in ["shadowlater", "shadowadd", "lateshadow"] {
        check!(
            sx.contains(&masked(&c.text(name))),
            "shadow page: masked {name} (added after load) missing"
        );
    }
    check!(
        kind(&shadow, "input")
            .iter()
            .any(|i| i["len"].as_u64() == Some(len16(&typed_shadow))),
        "no input event for the field in the shadow root"
    );
    let frame = page_view(&batches, "/p/frame");
    let ft = texts_under(&frame, "frame");
    // What the recording knows of the iframes, for the miss messages below.
    let mut frames_seen = Vec::new();
    for t in trees(&frame) {
        walk(t, &mut |n| {
            if n["tag"] == "iframe" {
                let mut count = 0;
                if n["frame"].is_object() {
                    walk(&n["frame"], &mut |_| count += 1);
                }
                frames_seen.push(format!(
                    "iframe#{} id {}: frame {} ({count} nodes)",
                    n["a"]["id"].as_str().unwrap_or("?"),
                    n["id"],
                    if n["frame"].is_object() {
                        "present"
                    } else {
                        "absent"
                    }
                ));
            }
        });
    }
    for e in kind(&frame, "mut") {
        for r in e["roots"].as_array().into_iter().flatten() {
            let mut count = 0;
            walk(&r["node"], &mut |_| count += 1);
            frames_seen.push(format!(
                "roots: host {} nt {} ({count} nodes)",
                r["id"], r["node"]["nt"]
            ));
        }
    }
    let frames_seen = frames_seen.join("; ");
    check!(
        ft.contains(&masked(&c.text("innertext"))) || ft.contains(&masked(&c.text("innerlater"))),
        "frame page: masked iframe text missing [{frames_seen}]"
    );
    check!(
        ft.contains(&masked(&c.text("srcdoc"))),
        "frame page: masked srcdoc text missing [{frames_seen}]"
    );
    let tpl = page_view(&batches, "/p/template");
    let tt = texts_under(&tpl, "tpl");
    check!(
        tt.contains(&masked(&c.text("tpltext"))),
        "template page: masked template content missing"
    );
    check!(
        texts(&tpl).contains(&masked(&c.text("tpllater"))) || tt.len() > 1,
        "template page: change to template content missing"
    );
    let stamped = kind(&tpl, "mut").iter().any(|m| {
        m["adds"].as_array().into_iter().flatten().any(|a| {
            a["node"]["x"] == masked(&c.text("tpltext")) || a["node"]["a"]["class"] == "row"
        })
    });
    check!(
        stamped,
        "template page: the stamped copy is not in a mut event"
    );
    // Mutations.
    let muts = page_view(&batches, "/p/mutations");
    let mx = texts(&muts);
    for name in [
        "mutappend",
        "mutli",
        "muth",
        "mutcdata",
        "mutcontent",
        "mutshadow",
        "revealed",
    ] {
        check!(
            mx.contains(&masked(&c.text(name))),
            "mutations page: masked {name} missing"
        );
    }
    check!(
        has_attr(&muts, "title", &masked_attr(&c.text("mutattrtitle"))),
        "mutations page: changed title not stored masked"
    );
    check!(
        has_attr(&muts, "href", &format!("{base}/p/none")),
        "mutations page: changed href not stored as origin+path"
    );
    check!(
        kind(&muts, "mut").len() >= 8,
        "mutations page: few mut events"
    );
    // Network: method, URL without query, status.
    let nets = kind(&ev, "net");
    let echo: Vec<_> = nets
        .iter()
        .filter(|n| n["url"] == format!("{base}/api/echo"))
        .collect();
    check!(
        echo.len() == 4,
        "want 3 fetches and 1 XHR to /api/echo, got {echo:?}"
    );
    check!(
        echo.iter()
            .all(|n| n["status"] == 200 && n.get("hdr").is_none()),
        "net events: {echo:?}"
    );
    check!(
        nets.iter()
            .any(|n| n["status"] == 0 && n["url"] == "http://127.0.0.1:9/"),
        "the failed fetch is missing: {nets:?}"
    );
    // Errors: scrubbed, not dropped.
    let errs = kind(&ev, "err");
    check!(errs.len() >= 6, "only {} errors: {errs:?}", errs.len());
    for k in ["console", "uncaught", "rejection"] {
        check!(errs.iter().any(|e| e["ek"] == k), "no {k} error");
    }
    check!(
        errs.iter()
            .any(|e| e["msg"].as_str().unwrap_or("").contains("<email>")),
        "no scrubbed e-mail in {errs:?}"
    );
    check!(
        errs.iter()
            .any(|e| e["src"].as_str() == Some(&format!("{base}/static/throw.js"))),
        "no error from the script file: {errs:?}"
    );
    // Client-side navigations, without query or fragment.
    let navs = kind(&ev, "nav");
    for k in ["push", "pop", "hash", "leave"] {
        check!(navs.iter().any(|n| n["nav"] == k), "no nav {k}");
    }
    check!(
        navs.iter()
            .any(|n| n["url"] == format!("{base}/p/spa/item")),
        "no nav to /p/spa/item: {navs:?}"
    );
    check!(
        navs.iter()
            .any(|n| n["url"] == format!("{base}/p/spa/other")),
        "no nav to /p/spa/other: {navs:?}"
    );
    let canary_count = canaries.secret_count();
    eprintln!(
        "canary test: {} pages, {} events, {canary_count} canaries, {stored_bytes} stored bytes, \
         recorded in {recorded:?}, total {:?}",
        PAGES.len(),
        ev.len(),
        started.elapsed()
    );
    assert!(canary_count > 250, "only {canary_count} canaries served");
    assert!(
        misses.is_empty(),
        "no canary leaked, but the recording misses {} thing(s):\n{}",
        misses.len(),
        misses.join("\n")
    );
}

/// `data-understudy-unmask` and a configured selector list keep text (and attributes, but
/// not values or query strings); a canary outside stays masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmask_attribute_and_selectors_keep_their_text_only() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, db, data) = collector_in(dir.path());
    let canaries = Canaries::new();
    let c = canaries.clone();
    let site = serve_fixtures(&collector.url(), canaries.clone(), false).await;
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;

    open(&page, &format!("http://{site}/p/unmask")).await;
    click(&page, "#um-btn").await;
    click(&page, "#out-btn").await;
    let typed = c.text("umtyped");
    type_into(&page, "#um-input", &typed, Duration::from_millis(2)).await;
    type_into(
        &page,
        "#um-ta",
        &c.text("umtatyped"),
        Duration::from_millis(2),
    )
    .await;
    type_into(
        &page,
        "#um-ce",
        &c.text("umcetyped"),
        Duration::from_millis(2),
    )
    .await;
    click(&page, "#um-btn").await;
    // A click on an unmasked element around a contenteditable (its padding).
    click_js(
        &page,
        "(() => { const r = document.getElementById('um-wrap').getBoundingClientRect();
           return [r.x + 4, r.y + 4]; })()",
    )
    .await;
    let _: bool = eval(&page, "later(), understudy('flush'), true").await;
    let batches = wait_stored(&db, Duration::from_secs(15), "unmask page", |b| {
        let ev = all_events(b);
        let tx = texts(&ev);
        (tx.contains(&c.visible("umlater")) && tx.contains(&c.visible("newpublic")))
            .then(|| b.to_vec())
    });
    chromium.close().await;
    collector.kill();

    let ev = all_events(&batches);
    let tx = texts(&ev);
    for name in [
        "umheading",
        "umtext",
        "umlabel",
        "umlink",
        "umbtn",
        "pubtext",
        "pubspan",
        "umlater",
        "publater",
        "newpublic",
    ] {
        assert!(tx.contains(&c.visible(name)), "{name} kept: {tx:?}");
    }
    for (attr, name) in [
        ("title", "umtitle"),
        ("placeholder", "umph"),
        ("aria-label", "umaria"),
        ("data-note", "pubattr"),
    ] {
        assert!(has_attr(&ev, attr, &c.visible(name)), "{attr} kept");
    }
    // Values and URLs stay private even inside.
    assert!(has_attr(&ev, "value", &masked_attr(&c.text("umvalue"))));
    assert!(has_attr(&ev, "href", &format!("http://{site}/p/none")));
    assert!(
        tx.contains(&masked(&c.text("umtextarea"))),
        "textarea masked"
    );
    assert!(
        tx.contains(&masked(&c.text("umce"))),
        "contenteditable masked"
    );
    assert!(
        kind(&ev, "click")
            .iter()
            .any(|k| k["tgt"]["eid"] == "um-wrap"),
        "the click around the contenteditable"
    );
    // Outside: masked, including a near-miss class and text set later.
    for name in ["outside", "nearmiss", "masklater", "outsidelater", "outbtn"] {
        assert!(tx.contains(&masked(&c.text(name))), "{name} masked: {tx:?}");
    }
    // Targets name themselves only when unmasked.
    let clicks = kind(&ev, "click");
    let um_btn = clicks
        .iter()
        .find(|k| k["tgt"]["eid"] == "um-btn")
        .expect("click on #um-btn");
    assert_eq!(um_btn["tgt"]["name"], c.visible("umaria"));
    let out_btn = clicks
        .iter()
        .find(|k| k["tgt"]["eid"] == "out-btn")
        .expect("click on #out-btn");
    assert!(out_btn["tgt"].get("name").is_none(), "{out_btn}");
    let inputs = kind(&ev, "input");
    let um_input = inputs
        .iter()
        .find(|i| i["tgt"]["eid"] == "um-input")
        .expect("input on #um-input");
    assert_eq!(um_input["tgt"]["label"], c.visible("umlabel"));
    let value = format!("{}{}", c.text("umvalue"), typed);
    assert_eq!(um_input["len"].as_u64(), Some(value.len() as u64));

    // The bytes: every visible string is there, no secret is.
    let bytes = all_bytes(&data);
    let hay = String::from_utf8_lossy(&bytes);
    for v in canaries.visibles() {
        assert!(hay.contains(&v), "{v} stored");
    }
    assert_no_leaks(&data, &canaries);
}

/// `data-understudy-exclude`: the element with its attributes and box size, nothing inside;
/// 5 000 mutations inside it after load make no `mut` event and no `$breaker`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_subtree_is_size_only_and_costs_no_observer_work() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, db, data) = collector_in(dir.path());
    let canaries = Canaries::new();
    let c = canaries.clone();
    let site = serve_fixtures(&collector.url(), canaries.clone(), false).await;
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;

    open(&page, &format!("http://{site}/p/exclude")).await;
    let _: bool = eval(&page, "understudy('flush'), true").await;
    let batches = wait_stored(&db, Duration::from_secs(15), "snapshot", |b| {
        (!kind(&all_events(b), "snap").is_empty()).then(|| b.to_vec())
    });
    let ev = all_events(&batches);
    let snap = kind(&ev, "snap")[0];
    let mut ex = None;
    walk(&snap["node"], &mut |n| {
        if n["a"]["id"] == "ex" {
            ex = Some(n.clone());
        }
    });
    let ex = ex.expect("the excluded element is in the snapshot");
    let ex_id = ex["id"].as_u64().unwrap();
    assert_eq!(ex["tag"], "div");
    let size: Vec<f64> = serde_json::from_value(ex["excl"].clone()).unwrap();
    assert_eq!(size, [300.0, 120.0], "box size: {ex}");
    assert!(ex.get("c").is_none(), "no children: {ex}");
    assert!(ex.get("shadow").is_none(), "no shadow root: {ex}");
    assert_eq!(ex["a"]["class"], "secret-box");
    assert_eq!(ex["a"]["title"], masked_attr(&c.text("extitle")));

    // A click inside reports the excluded element; typing inside reports nothing.
    click(&page, "#ex-btn").await;
    type_into(
        &page,
        "#ex-input",
        &c.text("extyped"),
        Duration::from_millis(2),
    )
    .await;
    click(&page, "#outside").await;

    // 5 000 mutations inside (one record each), then a change outside.
    let n: u64 = eval(&page, "storm(5000, 1)").await;
    assert_eq!(n, 5000);
    let _: bool = eval(
        &page,
        "(() => { const p = document.createElement('p'); p.id = 'after-a';
           document.getElementById('outside').appendChild(p); understudy('flush'); return true; })()",
    )
    .await;
    let found = |b: &[StoredBatch], id: &str| {
        let ev = all_events(b);
        let mut hit = false;
        for t in trees(&ev) {
            walk(t, &mut |n| hit |= n["a"]["id"] == id);
        }
        hit
    };
    let batches = wait_stored(&db, Duration::from_secs(15), "after 5 000 mutations", |b| {
        let breaker = !custom_named(&all_events(b), "$breaker").is_empty();
        (found(b, "after-a") || breaker).then(|| b.to_vec())
    });
    let ev = all_events(&batches);
    assert!(
        custom_named(&ev, "$breaker").is_empty(),
        "5 000 mutations inside an excluded subtree tripped the circuit breaker"
    );
    // The same again with 3 records per change (15 000 records in one task).
    let n: u64 = eval(&page, "storm(5000, 3)").await;
    assert_eq!(n, 10000);
    let _: bool = eval(
        &page,
        "(() => { const p = document.createElement('p'); p.id = 'after-b';
           document.getElementById('outside').appendChild(p); understudy('flush'); return true; })()",
    )
    .await;
    let batches = wait_stored(&db, Duration::from_secs(15), "after 15 000 records", |b| {
        let breaker = !custom_named(&all_events(b), "$breaker").is_empty();
        (found(b, "after-b") || breaker).then(|| b.to_vec())
    });
    chromium.close().await;
    collector.kill();

    let ev = all_events(&batches);
    let clicks = kind(&ev, "click");
    let inside = clicks
        .iter()
        .find(|k| k["id"] == ex_id)
        .unwrap_or_else(|| panic!("a click inside reports the excluded element: {clicks:#?}"));
    assert_eq!(inside["tgt"]["eid"], "ex");
    assert!(
        kind(&ev, "input").is_empty(),
        "no input events from inside: {:#?}",
        kind(&ev, "input")
    );
    for m in kind(&ev, "mut") {
        for (list, key) in [
            ("adds", "p"),
            ("rems", "p"),
            ("attrs", "id"),
            ("texts", "id"),
        ] {
            for x in m[list].as_array().into_iter().flatten() {
                assert_ne!(
                    x[key], ex_id,
                    "a mut event touches the excluded subtree: {x}"
                );
            }
        }
        for r in m["roots"].as_array().into_iter().flatten() {
            assert_ne!(
                r["id"], ex_id,
                "a new root inside the excluded subtree: {r}"
            );
        }
    }
    let mut storm_nodes = 0;
    for t in trees(&ev) {
        walk(t, &mut |n| {
            if n["a"]["class"] == "storm" {
                storm_nodes += 1;
            }
        });
    }
    assert_eq!(
        storm_nodes, 0,
        "nodes from inside the excluded subtree were recorded"
    );
    assert_no_leaks(&data, &canaries);
    assert!(
        custom_named(&ev, "$breaker").is_empty(),
        "15 000 mutation records inside an excluded subtree tripped the circuit breaker: \
         records inside it are counted (observer work happens inside it)"
    );
}

/// `understudyConfig.headers = ["traceparent"]` keeps exactly that header on net events,
/// from the request or the response; Authorization and X-Canary are never stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_allow_list_keeps_traceparent_only() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, db, data) = collector_in(dir.path());
    let canaries = Canaries::new();
    let site = serve_fixtures(&collector.url(), canaries.clone(), false).await;
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;

    page.goto(format!("http://{site}/p/headers")).await.unwrap();
    wait_path(&page, "/p/headers").await;
    let sent: Vec<String> = (1..=4)
        .map(|i| format!("00-4bf92f3577b34da6a3ce929d0e0e47{i:02}-00f067aa0ba902b7-01"))
        .collect();
    let _: bool = eval(
        &page,
        &format!("calls({})", serde_json::to_string(&sent).unwrap()),
    )
    .await;
    let _: bool = eval(&page, "understudy('flush'), true").await;
    let batches = wait_stored(&db, Duration::from_secs(15), "5 net events", |b| {
        (kind(&all_events(b), "net").len() >= 5).then(|| b.to_vec())
    });
    chromium.close().await;
    collector.kill();

    let ev = all_events(&batches);
    let nets = kind(&ev, "net");
    assert_eq!(nets.len(), 5, "{nets:#?}");
    let mut kept = BTreeSet::new();
    for n in &nets {
        let hdr = n["hdr"]
            .as_object()
            .unwrap_or_else(|| panic!("no hdr: {n}"));
        let keys: Vec<&String> = hdr.keys().collect();
        assert_eq!(keys, ["traceparent"], "{n}");
        kept.insert(hdr["traceparent"].as_str().unwrap().to_string());
    }
    let want: BTreeSet<String> = sent
        .iter()
        .cloned()
        .chain([TRACE_RESPONSE.to_string()])
        .collect();
    assert_eq!(kept, want, "request traceparents and the response one");
    let bytes = all_bytes(&data);
    let hay = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    for name in [
        "authorization",
        "x-canary",
        "x-resp-canary",
        "bearer ",
        "basic ",
    ] {
        assert!(!hay.contains(name), "{name:?} stored");
    }
    assert_no_leaks(&data, &canaries);
}

/// `requireConsent`: no request at all reaches the collector, across page loads, until
/// `understudy('consent', true)`; then recording starts; `consent false` stops it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_mode_sends_nothing_until_consent_and_stops_on_withdrawal() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, db, _data) = collector_in(dir.path());
    let tap = Tap::start(collector.addr).await;
    let canaries = Canaries::new();
    // capture.js comes from the site, so the only way to the collector is through the tap.
    let site = serve_fixtures(&tap.url(), canaries.clone(), true).await;
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;

    // Before consent: interact, type, navigate (pagehide), interact again.
    open(&page, &format!("http://{site}/p/consent?step=1")).await;
    click(&page, "[data-testid=before-consent]").await;
    type_into(&page, "#field", "hello", Duration::from_millis(5)).await;
    let _: bool = eval(&page, "understudy('flush'), understudy('event', 'x'), true").await;
    click(&page, "#next").await;
    wait_path(&page, "/p/consent").await;
    ready(&page, "step 2").await;
    click(&page, "[data-testid=before-consent]").await;
    // The recorder would have flushed within a second; give it 2.5.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        tap.requests().is_empty(),
        "requests reached the collector before consent: {:#?}",
        tap.requests()
    );
    assert!(stored_batches(&db).is_empty(), "stored before consent");

    // Consent: recording starts, from that moment on.
    let consent_at: i64 = eval(
        &page,
        "(() => { const t = Date.now(); understudy('consent', true); return t; })()",
    )
    .await;
    click(&page, "[data-testid=after-consent]").await;
    let _: bool = eval(&page, "understudy('flush'), true").await;
    let batches = wait_stored(&db, Duration::from_secs(15), "after consent", |b| {
        let ev = all_events(b);
        kind(&ev, "click")
            .iter()
            .any(|k| k["tgt"]["testid"] == "after-consent")
            .then(|| b.to_vec())
    });
    let ev = all_events(&batches);
    assert_eq!(kind(&ev, "meta").len(), 1);
    assert_eq!(kind(&ev, "snap").len(), 1);
    for e in &ev {
        assert!(
            e["t"].as_i64().unwrap() >= consent_at,
            "event before consent: {e}"
        );
    }
    assert!(!kind(&ev, "click")
        .iter()
        .any(|k| k["tgt"]["testid"] == "before-consent"));
    assert!(custom_named(&ev, "x").is_empty());
    let posts = tap.requests().len();
    assert!(posts >= 1);

    // Withdrawal: nothing more, not even at pagehide.
    let revoked_at: i64 = eval(
        &page,
        "(() => { const t = Date.now(); understudy('consent', false); return t; })()",
    )
    .await;
    click(&page, "[data-testid=after-revoke]").await;
    type_into(&page, "#field", "again", Duration::from_millis(5)).await;
    click(&page, "#next").await;
    wait_path(&page, "/p/consent").await;
    ready(&page, "step 3").await;
    click(&page, "[data-testid=before-consent]").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    close_tab(page).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = tap.requests();
    chromium.close().await;
    assert_eq!(
        after.len(),
        posts,
        "requests after consent was withdrawn: {:#?}",
        &after[posts..]
    );
    let batches = stored_batches(&db);
    for e in all_events(&batches) {
        assert!(
            e["t"].as_i64().unwrap() < revoked_at,
            "event after withdrawal: {e}"
        );
    }
    assert!(after
        .iter()
        .all(|r| r.method == "POST" && r.path == "/v1/batches"));
}
