//! Shared parts of the browser integration tests: a real collector process, a real test
//! site on loopback, and real headless Chromium driven over CDP.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchMouseEventParams, DispatchMouseEventType, InsertTextParams, MouseButton,
};
use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use chromiumoxide::Page;
use futures::StreamExt;
use rand::{Rng, SeedableRng};

/// Path of the built `understudy` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_understudy")
}

/// Runs the binary and returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("run understudy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real `understudy collect` process on loopback, killed on drop.
pub struct Collector {
    child: Child,
    pub addr: SocketAddr,
    pub db: PathBuf,
}

impl Collector {
    pub fn start(db: &Path) -> Collector {
        for _ in 0..5 {
            if let Some(c) = Collector::try_start(db, free_addr()) {
                return c;
            }
        }
        panic!("collector did not start");
    }

    /// One attempt to start a collector process on `addr`; `None` if it did not answer.
    fn try_start(db: &Path, addr: SocketAddr) -> Option<Collector> {
        let child = Command::new(bin())
            .args(["collect", "--listen", &addr.to_string(), "--db"])
            .arg(db)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn collector");
        let mut c = Collector {
            child,
            addr,
            db: db.to_path_buf(),
        };
        if c.wait_ready(Duration::from_secs(10)) {
            return Some(c);
        }
        let _ = c.child.kill();
        let _ = c.child.wait();
        None
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(self.addr).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The multi-page test shop in `tests/fixtures/site`, served on loopback (another origin than
/// the collector, so capture.js posts cross-origin).
pub async fn serve_site(collector: &str) -> SocketAddr {
    serve_site_variant(collector, false).await
}

/// The test shop; with `dead_checkout`, the "Place order" button does nothing at all.
pub async fn serve_site_variant(collector: &str, dead_checkout: bool) -> SocketAddr {
    #[derive(Clone)]
    struct Pages {
        collector: String,
        dead_checkout: bool,
    }
    const DEAD: &str = "<script>document.addEventListener('submit', function (e) { \
        e.preventDefault(); e.stopPropagation(); }, true);</script></body>";
    fn page(p: &Pages, src: &str) -> Html<String> {
        let html = src.replace("{{COLLECTOR}}", &p.collector);
        if p.dead_checkout {
            Html(html.replace("</body>", DEAD))
        } else {
            Html(html)
        }
    }
    let pages = Pages {
        collector: collector.to_string(),
        dead_checkout,
    };
    let app = Router::new()
        .route(
            "/",
            get(|State(p): State<Pages>| async move {
                page(&p, include_str!("../fixtures/site/index.html"))
            }),
        )
        .route(
            "/product/{id}",
            get(
                |State(p): State<Pages>, UrlPath(_id): UrlPath<String>| async move {
                    page(&p, include_str!("../fixtures/site/product.html"))
                },
            ),
        )
        .route(
            "/cart",
            get(|State(p): State<Pages>| async move {
                page(&p, include_str!("../fixtures/site/cart.html"))
            }),
        )
        .route(
            "/checkout",
            get(|State(p): State<Pages>| async move {
                page(&p, include_str!("../fixtures/site/checkout.html"))
            }),
        )
        .route(
            "/confirm",
            get(|State(p): State<Pages>| async move {
                page(&p, include_str!("../fixtures/site/confirm.html"))
            }),
        )
        .route("/api/cart", post(|| async { "{\"ok\":true}" }))
        .route("/api/order", post(|| async { "{\"ok\":true}" }))
        .with_state(pages);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// A headless Chromium with the flags this closed network needs, and its handler task.
pub struct Chromium {
    pub browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch() -> Chromium {
        // The browser the simulator launches: the headless shell when installed.
        let exe = understudy::simulate::driver::default_executable();
        assert!(
            exe.exists(),
            "{} is missing: install Debian's chromium and chromium-headless-shell (.ci/run does)",
            exe.display()
        );
        let profile = tempfile::tempdir().unwrap();
        let mut config = BrowserConfig::builder().chrome_executable(&exe);
        if !understudy::simulate::driver::is_headless_shell(&exe) {
            config = config.new_headless_mode();
        }
        let config = config
            .no_sandbox()
            .user_data_dir(profile.path())
            .viewport(None)
            .window_size(1280, 800)
            .request_timeout(Duration::from_secs(20));
        let flags = understudy::simulate::driver::CHROMIUM_FLAGS.iter().copied();
        let config = understudy::simulate::driver::with_flags(config, flags)
            .build()
            .unwrap();
        let (browser, mut handler) = Browser::launch(config).await.expect("launch chromium");
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Chromium {
            browser,
            handler,
            _profile: profile,
        }
    }

    /// A fresh page in its own browser context (separate cookies and storage).
    pub async fn isolated_page(&self) -> Page {
        use chromiumoxide::cdp::browser_protocol::target::CreateBrowserContextParams;
        let ctx = self
            .browser
            .create_browser_context(CreateBrowserContextParams::default())
            .await
            .unwrap();
        self.browser
            .new_page(
                CreateTargetParams::builder()
                    .url("about:blank")
                    .browser_context_id(ctx)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap()
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

impl Drop for Chromium {
    /// A test that panics drops its browser without [`Chromium::close`]: kill the whole
    /// process tree (the headless shell is a script around the real browser, so
    /// chromiumoxide's own kill-on-drop would leave the browser and its renderers running).
    fn drop(&mut self) {
        understudy::simulate::driver::kill_browser_tree(&mut self.browser);
        self.handler.abort();
    }
}

/// Centre of the first element matching `selector`, scrolled into view.
pub async fn centre(page: &Page, selector: &str) -> (f64, f64) {
    let js = format!(
        "(() => {{ const e = document.querySelector({sel}); if (!e) return null;
           e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
           return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
        sel = serde_json::to_string(selector).unwrap()
    );
    let v: Option<(f64, f64)> = page.evaluate(js).await.unwrap().into_value().unwrap();
    v.unwrap_or_else(|| panic!("no element matches {selector}"))
}

/// A trusted mouse click at the element's centre (press and release, as a person would).
pub async fn click(page: &Page, selector: &str) {
    let (x, y) = centre(page, selector).await;
    click_at(page, x, y).await;
}

pub async fn click_at(page: &Page, x: f64, y: f64) {
    page.execute(DispatchMouseEventParams::new(
        DispatchMouseEventType::MouseMoved,
        x,
        y,
    ))
    .await
    .unwrap();
    for kind in [
        DispatchMouseEventType::MousePressed,
        DispatchMouseEventType::MouseReleased,
    ] {
        page.execute(
            DispatchMouseEventParams::builder()
                .r#type(kind)
                .x(x)
                .y(y)
                .button(MouseButton::Left)
                .click_count(1)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    }
}

/// Types text into the element one character at a time (one `input` event each).
pub async fn type_into(page: &Page, selector: &str, text: &str, gap: Duration) {
    click(page, selector).await;
    for ch in text.chars() {
        page.execute(InsertTextParams::new(ch.to_string()))
            .await
            .unwrap();
        tokio::time::sleep(gap).await;
    }
}

/// Waits until the page's path is `path`.
pub async fn wait_path(page: &Page, path: &str) {
    let start = Instant::now();
    loop {
        let ready: Option<String> = page
            .evaluate("document.readyState === 'complete' ? location.pathname : null")
            .await
            .ok()
            .and_then(|v| v.into_value().ok());
        if ready.as_deref() == Some(path) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "page never reached {path} (at {ready:?})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Closes the page the way a person closes a tab (pagehide fires, beacons go out).
pub async fn close_tab(page: Page) {
    use chromiumoxide::cdp::browser_protocol::page::CloseParams;
    let _ = page.execute(CloseParams::default()).await;
}

/// Polls `f` until it returns `Some`, or panics after `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `understudy sessions list --json` of a database.
pub fn sessions_json(db: &Path) -> Vec<serde_json::Value> {
    let (code, out, err) = run(&["sessions", "list", "--json", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "sessions list failed: {err}");
    serde_json::from_str(&out).expect("sessions list --json is JSON")
}

/// Waits (at most 20 s) until the database holds `n` sessions: the last beacons land a
/// moment after their tabs close.
pub fn wait_for_sessions(db: &Path, n: usize) {
    eventually(Duration::from_secs(20), || {
        (sessions_json(db).len() == n).then_some(())
    });
}

/// Fits the test shop's model (goal `purchase=url:/confirm`) into `model`, and returns what
/// `understudy fit` printed.
pub fn fit_shop(db: &Path, model: &Path) -> String {
    let (code, out, err) = run(&[
        "fit",
        "--db",
        db.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--goal",
        "purchase=url:/confirm",
    ]);
    assert_eq!(code, 0, "fit failed: {err}");
    out
}

/// Walks one person through the test shop with seeded choices and human-ish pauses.
pub async fn walk(chromium: &Chromium, site: std::net::SocketAddr, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let page = chromium.isolated_page().await;
    let pause =
        |rng: &mut rand_chacha::ChaCha8Rng| Duration::from_millis(rng.random_range(40..160));
    page.goto(format!("http://{site}/")).await.unwrap();
    wait_path(&page, "/").await;
    tokio::time::sleep(pause(&mut rng)).await;
    let product = rng.random_range(1..=3);
    click(&page, &format!("[data-testid=product-{product}]")).await;
    wait_path(&page, &format!("/product/{product}")).await;
    tokio::time::sleep(pause(&mut rng)).await;
    if rng.random_bool(0.75) {
        click(&page, "[data-testid=add-to-cart]").await;
        tokio::time::sleep(pause(&mut rng)).await;
        if rng.random_bool(0.7) {
            click(&page, "[data-testid=go-to-cart]").await;
            wait_path(&page, "/cart").await;
            tokio::time::sleep(pause(&mut rng)).await;
            if rng.random_bool(0.2) {
                click(&page, "[data-testid=apply-coupon]").await;
                tokio::time::sleep(pause(&mut rng)).await;
            }
            if rng.random_bool(0.75) {
                click(&page, "[data-testid=checkout]").await;
                wait_path(&page, "/checkout").await;
                type_into(&page, "#name", "Pat Doe", Duration::from_millis(5)).await;
                if rng.random_bool(0.85) {
                    type_into(&page, "#email", "pat@example.net", Duration::from_millis(5)).await;
                    click(&page, "[data-testid=place-order]").await;
                    wait_path(&page, "/confirm").await;
                    tokio::time::sleep(pause(&mut rng)).await;
                }
            }
        }
    } else if rng.random_bool(0.5) {
        click(&page, "[data-testid=nav-home]").await;
        wait_path(&page, "/").await;
        tokio::time::sleep(pause(&mut rng)).await;
    }
    close_tab(page).await;
}

/// Records `people` sessions of the test shop through a running collector, `at_once` tabs at
/// a time.
pub async fn record_population(site: SocketAddr, people: u64, at_once: usize) {
    let chromium = std::sync::Arc::new(Chromium::launch().await);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(at_once));
    let mut tasks = Vec::new();
    for seed in 0..people {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let chromium = chromium.clone();
        tasks.push(tokio::spawn(async move {
            walk(&chromium, site, seed).await;
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    if let Ok(c) = std::sync::Arc::try_unwrap(chromium) {
        c.close().await;
    }
}

/// A free loopback address (for a collector that must come back on the same port).
pub fn free_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

impl Collector {
    /// A collector on exactly `addr`, e.g. a new process on the port of one that was killed.
    /// Retries for a few seconds while the port is still taken.
    pub fn start_at(db: &Path, addr: SocketAddr) -> Collector {
        let start = Instant::now();
        loop {
            if let Some(c) = Collector::try_start(db, addr) {
                return c;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "collector did not start on {addr}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the process at once (SIGKILL: no graceful shutdown, like a crash).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a [`Tap`] saw.
#[derive(Debug, Clone)]
pub struct Tapped {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Body bytes exactly as the page sent them (gzip'd or not).
    pub body_len: usize,
    /// What the upstream answered (502 when it could not be reached).
    pub status: u16,
    pub at: Instant,
}

/// A loopback HTTP proxy in front of a collector: it forwards every request unchanged and
/// records method, path and body size, so a test can count what a page sent and how big.
pub struct Tap {
    pub addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Tapped>>>,
}

impl Tap {
    pub async fn start(upstream: SocketAddr) -> Tap {
        use axum::body::Body;
        use axum::extract::Request;
        use axum::http::{header, HeaderValue, StatusCode};
        use axum::response::{IntoResponse, Response};
        use http_body_util::BodyExt;

        type Seen = std::sync::Arc<std::sync::Mutex<Vec<Tapped>>>;
        async fn forward(
            upstream: SocketAddr,
            parts: axum::http::request::Parts,
            body: axum::body::Bytes,
        ) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
            let stream = tokio::net::TcpStream::connect(upstream).await?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let path = parts
                .uri
                .path_and_query()
                .map_or("/".to_string(), |p| p.to_string());
            let mut req = hyper::Request::builder().method(parts.method).uri(path);
            for (k, v) in &parts.headers {
                if !matches!(
                    k.as_str(),
                    "host" | "connection" | "keep-alive" | "transfer-encoding"
                ) {
                    req = req.header(k, v);
                }
            }
            let req = req
                .header(header::HOST, upstream.to_string())
                .body(http_body_util::Full::new(body))?;
            let resp = send.send_request(req).await?;
            let (mut parts, body) = resp.into_parts();
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts.headers.remove(header::CONNECTION);
            let bytes = body.collect().await?.to_bytes();
            Ok(Response::from_parts(parts, Body::from(bytes)))
        }
        async fn handle(
            axum::extract::State((upstream, seen)): axum::extract::State<(SocketAddr, Seen)>,
            req: Request,
        ) -> Response {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20)
                .await
                .unwrap_or_default();
            let method = parts.method.to_string();
            let path = parts.uri.to_string();
            let body_len = body.len();
            let resp = match forward(upstream, parts, body).await {
                Ok(r) => r,
                Err(_) => {
                    let mut r = StatusCode::BAD_GATEWAY.into_response();
                    r.headers_mut().insert(
                        header::ACCESS_CONTROL_ALLOW_ORIGIN,
                        HeaderValue::from_static("*"),
                    );
                    r
                }
            };
            seen.lock().unwrap().push(Tapped {
                method,
                path,
                body_len,
                status: resp.status().as_u16(),
                at: Instant::now(),
            });
            resp
        }
        let seen: Seen = Default::default();
        let app = Router::new()
            .fallback(handle)
            .with_state((upstream, seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Tap { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far, in the order they were answered.
    pub fn requests(&self) -> Vec<Tapped> {
        self.seen.lock().unwrap().clone()
    }
}

/// Evaluates `js` in the page (awaiting a promise it returns) and returns its value.
pub async fn eval<T: serde::de::DeserializeOwned>(page: &Page, js: &str) -> T {
    use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
    let params = EvaluateParams::builder()
        .expression(js)
        .await_promise(true)
        .return_by_value(true)
        .build()
        .unwrap();
    let res = page
        .evaluate_expression(params)
        .await
        .unwrap_or_else(|e| panic!("evaluating {js}: {e}"));
    res.into_value()
        .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
}

/// One stored batch, read straight from the SQLite file (events as the raw stored JSON).
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub sid: String,
    pub seq: u64,
    pub pvid: String,
    pub events: Vec<serde_json::Value>,
}

/// Every batch in `db`, by session and seq, through a read-only connection (it neither
/// writes nor checkpoints, so the collector's files stay as they are). Empty while the
/// database does not exist yet.
pub fn stored_batches(db: &Path) -> Vec<StoredBatch> {
    use rusqlite::{Connection, OpenFlags};
    if !db.exists() {
        return Vec::new();
    }
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the database read-only");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = match conn
        .prepare("SELECT session_id, seq, pvid, events FROM batches ORDER BY session_id, seq")
    {
        Ok(s) => s,
        // The collector has not created its tables yet.
        Err(_) => return Vec::new(),
    };
    let rows = stmt
        .query_map([], |r| {
            Ok(StoredBatch {
                sid: r.get(0)?,
                seq: r.get::<_, i64>(1)? as u64,
                pvid: r.get(2)?,
                events: serde_json::from_str(&r.get::<_, String>(3)?).expect("events are JSON"),
            })
        })
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// Polls the database until `f` accepts what is stored (at most `limit`).
pub fn wait_stored<T>(
    db: &Path,
    limit: Duration,
    what: &str,
    mut f: impl FnMut(&[StoredBatch]) -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        let batches = stored_batches(db);
        if let Some(v) = f(&batches) {
            return v;
        }
        if start.elapsed() > limit {
            let summary: Vec<String> = batches
                .iter()
                .map(|b| {
                    let kinds: Vec<&str> =
                        b.events.iter().filter_map(|e| e["k"].as_str()).collect();
                    format!("seq {} pv {}: {:?}", b.seq, b.pvid, kinds)
                })
                .collect();
            panic!("{what}: not stored within {limit:?}; stored:\n{summary:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every session in the SQLite file `db` with its batches, through the store's own
/// reader (a second connection).
pub fn stored_sessions(db: &Path) -> Vec<(String, Vec<understudy::event::Batch>)> {
    use understudy::store::SessionStore;
    let store = understudy::store::SqliteStore::open(db).unwrap();
    store
        .list_sessions()
        .unwrap()
        .into_iter()
        .map(|s| {
            let batches = store.session_batches(&s.id).unwrap();
            (s.id, batches)
        })
        .collect()
}

/// Every byte of every file under `dir` (the database, its -wal and -shm, anything else).
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}
