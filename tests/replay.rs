//! Session replay end to end: a stored session (two page views, built here with hostile
//! strings in it) → the real `understudy replay` binary → the written file opened from
//! `file://` in real headless Chromium. The rebuilt DOM is in the sandboxed frame, nothing in
//! the recording runs or fetches, seeking works both ways across page views, and the side
//! lists and signal markers show what the session holds. A second test replays a session
//! recorded by capture.js in real Chromium.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chromiumoxide::cdp::js_protocol::runtime::EventExceptionThrown;
use chromiumoxide::Page;
use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use understudy::event::Batch;
use understudy::store::{SessionStore, SqliteStore};

const SID: &str = "s-replay-1";
const T0: i64 = 1_733_300_000_000;
const HOSTILE: &str = "</script><img src=x onerror=\"top.pwned='err'\"><b>bold</b>";

/// Counts TCP connections to a loopback port: the origin the recording's URLs point at.
fn connection_counter() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            h.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (port, hits)
}

fn el(id: u64, tag: &str, a: Value, c: Vec<Value>) -> Value {
    json!({"id": id, "nt": 1, "tag": tag, "a": a, "c": c})
}

fn text(id: u64, x: &str) -> Value {
    json!({"id": id, "nt": 3, "x": x})
}

fn batch(pvid: &str, seq: u64, events: Vec<Value>) -> Batch {
    serde_json::from_value(json!({"v": 1, "sid": SID, "pvid": pvid, "seq": seq, "events": events}))
        .unwrap()
}

/// Two page views. The first has a stylesheet, an image, an iframe and a refresh pointing at
/// `origin`, a script and inline handlers, a rage (and dead) click burst with an error after
/// it, a scroll, an input, a failed request and custom events; the second is a small page
/// that changes once.
fn session(origin: &str) -> Vec<Batch> {
    let t = |ms: i64| T0 + ms;
    let tgt = json!({"tag": "button", "testid": "buy", "path": "body>button", "ia": true});
    let head = el(
        3,
        "head",
        json!({}),
        vec![
            el(4, "title", json!({}), vec![text(5, "****")]),
            el(
                6,
                "link",
                json!({"rel": "stylesheet", "href": format!("{origin}/style.css")}),
                vec![],
            ),
            el(
                7,
                "meta",
                json!({"http-equiv": "refresh", "content": format!("0;url={origin}/refresh")}),
                vec![],
            ),
            el(
                8,
                "script",
                json!({}),
                vec![text(
                    9,
                    "top.pwned = 'script'; parent.document.title = 'pwned';",
                )],
            ),
            el(
                10,
                "style",
                json!({}),
                vec![text(
                    11,
                    "#long { height: 3000px; } button { width: 120px; }",
                )],
            ),
        ],
    );
    // A same-origin iframe, recorded with its document; its `src` must not load.
    let mut frame = el(
        21,
        "iframe",
        json!({"src": format!("{origin}/frame.html")}),
        vec![],
    );
    frame["frame"] = json!({"id": 22, "nt": 9, "c": [el(23, "html", json!({}), vec![
        el(24, "body", json!({}), vec![el(25, "p", json!({"id": "inner"}), vec![])]),
    ])]});
    let body = el(
        12,
        "body",
        json!({"onload": "top.pwned = 'onload'"}),
        vec![
            el(13, "h1", json!({"id": "title"}), vec![text(14, "*****")]),
            el(
                26,
                "a",
                json!({"id": "out", "href": format!("{origin}/leave")}),
                vec![text(27, "*********")],
            ),
            el(
                15,
                "button",
                json!({"data-testid": "buy", "onclick": "top.pwned = 'click'"}),
                vec![text(16, "***")],
            ),
            el(
                17,
                "img",
                json!({"src": format!("{origin}/x.png"), "onerror": "top.pwned = 'img'"}),
                vec![],
            ),
            el(
                18,
                "input",
                json!({"id": "email", "type": "email", "name": "email"}),
                vec![],
            ),
            el(19, "div", json!({"id": "long"}), vec![]),
            frame,
        ],
    );
    let snap1 = json!({"k": "snap", "t": t(0), "sx": 0, "sy": 0, "node": {"id": 1, "nt": 9, "c": [
        {"id": 2, "nt": 10, "tag": "html"},
        el(20, "html", json!({"lang": "en"}), vec![head, body]),
    ]}});
    let click = |ms: i64| json!({"k": "click", "t": t(ms), "id": 15, "x": 60, "y": 80, "tgt": tgt});
    let page1 = vec![
        json!({"k": "meta", "t": t(0), "url": "http://shop.test/", "load": "navigate", "w": 1000, "h": 700}),
        snap1,
        json!({"k": "move", "t": t(500), "pts": [[100, 120, 0], [200, 220, 100]]}),
        click(1000),
        click(1200),
        click(1400),
        json!({"k": "err", "t": t(1450), "ek": "uncaught", "msg": HOSTILE, "src": format!("{origin}/app.js"), "line": 3, "col": 7}),
        json!({"k": "custom", "t": t(1500), "name": "$lost", "data": {"batches": 2, "note": HOSTILE}}),
        // Nothing reacts to the burst for the dead-click window.
        json!({"k": "mut", "t": t(4500), "adds": [{"p": 12, "n": 0, "node": el(30, "p", json!({"id": "added"}), vec![text(31, "**")])}],
               "attrs": [{"id": 13, "a": {"class": "changed"}}], "texts": [{"id": 14, "x": "#####"}]}),
        json!({"k": "scroll", "t": t(5000), "id": 0, "x": 0, "y": 400}),
        json!({"k": "input", "t": t(5500), "id": 18, "tgt": {"tag": "input", "path": "#email", "eid": "email", "field": "email", "type": "email"},
               "cls": "email", "len": 15, "keys": 15, "dur": 900}),
        json!({"k": "net", "t": t(6000), "via": "fetch", "method": "POST", "url": format!("{origin}/api/{HOSTILE}"), "status": 500, "dur": 40}),
        json!({"k": "nav", "t": t(7000), "nav": "leave", "url": "http://shop.test/"}),
    ];
    let snap2 = json!({"k": "snap", "t": t(8000), "node": {"id": 1, "nt": 9, "c": [
        el(2, "html", json!({}), vec![
            el(3, "head", json!({}), vec![]),
            el(4, "body", json!({}), vec![el(5, "main", json!({"id": "second"}), vec![text(6, "****")])]),
        ]),
    ]}});
    let page2 = vec![
        json!({"k": "meta", "t": t(8000), "url": "http://shop.test/cart", "load": "navigate", "w": 800, "h": 600}),
        snap2,
        json!({"k": "mut", "t": t(9000), "adds": [{"p": 5, "n": 0, "node": el(7, "span", json!({"id": "late"}), vec![])}]}),
        json!({"k": "custom", "t": t(9500), "name": "$breaker", "data": {"records": 10001}}),
    ];
    vec![batch("pv-1", 0, page1), batch("pv-2", 1, page2)]
}

async fn eval<T: serde::de::DeserializeOwned>(page: &Page, js: &str) -> T {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("result of {js}: {e}"))
}

/// Seeks and returns facts about the rebuilt frame.
async fn frame_at(page: &Page, ms: i64) -> Value {
    eval(
        page,
        &format!(
            "(() => {{ understudyReplay.seek({ms});
              const d = document.getElementById('replay-frame').contentDocument;
              const q = s => !!d.querySelector(s);
              const inner = d.querySelector('iframe') && d.querySelector('iframe').contentDocument;
              return {{ page: understudyReplay.page(), buy: q('[data-testid=buy]'),
                inner: !!(inner && inner.querySelector('#inner')),
                added: q('#added'), second: q('#second'), late: q('#late'),
                h1class: d.querySelector('h1') ? d.querySelector('h1').className : null,
                h1text: d.querySelector('h1') ? d.querySelector('h1').textContent : null,
                email: d.getElementById('email') ? d.getElementById('email').value : null,
                scrollY: d.defaultView ? d.defaultView.scrollY : null,
                pointer: [getComputedStyle(document.getElementById('pointer')).display,
                          document.getElementById('pointer').style.left,
                          document.getElementById('pointer').style.top],
                noSnapshot: getComputedStyle(document.getElementById('no-snapshot')).display }}; }})()"
        ),
    )
    .await
}

fn items(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn write_session(db: &Path, origin: &str) -> Vec<Batch> {
    let batches = session(origin);
    let mut store = SqliteStore::open(db).unwrap();
    store.put_batches(&batches, 0).unwrap();
    batches
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_rebuilds_plays_and_runs_nothing_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let (port, hits) = connection_counter();
    let origin = format!("http://127.0.0.1:{port}");
    let batches = write_session(&db, &origin);
    let out = dir.path().join("replay.html");

    // The command line: errors first, then the file.
    let (code, _, err) = run(&[
        "replay",
        "no-such-session",
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no session with id `no-such-session`"),
        "{err}"
    );
    let missing = dir.path().join("missing.db");
    let (code, _, err) = run(&[
        "replay",
        SID,
        "--db",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no session database at"), "{err}");
    assert!(!missing.exists(), "a bad path creates no database");
    assert!(!out.exists(), "nothing written on errors");
    let (code, _, err) = run(&[
        "replay",
        SID,
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 page views"), "{err}");

    // The signals the player must mark: cook's, on the same events.
    let expected: BTreeSet<String> = understudy::cook::cook_session(SID, &batches, &[])
        .signals
        .iter()
        .map(|s| s.kind.as_str().to_string())
        .collect();
    for kind in ["rage_click", "dead_click", "error_click", "failed_request"] {
        assert!(
            expected.contains(kind),
            "the fixture has a {kind}: {expected:?}"
        );
    }

    let chromium = Chromium::launch().await;
    let (page, mut exceptions) = open_player(&chromium, &out).await;

    // The frame is sandboxed without scripts.
    let sandbox: String = eval(
        &page,
        "document.getElementById('replay-frame').getAttribute('sandbox')",
    )
    .await;
    assert_eq!(sandbox, "allow-same-origin");

    // Before the mutation: the first page's snapshot.
    let f = frame_at(&page, 1100).await;
    assert_eq!(f["page"], 0, "{f}");
    assert_eq!(f["buy"], true, "{f}");
    assert_eq!(f["inner"], true, "the iframe's recorded document: {f}");
    assert_eq!(f["added"], false, "{f}");
    assert_eq!(f["noSnapshot"], "none", "{f}");
    // The pointer, interpolated between the two move samples at 500 and 600 ms, then at the
    // click.
    let f = frame_at(&page, 550).await;
    assert_eq!(f["pointer"], json!(["block", "150px", "170px"]), "{f}");
    let f = frame_at(&page, 1100).await;
    assert_eq!(f["pointer"], json!(["block", "60px", "80px"]), "{f}");
    let shown: (usize, usize) = eval(
        &page,
        "[document.querySelectorAll('#clicks .ripple.rage_click').length,
          document.querySelectorAll('#clicks .target.rage_click').length]",
    )
    .await;
    assert!(
        shown.0 >= 1 && shown.1 >= 1,
        "the rage burst's click and its target show: {shown:?}"
    );

    // After the mutation, the scroll and the input.
    let f = frame_at(&page, 6500).await;
    assert_eq!(
        (&f["buy"], &f["added"], &f["h1class"], &f["h1text"]),
        (
            &json!(true),
            &json!(true),
            &json!("changed"),
            &json!("#####")
        ),
        "{f}"
    );
    assert_eq!(f["email"], "*".repeat(15), "masked input length: {f}");
    assert_eq!(f["scrollY"], 400, "{f}");

    // The second page view, then back into the first (a rebuild from its snapshot).
    let duration: f64 = eval(&page, "understudyReplay.duration").await;
    assert_eq!(duration, 9500.0);
    let f = frame_at(&page, 9500).await;
    assert_eq!(
        (&f["page"], &f["buy"], &f["second"], &f["late"]),
        (&json!(1), &json!(false), &json!(true), &json!(true)),
        "{f}"
    );
    let f = frame_at(&page, 8500).await;
    assert_eq!(
        (&f["second"], &f["late"]),
        (&json!(true), &json!(false)),
        "{f}"
    );
    let f = frame_at(&page, 2000).await;
    assert_eq!(
        (&f["page"], &f["buy"], &f["added"], &f["second"]),
        (&json!(0), &json!(true), &json!(false), &json!(false)),
        "{f}"
    );

    // The side lists, as text.
    let lists: Value = eval(
        &page,
        "(() => { const t = id => [...document.querySelectorAll('#' + id + ' li .what')].map(e => e.textContent);
           return { errors: t('errors'), network: t('network'), activity: t('activity'), signals: t('signals'),
             markers: [...document.querySelectorAll('#markers .marker')].map(m => m.dataset.kind) }; })()",
    )
    .await;
    assert_eq!(items(&lists["errors"]), [format!("uncaught: {HOSTILE}")]);
    let network = items(&lists["network"]);
    assert_eq!(network.len(), 1);
    assert!(
        network[0].starts_with(&format!("POST {origin}/api/{HOSTILE} → 500")),
        "{network:?}"
    );
    let activity = items(&lists["activity"]).join("\n");
    for needle in [
        "page view (navigate): http://shop.test/",
        "page view (navigate): http://shop.test/cart",
        "click [data-testid=buy]",
        "input: email · 15 chars",
        "custom $lost",
        "custom $breaker",
    ] {
        assert!(activity.contains(needle), "{needle} in {activity}");
    }
    let markers: BTreeSet<String> = items(&lists["markers"]).into_iter().collect();
    assert_eq!(markers, expected, "one marker kind per cook signal kind");

    // Clicking a list entry seeks to it.
    let at: f64 = eval(
        &page,
        "document.querySelector('#errors li').click(); understudyReplay.time()",
    )
    .await;
    assert_eq!(at, 1450.0);

    // Play moves the clock.
    let before: f64 = eval(
        &page,
        "understudyReplay.seek(0); document.getElementById('speed').value = '4'; understudyReplay.play(); understudyReplay.time()",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after: f64 = eval(&page, "understudyReplay.pause(); understudyReplay.time()").await;
    assert!(
        after > before + 400.0,
        "playing at 4× advanced {before} → {after}"
    );

    // A viewer cannot follow a recorded link: the frame takes no input.
    let (x, y): (f64, f64) = eval(
        &page,
        "(() => { understudyReplay.seek(2000);
           const f = document.getElementById('replay-frame'), fr = f.getBoundingClientRect();
           const r = f.contentDocument.getElementById('out').getBoundingClientRect();
           const s = fr.width / f.offsetWidth;
           return [fr.left + (r.left + r.width / 2) * s, fr.top + (r.top + r.height / 2) * s]; })()",
    )
    .await;
    click_at(&page, x, y).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Nothing recorded ran, escaped into the player, or fetched anything.
    let safe: Value = eval(
        &page,
        "({ pwned: typeof window.pwned, title: document.title,
            imgs: document.querySelectorAll('img').length, bolds: document.querySelectorAll('b').length,
            problems: understudyReplay.problems })",
    )
    .await;
    assert_eq!(safe["pwned"], "undefined", "{safe}");
    assert_eq!(
        safe["title"],
        format!("understudy replay · {SID}"),
        "{safe}"
    );
    assert_eq!(
        (&safe["imgs"], &safe["bolds"]),
        (&json!(0), &json!(0)),
        "{safe}"
    );
    assert_eq!(safe["problems"], json!([]), "every event replayed: {safe}");
    let f = frame_at(&page, 6500).await;
    assert_eq!(f["buy"], true, "the frame never navigated away: {f}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the replay fetched nothing");

    // No page errors; and the listener does see one when there is one.
    let _: i64 = eval(
        &page,
        "setTimeout(() => { throw new Error('probe'); }, 0); 1",
    )
    .await;
    let first = tokio::time::timeout(Duration::from_secs(5), exceptions.next())
        .await
        .expect("the probe error is reported")
        .unwrap();
    let text = format!("{:?}", first.exception_details);
    assert!(
        text.contains("probe"),
        "the first page error is the probe: {text}"
    );

    chromium.close().await;
}

/// Opens a written player from `file://`, with a listener for page errors.
async fn open_player(
    chromium: &Chromium,
    file: &Path,
) -> (
    Page,
    chromiumoxide::listeners::EventStream<EventExceptionThrown>,
) {
    let page = chromium.isolated_page().await;
    let exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
    let url = format!("file://{}", file.canonicalize().unwrap().display());
    page.goto(&url).await.unwrap();
    let ready: bool = eval(&page, "typeof window.understudyReplay === 'object'").await;
    assert!(ready, "the player started");
    (page, exceptions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_recording_replays() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let collector = Collector::start(&db);
    let site = serve_site(&collector.url()).await;
    let chromium = Chromium::launch().await;
    let page = chromium.isolated_page().await;
    page.goto(format!("http://{site}/")).await.unwrap();
    wait_path(&page, "/").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    click(&page, "[data-testid=product-2]").await;
    wait_path(&page, "/product/2").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    click(&page, "[data-testid=add-to-cart]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    close_tab(page).await;
    let sessions = eventually(Duration::from_secs(15), || {
        let s = sessions_json(&db);
        (s.len() == 1 && s[0]["pages"].as_u64() == Some(2)).then_some(s)
    });
    let sid = sessions[0]["id"].as_str().unwrap().to_string();
    drop(collector);

    let out = dir.path().join("real.html");
    let (code, _, err) = run(&[
        "replay",
        &sid,
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (page, mut exceptions) = open_player(&chromium, &out).await;

    // The catalog, rebuilt: the unmasked nav keeps its text, the heading is masked.
    let first: Value = eval(
        &page,
        "(() => { const views = [...document.querySelectorAll('#activity li')]
             .filter(li => li.textContent.includes('page view'));
           understudyReplay.seek(+views[1].dataset.t - 1);
           const d = document.getElementById('replay-frame').contentDocument;
           const t = s => d.querySelector(s) ? d.querySelector(s).textContent : null;
           return { page: understudyReplay.page(), nav: t('[data-testid=nav-home]'), h1: t('h1'),
             product: !!d.querySelector('[data-testid=product-2]') }; })()",
    )
    .await;
    assert_eq!(
        first,
        json!({"page": 0, "nav": "Shop", "h1": "*******", "product": true})
    );
    // The product page at the end, with the request in the network list.
    let last: Value = eval(
        &page,
        "(() => { understudyReplay.seek(understudyReplay.duration);
           const d = document.getElementById('replay-frame').contentDocument;
           return { page: understudyReplay.page(), button: !!d.querySelector('[data-testid=add-to-cart]'),
             network: [...document.querySelectorAll('#network li .what')].map(e => e.textContent),
             problems: understudyReplay.problems }; })()",
    )
    .await;
    assert_eq!(last["page"], 1, "{last}");
    assert_eq!(last["button"], true, "{last}");
    assert_eq!(last["problems"], json!([]), "{last}");
    let network = items(&last["network"]);
    assert!(
        network
            .iter()
            .any(|n| n.starts_with(&format!("POST http://{site}/api/cart → 200"))),
        "{network:?}"
    );
    let error = tokio::time::timeout(Duration::from_millis(200), exceptions.next()).await;
    assert!(error.is_err(), "no page errors: {error:?}");
    chromium.close().await;
}
