//! The browser driver: the only code that talks to Chromium (over CDP, with chromiumoxide).
//!
//! It launches (or connects to) a Chromium, opens isolated tabs (one browser context each,
//! so cookies and storage never leak between users), and offers the few page operations a
//! user needs: go to a URL, click a selector or a point with trusted mouse events, type, press
//! a key, scroll, read the page, and wait for the page to settle by its own signals (DOM
//! mutations, requests in flight, navigation), never by fixed sleeps.
//!
//! Every CDP call has a timeout. A tab can capture itself: it then injects the same
//! `capture.js` the collector serves, and receives its batches through a CDP binding instead
//! of HTTP.
//!
//! Policy lives elsewhere: this module knows *how* to click, not *what* to click.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetDeviceMetricsOverrideParams, SetTouchEmulationEnabledParams,
};
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, DispatchMouseEventParams, DispatchMouseEventType,
    InsertTextParams, MouseButton,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CloseParams, EventFrameRequestedNavigation,
    EventFrameStartedLoading, EventFrameStoppedLoading, NavigateParams,
};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::cdp::js_protocol::heap_profiler::CollectGarbageParams;
use chromiumoxide::cdp::js_protocol::profiler::{
    EnableParams as ProfilerEnableParams, SetSamplingIntervalParams,
    StartParams as ProfilerStartParams, StopParams as ProfilerStopParams,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    AddBindingParams, EventBindingCalled, GetHeapUsageParams,
};
use chromiumoxide::Page;
use futures::StreamExt;
use serde::de::DeserializeOwned;

use crate::event::Batch;

/// Debian's Chromium.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-headless-shell`: the same engine without the browser's window UI.
/// A browser context in full Chromium opens a window with its own WebUI renderers
/// (omnibox popups) that keep a core busy even when idle; the shell has none, and a fresh
/// context with a page costs about a fifth of the CPU. Preferred when installed.
pub const HEADLESS_SHELL: &str = "/usr/bin/chromium-headless-shell";

/// The Chromium to launch: `UNDERSTUDY_CHROMIUM` if set, else the headless shell if
/// installed, else Debian's Chromium.
pub fn default_executable() -> PathBuf {
    if let Some(p) = std::env::var_os("UNDERSTUDY_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if Path::new(HEADLESS_SHELL).exists() {
        return PathBuf::from(HEADLESS_SHELL);
    }
    PathBuf::from(DEFAULT_CHROMIUM)
}

/// Whether `executable` is the headless shell, which only knows the old headless mode
/// (full Chromium runs the new one).
pub fn is_headless_shell(executable: &Path) -> bool {
    executable
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("headless-shell"))
}

/// Name of the CDP binding capture.js hands its batches to in simulation.
pub const BINDING: &str = "__understudyEmit";

/// Adds command-line flags (`--key` or `--key=value`) to a launch configuration.
///
/// chromiumoxide writes the leading `--` itself and takes `key=value` apart only when
/// given as a pair: a flag handed over whole reaches Chromium as `----key`, which Chromium
/// ignores without a word.
pub fn with_flags<'a>(
    mut config: chromiumoxide::browser::BrowserConfigBuilder,
    flags: impl IntoIterator<Item = &'a str>,
) -> chromiumoxide::browser::BrowserConfigBuilder {
    for flag in flags {
        let bare = flag.trim_start_matches('-');
        config = match bare.split_once('=') {
            Some((key, value)) => config.arg((key, value)),
            None => config.arg(bare),
        };
    }
    config
}

/// Flags every launch passes: headless on a closed network, as root in a container.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    // No GPU process and no software compositing: about a sixth less CPU per simulated
    // user on a 2-core runner, nothing a page can see.
    "--in-process-gpu",
    "--disable-gpu-compositing",
    "--disable-software-rasterizer",
    "--disable-quic",
    "--no-first-run",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
];

/// In-page probe for settle detection: counts requests in flight and remembers the last DOM
/// mutation. Installed on every new document of a tab, before the page's own scripts.
const PROBE_JS: &str = r#"(function(){
if (window.__usProbe) return;
var p = window.__usProbe = {inflight: 0, started: 0, lastMut: performance.now(), errors: 0, failed: 0};
new MutationObserver(function(){ p.lastMut = performance.now(); })
  .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
var f = window.fetch;
if (f) window.fetch = function(){ p.inflight++; p.started++; var r = f.apply(this, arguments);
  r.then(function(res){ if (res && res.status >= 400) p.failed++; done(); },
         function(){ p.failed++; done(); }); return r; };
function done(){ p.inflight = Math.max(0, p.inflight - 1); p.lastMut = performance.now(); }
var send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function(){ p.inflight++; p.started++; var x = this;
  x.addEventListener('loadend', function(){ if (!x.status || x.status >= 400) p.failed++; done(); });
  return send.apply(this, arguments); };
addEventListener('error', function(){ p.errors++; });
addEventListener('unhandledrejection', function(){ p.errors++; });
})();"#;

/// Longest single in-page wait of [`Tab::settle`] and [`Tab::reaction_since`]; longer waits
/// take several evaluations, so none comes near the CDP call timeout.
pub const SETTLE_CHUNK: Duration = Duration::from_secs(2);

/// What can go wrong talking to the browser. All of these are infrastructure failures.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("chromium is not at {0}: install Debian's `chromium` package")]
    Missing(PathBuf),
    #[error("failed to launch chromium: {0}")]
    Launch(String),
    #[error("CDP call `{what}` timed out after {after:?}")]
    Timeout { what: &'static str, after: Duration },
    #[error("CDP call `{what}` failed: {message}")]
    Cdp { what: &'static str, message: String },
    #[error("page script `{what}` returned something unexpected: {message}")]
    Script { what: &'static str, message: String },
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
}

/// How to get a browser.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Local Chromium binary.
    pub executable: PathBuf,
    /// A remote CDP endpoint (`ws://…` or `http://host:9222`) to use instead of launching.
    pub remote: Option<String>,
    /// Upper bound for any single CDP call.
    pub call_timeout: Duration,
    /// Upper bound for a navigation.
    pub nav_timeout: Duration,
    /// Extra Chromium flags after [`CHROMIUM_FLAGS`]; by default from the whitespace-separated
    /// `UNDERSTUDY_CHROMIUM_ARGS` environment variable.
    pub extra_args: Vec<String>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            executable: default_executable(),
            remote: None,
            call_timeout: Duration::from_secs(10),
            nav_timeout: Duration::from_secs(20),
            extra_args: std::env::var("UNDERSTUDY_CHROMIUM_ARGS")
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }
}

/// Runs a CDP future under the driver's timeout and maps its error.
async fn cdp<T, E: std::fmt::Display>(
    what: &'static str,
    after: Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, DriverError> {
    match tokio::time::timeout(after, fut).await {
        Err(_) => Err(DriverError::Timeout { what, after }),
        Ok(Err(e)) => Err(DriverError::Cdp {
            what,
            message: e.to_string(),
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Pids of `root` and of all its descendants, parents first, read from `/proc` (empty
/// where there is no `/proc`).
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`, where comm may hold spaces and parentheses.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    if parent_of.iter().all(|&(pid, _)| pid != root) {
        return Vec::new();
    }
    let mut tree = vec![root];
    let mut i = 0;
    while let Some(&parent) = tree.get(i) {
        tree.extend(
            parent_of
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    tree
}

/// Sends SIGKILL to every pid in `pids`, synchronously (so it works in `Drop`). The crate
/// forbids unsafe code, hence kill(1) rather than kill(2); the shell's builtin if kill(1)
/// is not installed.
pub fn kill_pids(pids: &[u32]) {
    use std::process::{Command, Stdio};
    if pids.is_empty() {
        return;
    }
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let quiet = |c: &mut Command| {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    if quiet(Command::new("kill").arg("-9").args(&pids)).is_err() {
        let _ = quiet(
            Command::new("sh")
                .args(["-c", "kill -9 \"$@\"", "sh"])
                .args(&pids),
        );
    }
}

/// Kills a launched browser's whole process tree unless it has already exited: for `Drop`,
/// where `Browser::close` (async) cannot run. chromiumoxide's own kill-on-drop signals only
/// the process it spawned, and Debian's `/usr/bin/chromium-headless-shell` is a shell script
/// that runs the real browser as its child (without `exec`): killing the script alone leaves
/// the browser, its zygotes and renderers running, reparented to init. So the tree is read
/// from `/proc` while the script still holds it together, and all of it is killed at once.
pub fn kill_browser_tree(browser: &mut Browser) {
    let Some(child) = browser.get_mut_child() else {
        return; // connected to a remote browser, not ours to kill
    };
    let child = child.as_mut_inner();
    if !matches!(child.try_wait(), Ok(None)) {
        return; // exited (closed) or reaped already
    }
    if let Some(pid) = child.id() {
        kill_pids(&process_tree(pid));
    }
    let _ = child.start_kill();
}

/// One Chromium process (or remote endpoint) and its CDP handler task.
pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    config: DriverConfig,
    /// Pid of the process launched (none for a remote browser).
    pid: Option<u32>,
    _profile: Option<tempfile::TempDir>,
}

impl Chromium {
    /// Launches a local headless Chromium, or connects to `config.remote`.
    pub async fn launch(config: DriverConfig) -> Result<Chromium, DriverError> {
        let (mut browser, mut handler, profile) = if let Some(url) = &config.remote {
            let (b, h) = cdp("connect", config.nav_timeout, Browser::connect(url.clone())).await?;
            (b, h, None)
        } else {
            if !config.executable.exists() {
                return Err(DriverError::Missing(config.executable.clone()));
            }
            let profile = tempfile::Builder::new()
                .prefix("understudy-chromium-")
                .tempdir()
                .map_err(|e| DriverError::Launch(e.to_string()))?;
            let mut cfg = BrowserConfig::builder().chrome_executable(&config.executable);
            if !is_headless_shell(&config.executable) {
                cfg = cfg.new_headless_mode();
            }
            let cfg = cfg
                .no_sandbox()
                .user_data_dir(profile.path())
                .viewport(None)
                .window_size(1280, 800)
                .request_timeout(config.call_timeout)
                .launch_timeout(Duration::from_secs(30));
            let flags = CHROMIUM_FLAGS.iter().copied();
            let cfg = with_flags(
                cfg,
                flags.chain(config.extra_args.iter().map(String::as_str)),
            )
            .build()
            .map_err(DriverError::Launch)?;
            let (b, h) = Browser::launch(cfg)
                .await
                .map_err(|e| DriverError::Launch(e.to_string()))?;
            (b, h, Some(profile))
        };
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    tracing::debug!(error = %e, "CDP handler");
                }
            }
        });
        let pid = browser.get_mut_child().and_then(|c| c.as_mut_inner().id());
        Ok(Chromium {
            browser,
            handler,
            config,
            pid,
            _profile: profile,
        })
    }

    /// Pid of the launched browser process (the one spawned, which may be a wrapper script
    /// around the browser); `None` for a remote browser.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The browser's product string, e.g. `Chrome/156.0.8078.114`.
    pub async fn version(&self) -> Result<String, DriverError> {
        let v = cdp(
            "Browser.getVersion",
            self.config.call_timeout,
            self.browser.version(),
        )
        .await?;
        Ok(v.product)
    }

    /// Opens a tab in a fresh browser context.
    pub async fn open(&self, opts: &TabOptions) -> Result<Tab, DriverError> {
        self.open_tab(opts, true).await
    }

    /// Opens a tab in a fresh browser context without the settle probe, whose
    /// MutationObserver would add work to every DOM change: for benchmarks that measure a
    /// page's own main-thread cost (`understudy bench capture`). [`Tab::settle`] and
    /// [`Tab::reaction_since`] do not work in such a tab.
    pub async fn open_unprobed(&self, opts: &TabOptions) -> Result<Tab, DriverError> {
        self.open_tab(opts, false).await
    }

    async fn open_tab(&self, opts: &TabOptions, probe: bool) -> Result<Tab, DriverError> {
        let t = self.config.call_timeout;
        let ctx = cdp(
            "Target.createBrowserContext",
            t,
            self.browser
                .create_browser_context(CreateBrowserContextParams::builder().build()),
        )
        .await?;
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(ctx.clone())
            .build()
            .map_err(|e| DriverError::Cdp {
                what: "Target.createTarget",
                message: e,
            })?;
        let page = cdp("Target.createTarget", t, self.browser.new_page(params)).await?;
        let mut tab = Tab {
            page,
            ctx: Some(ctx),
            batches: Arc::new(Mutex::new(Vec::new())),
            listener: None,
            nav: Arc::new(Mutex::new(NavState {
                loading: 0,
                last: Instant::now(),
            })),
            nav_listener: None,
            config: self.config.clone(),
        };
        tab.nav_listener = Some(tab.watch_navigation().await?);
        tab.listener = tab.setup(opts, probe).await?;
        Ok(tab)
    }

    /// Closes the browser and reaps its process.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.browser.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.browser.wait()).await;
        self.handler.abort();
    }

    /// Disposes a tab's browser context (closing the tab with it).
    pub async fn dispose(&self, mut tab: Tab) -> Vec<Batch> {
        let batches = tab.take_batches();
        for l in [tab.listener.take(), tab.nav_listener.take()]
            .into_iter()
            .flatten()
        {
            l.abort();
        }
        if let Some(ctx) = tab.ctx.take() {
            let _ = cdp(
                "Target.disposeBrowserContext",
                self.config.call_timeout,
                self.browser.dispose_browser_context(ctx),
            )
            .await;
        }
        batches
    }
}

impl Drop for Chromium {
    /// Without [`Chromium::close`] (a runner dropped, a task panicking, a restart replacing
    /// a failed browser), the browser and its renderers are killed here: they must not
    /// outlive their owner.
    fn drop(&mut self) {
        kill_browser_tree(&mut self.browser);
        self.handler.abort();
    }
}

/// How a tab presents itself and whether it records itself.
#[derive(Debug, Clone)]
pub struct TabOptions {
    /// Viewport in CSS pixels.
    pub width: u32,
    pub height: u32,
    /// Emulate a touch device.
    pub touch: bool,
    /// Inject capture.js and collect its batches through a CDP binding.
    pub capture: bool,
    /// A script to run on every new document before the page's own (e.g. seeding
    /// `Math.random` so page randomness is the same for a user on both builds).
    pub init_script: Option<String>,
}

impl Default for TabOptions {
    fn default() -> Self {
        TabOptions {
            width: 1280,
            height: 800,
            touch: false,
            capture: false,
            init_script: None,
        }
    }
}

/// Where a clickable element is and what it is, resolved in one page round trip.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Located {
    pub x: f64,
    pub y: f64,
    /// Whether the element is visible and enabled.
    pub usable: bool,
}

/// What the page looked like when it settled.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
pub struct Settled {
    /// Milliseconds waited.
    pub waited_ms: f64,
    /// Whether the wait ran out before the page was quiet.
    pub timed_out: bool,
}

/// One open tab in its own browser context.
pub struct Tab {
    page: Page,
    ctx: Option<BrowserContextId>,
    batches: Arc<Mutex<Vec<Batch>>>,
    listener: Option<tokio::task::JoinHandle<()>>,
    nav: Arc<Mutex<NavState>>,
    nav_listener: Option<tokio::task::JoinHandle<()>>,
    config: DriverConfig,
}

/// Navigation activity of a tab, from CDP's frame events.
#[derive(Debug, Clone, Copy)]
struct NavState {
    /// Frames that started loading and have not stopped.
    loading: i64,
    /// When the last navigation or loading event arrived.
    last: Instant,
}

impl Tab {
    /// Follows frame navigation events, so `settle` never mistakes the old document for the
    /// new one in the moment between a click and the navigation it causes.
    async fn watch_navigation(&self) -> Result<tokio::task::JoinHandle<()>, DriverError> {
        let t = self.config.call_timeout;
        let requested = cdp(
            "Page.frameRequestedNavigation listener",
            t,
            self.page.event_listener::<EventFrameRequestedNavigation>(),
        )
        .await?
        .map(|_| 0i64);
        let started = cdp(
            "Page.frameStartedLoading listener",
            t,
            self.page.event_listener::<EventFrameStartedLoading>(),
        )
        .await?
        .map(|_| 1i64);
        let stopped = cdp(
            "Page.frameStoppedLoading listener",
            t,
            self.page.event_listener::<EventFrameStoppedLoading>(),
        )
        .await?
        .map(|_| -1i64);
        let nav = self.nav.clone();
        let mut all = futures::stream::select(requested, futures::stream::select(started, stopped));
        Ok(tokio::spawn(async move {
            while let Some(delta) = all.next().await {
                let mut n = nav.lock().unwrap();
                n.loading = (n.loading + delta).max(0);
                n.last = Instant::now();
            }
        }))
    }

    /// Whether a navigation or load event arrived after `since`.
    pub fn navigated_since(&self, since: Instant) -> bool {
        self.nav.lock().unwrap().last > since
    }

    async fn setup(
        &self,
        opts: &TabOptions,
        probe: bool,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, DriverError> {
        let t = self.config.call_timeout;
        let metrics = SetDeviceMetricsOverrideParams::builder()
            .width(opts.width as i64)
            .height(opts.height as i64)
            .device_scale_factor(if opts.touch { 2.0 } else { 1.0 })
            .mobile(opts.touch)
            .build()
            .map_err(|e| DriverError::Cdp {
                what: "Emulation.setDeviceMetricsOverride",
                message: e,
            })?;
        cdp(
            "Emulation.setDeviceMetricsOverride",
            t,
            self.page.execute(metrics),
        )
        .await?;
        if opts.touch {
            let touch = SetTouchEmulationEnabledParams::builder()
                .enabled(true)
                .max_touch_points(5)
                .build()
                .map_err(|e| DriverError::Cdp {
                    what: "Emulation.setTouchEmulationEnabled",
                    message: e,
                })?;
            cdp(
                "Emulation.setTouchEmulationEnabled",
                t,
                self.page.execute(touch),
            )
            .await?;
        }
        if probe {
            self.add_init_script(PROBE_JS).await?;
        }
        if let Some(script) = &opts.init_script {
            self.add_init_script(script).await?;
        }
        if !opts.capture {
            return Ok(None);
        }
        let mut calls = cdp(
            "Runtime.bindingCalled listener",
            t,
            self.page.event_listener::<EventBindingCalled>(),
        )
        .await?;
        let sink = self.batches.clone();
        let listener = tokio::spawn(async move {
            while let Some(call) = calls.next().await {
                if call.name != BINDING {
                    continue;
                }
                match crate::event::from_json::<Batch>(&call.payload) {
                    Ok(b) if b.validate().is_ok() => sink.lock().unwrap().push(b),
                    Ok(_) | Err(_) => tracing::warn!("capture binding sent an invalid batch"),
                }
            }
        });
        cdp(
            "Runtime.addBinding",
            t,
            self.page.execute(AddBindingParams::new(BINDING)),
        )
        .await?;
        self.add_init_script(crate::capture::SCRIPT).await?;
        Ok(Some(listener))
    }

    async fn add_init_script(&self, source: &str) -> Result<(), DriverError> {
        let params = AddScriptToEvaluateOnNewDocumentParams::builder()
            .source(source)
            .build()
            .map_err(|e| DriverError::Cdp {
                what: "Page.addScriptToEvaluateOnNewDocument",
                message: e,
            })?;
        cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            self.config.call_timeout,
            self.page.execute(params),
        )
        .await?;
        Ok(())
    }

    /// Navigates and waits for the load event.
    pub async fn goto(&self, url: &str) -> Result<(), DriverError> {
        let nav = tokio::time::timeout(
            self.config.nav_timeout,
            self.page.goto(NavigateParams::new(url)),
        )
        .await;
        match nav {
            Err(_) => Err(DriverError::Unreachable {
                url: url.to_string(),
                message: format!("no load within {:?}", self.config.nav_timeout),
            }),
            Ok(Err(e)) => Err(DriverError::Unreachable {
                url: url.to_string(),
                message: e.to_string(),
            }),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Evaluates an expression and deserialises its JSON-able result. `undefined` becomes
    /// `null`. A page that is navigating away answers `None`.
    pub async fn eval<T: DeserializeOwned>(&self, js: &str) -> Result<Option<T>, DriverError> {
        let wrapped =
            format!("(() => {{ const v = ({js}); return v === undefined ? null : v; }})()");
        let r = tokio::time::timeout(self.config.call_timeout, self.page.evaluate(wrapped)).await;
        match r {
            Err(_) => Err(DriverError::Timeout {
                what: "Runtime.evaluate",
                after: self.config.call_timeout,
            }),
            // The document went away under us (navigation): not an error for a user.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "evaluate during navigation");
                Ok(None)
            }
            Ok(Ok(v)) => match v.into_value::<Option<T>>() {
                Ok(v) => Ok(v),
                Err(e) => Err(DriverError::Script {
                    what: "evaluate",
                    message: e.to_string(),
                }),
            },
        }
    }

    /// Resolves a selector to the centre of its first match, scrolled into view, in one call.
    pub async fn locate(&self, selector: &str) -> Result<Option<Located>, DriverError> {
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null;
               if (e.scrollIntoViewIfNeeded) e.scrollIntoViewIfNeeded(); else e.scrollIntoView({{block:'center'}});
               const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
               const usable = r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none' && !e.disabled;
               return {{x: r.x + r.width / 2, y: r.y + r.height / 2, usable}}; }})()",
            sel = serde_json::to_string(selector).unwrap_or_default()
        );
        self.eval::<Located>(&js).await
    }

    /// Clicks the first element matching `selector` with trusted mouse events. `Ok(false)`
    /// when nothing usable matches.
    pub async fn click(&self, selector: &str) -> Result<bool, DriverError> {
        match self.locate(selector).await? {
            Some(at) if at.usable => {
                self.click_at(at.x, at.y).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A press and release of the left button at a point, as a person clicks.
    /// Clicks the first match of `selector` the way chromiumoxide does it
    /// (`Page::find_element` then `Element::click`: scroll into view, box model, mouse
    /// events). Not used by the simulator: it is the anchor `understudy bench click`
    /// measures [`Tab::click`] against.
    pub async fn click_with_chromiumoxide(&self, selector: &str) -> Result<(), DriverError> {
        let t = self.config.call_timeout;
        let el = cdp("DOM.querySelector", t, self.page.find_element(selector)).await?;
        cdp("Element.click", t, el.click()).await?;
        Ok(())
    }

    /// A trusted left click at (x, y): mouse moved, pressed, released. Costs about one frame
    /// (16.7 ms: the renderer acknowledges input on its frame clock), half of
    /// chromiumoxide's `Element::click` (`understudy bench click`).
    pub async fn click_at(&self, x: f64, y: f64) -> Result<(), DriverError> {
        let t = self.config.call_timeout;
        let event = |kind| {
            DispatchMouseEventParams::builder()
                .r#type(kind)
                .x(x)
                .y(y)
                .button(MouseButton::Left)
                .click_count(1)
                .build()
                .map_err(|e| DriverError::Cdp {
                    what: "Input.dispatchMouseEvent",
                    message: e,
                })
        };
        let moved = DispatchMouseEventParams::new(DispatchMouseEventType::MouseMoved, x, y);
        let (pressed, released) = (
            event(DispatchMouseEventType::MousePressed)?,
            event(DispatchMouseEventType::MouseReleased)?,
        );
        cdp("Input.dispatchMouseEvent", t, self.page.execute(moved)).await?;
        cdp("Input.dispatchMouseEvent", t, self.page.execute(pressed)).await?;
        cdp("Input.dispatchMouseEvent", t, self.page.execute(released)).await?;
        Ok(())
    }

    /// Types text into whatever has focus, one character at a time (one `input` event
    /// each), waiting `gap(i)` after character `i`.
    pub async fn type_text(
        &self,
        text: &str,
        mut gap: impl FnMut(usize) -> Duration,
    ) -> Result<(), DriverError> {
        for (i, ch) in text.chars().enumerate() {
            cdp(
                "Input.insertText",
                self.config.call_timeout,
                self.page.execute(InsertTextParams::new(ch.to_string())),
            )
            .await?;
            let pause = gap(i);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(())
    }

    /// Presses one key (e.g. `Backspace`, `Enter`, `Tab`).
    pub async fn press(&self, key: &str) -> Result<(), DriverError> {
        let (code, vk, text) = match key {
            "Enter" => ("Enter", 13, Some("\r")),
            "Backspace" => ("Backspace", 8, None),
            "Tab" => ("Tab", 9, None),
            "Escape" => ("Escape", 27, None),
            _ => (key, 0, None),
        };
        for kind in [DispatchKeyEventType::KeyDown, DispatchKeyEventType::KeyUp] {
            let mut b = DispatchKeyEventParams::builder()
                .r#type(kind.clone())
                .key(key)
                .code(code)
                .windows_virtual_key_code(vk)
                .native_virtual_key_code(vk);
            if let (Some(t), DispatchKeyEventType::KeyDown) = (text, &kind) {
                b = b.text(t);
            }
            let params = b.build().map_err(|e| DriverError::Cdp {
                what: "Input.dispatchKeyEvent",
                message: e,
            })?;
            cdp(
                "Input.dispatchKeyEvent",
                self.config.call_timeout,
                self.page.execute(params),
            )
            .await?;
        }
        Ok(())
    }

    /// Scrolls the document by `dy` pixels.
    pub async fn scroll_by(&self, dy: f64) -> Result<(), DriverError> {
        self.eval::<bool>(&format!("(window.scrollBy(0, {dy}), true)"))
            .await
            .map(|_| ())
    }

    /// The document's path, once it has finished loading; `None` while navigating.
    pub async fn path(&self) -> Result<Option<String>, DriverError> {
        self.eval::<String>("document.readyState === 'complete' ? location.pathname : null")
            .await
    }

    /// Waits until the page is quiet: loaded, no request in flight, and no DOM mutation for
    /// `quiet`; or until `max` has passed. A navigation in progress counts as not quiet.
    ///
    /// The page watches itself (one evaluation awaiting an in-page promise, at most
    /// [`SETTLE_CHUNK`] each), so a wait costs a round trip or two rather than one every few
    /// milliseconds. Frame loading state comes from CDP events, read without a round trip.
    pub async fn settle(&self, quiet: Duration, max: Duration) -> Result<Settled, DriverError> {
        let start = Instant::now();
        let quiet_ms = quiet.as_millis();
        loop {
            let left = max.saturating_sub(start.elapsed());
            let nav = *self.nav.lock().unwrap();
            let frames_quiet = nav.loading == 0 && nav.last.elapsed() >= quiet;
            if frames_quiet {
                let asked = Instant::now();
                let quiet = format!(
                    "p && document.readyState === 'complete' && p.inflight === 0 \
                     && performance.now() - p.lastMut >= {quiet_ms}"
                );
                // `None`: the document went away mid-wait (a navigation); look again.
                if self.poll_in_page(&quiet, left).await? == Some(true)
                    && !self.navigated_since(asked)
                {
                    return Ok(Settled {
                        waited_ms: start.elapsed().as_secs_f64() * 1000.0,
                        timed_out: false,
                    });
                }
            } else {
                // Loading: wait on the events, which cost nothing to read.
                tokio::time::sleep(Duration::from_millis(15).min(left)).await;
            }
            if start.elapsed() >= max {
                return Ok(Settled {
                    waited_ms: start.elapsed().as_secs_f64() * 1000.0,
                    timed_out: true,
                });
            }
        }
    }

    /// Waits up to `max` for the page to react after the probe's mark (set by the caller in
    /// the page as `__usProbe.mark` / `markStarted`): a DOM mutation, a request, or a
    /// navigation. Watched in the page, like [`Tab::settle`].
    pub async fn reaction_since(&self, since: Instant, max: Duration) -> Result<bool, DriverError> {
        let start = Instant::now();
        loop {
            if self.navigated_since(since) {
                return Ok(true);
            }
            let left = max.saturating_sub(start.elapsed());
            let reacted =
                "!p || p.mark === undefined || p.lastMut > p.mark || p.started > p.markStarted";
            // `None`: the document is being replaced, which is a reaction.
            match self.poll_in_page(reacted, left).await? {
                Some(false) => {}
                _ => return Ok(true),
            }
            if start.elapsed() >= max {
                return Ok(self.navigated_since(since));
            }
        }
    }

    /// One evaluation that polls `cond` in the page every 15 ms (with `p` bound to the
    /// probe) and answers `true` as soon as it holds, `false` after `limit` (at most
    /// [`SETTLE_CHUNK`]), `None` if the document went away meanwhile.
    async fn poll_in_page(&self, cond: &str, limit: Duration) -> Result<Option<bool>, DriverError> {
        let js = format!(
            "new Promise(function (res) {{ var t0 = performance.now();
               (function poll() {{ var p = window.__usProbe;
                 if ({cond}) return res(true);
                 if (performance.now() - t0 >= {chunk}) return res(false);
                 setTimeout(poll, 15); }})(); }})",
            chunk = limit.min(SETTLE_CHUNK).as_millis()
        );
        self.eval::<bool>(&js).await
    }

    /// Closes the page as a person closes a tab: `pagehide` fires, pending batches flush.
    pub async fn close_page(&self) -> Result<(), DriverError> {
        cdp(
            "Page.close",
            self.config.call_timeout,
            self.page.execute(CloseParams::default()),
        )
        .await
        .map(|_| ())
    }

    /// Forces a full garbage collection in the page's JavaScript heap.
    pub async fn collect_garbage(&self) -> Result<(), DriverError> {
        cdp(
            "HeapProfiler.collectGarbage",
            self.config.call_timeout,
            self.page.execute(CollectGarbageParams::default()),
        )
        .await
        .map(|_| ())
    }

    /// The page's JavaScript heap: (used, allocated) bytes.
    pub async fn heap_usage(&self) -> Result<(f64, f64), DriverError> {
        let r = cdp(
            "Runtime.getHeapUsage",
            self.config.call_timeout,
            self.page.execute(GetHeapUsageParams::default()),
        )
        .await?;
        Ok((r.result.used_size, r.result.total_size))
    }

    /// Starts V8's sampling CPU profiler in this tab, sampling every `interval_us`.
    pub async fn profile_start(&self, interval_us: i64) -> Result<(), DriverError> {
        let t = self.config.call_timeout;
        cdp(
            "Profiler.enable",
            t,
            self.page.execute(ProfilerEnableParams::default()),
        )
        .await?;
        cdp(
            "Profiler.setSamplingInterval",
            t,
            self.page
                .execute(SetSamplingIntervalParams::new(interval_us)),
        )
        .await?;
        cdp(
            "Profiler.start",
            t,
            self.page.execute(ProfilerStartParams::default()),
        )
        .await
        .map(|_| ())
    }

    /// Stops the CPU profiler and returns its profile (the `.cpuprofile` JSON DevTools opens).
    pub async fn profile_stop(&self) -> Result<serde_json::Value, DriverError> {
        let r = cdp(
            "Profiler.stop",
            self.config.call_timeout,
            self.page.execute(ProfilerStopParams::default()),
        )
        .await?;
        serde_json::to_value(&r.result.profile).map_err(|e| DriverError::Cdp {
            what: "Profiler.stop",
            message: e.to_string(),
        })
    }

    /// A copy of the batches capture.js has handed over so far (capturing tabs only).
    pub fn batches(&self) -> Vec<Batch> {
        self.batches.lock().unwrap().clone()
    }

    /// The batches capture.js has handed over so far, taken out of the tab.
    pub fn take_batches(&mut self) -> Vec<Batch> {
        std::mem::take(&mut *self.batches.lock().unwrap())
    }
}
