//! The demo's scripted population of "real" users.
//!
//! These people use the shop in a real (headless) Chromium, one isolated browser context
//! each, and are recorded the way real visitors are: by the `capture.js` the shop's pages
//! load from the collector. Their policy is hand-written here and shares nothing with the
//! simulator, which has to *learn* it from their recordings:
//!
//! * **Personas** ([`Persona`]), drawn by weight: a window shopper, a decisive buyer, a
//!   comparer who views several products, and a mobile user on a touch viewport.
//! * **Human timing**: log-normal think times and per-key typing gaps, at human scale and
//!   then multiplied by [`PopulationConfig::time_scale`] so a run is fast. Waits *for the
//!   page* (reactions, navigations, the payment) are real time, never scaled, and so are the
//!   gaps between the clicks of a rage burst (the frustration detectors' thresholds are
//!   absolute).
//! * **Mistakes**: clicking a product picture that is not a link, typos fixed with
//!   Backspace, an e-mail typed wrong and corrected after the form complains.
//! * **Patience**: each person waits at most their patience (real seconds) for the payment
//!   to go through, then leaves.
//! * **Retries**: a click with no visible reaction within [`REACTION_WINDOW`] is repeated
//!   quickly 1–3 times (a rage burst). If that fails too, some people reload the page and try
//!   again once; the rest give up.
//!
//! Every random draw comes from a ChaCha stream keyed by (seed, user, purpose, step), so
//! user *i* is the same person on every build: their choices only diverge where the build
//! makes them (a dead button, a slow payment, a missing link). The page's own
//! `Math.random` is seeded per (seed, user, document) too (see `page_init_js`), so what
//! the shop leaves to chance also falls the same way for the same person: with a fixed seed
//! the population's conversion on each build, and so the true delta, is reproducible up to
//! page timing.
//!
//! Perception is by what a person could see: a fingerprint of the page's visible text and
//! visible states, the path, and whether the tab is loading a new page. All waiting happens
//! inside the page (one promise per wait), because each CDP round trip costs browser CPU.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::simulate::driver::{Chromium, DriverError, Tab, TabOptions};

/// How long a person watches for a reaction to a click before deciding it did nothing.
pub const REACTION_WINDOW: Duration = Duration::from_millis(500);
/// Gap between the clicks of a rage burst (real time): uniform in this range, in ms.
pub const RAGE_GAP_MS: (u64, u64) = (110, 260);
/// Upper bound on one user's whole visit; past it the user counts as an error.
pub const USER_TIMEOUT: Duration = Duration::from_secs(90);
/// Pause between closing a tab and disposing its browser context, so the final beacon
/// leaves the browser.
pub const FLUSH_GRACE: Duration = Duration::from_millis(200);
/// Longest wait for the recorder's uploads before closing a tab.
pub const FINISH_MAX: Duration = Duration::from_millis(2000);

/// How many people, how many at once, and how fast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PopulationConfig {
    /// People to run; user ids are `0..users`.
    pub users: u32,
    /// Tabs open at once.
    pub concurrency: usize,
    /// The seed every draw derives from.
    pub seed: u64,
    /// Multiplier on human think times and typing gaps (e.g. 0.05 turns a 2 s pause into
    /// 100 ms). Waits for the page are never scaled.
    pub time_scale: f64,
}

impl Default for PopulationConfig {
    fn default() -> Self {
        PopulationConfig {
            users: 100,
            concurrency: 6,
            seed: 1,
            time_scale: 0.05,
        }
    }
}

/// Kinds of people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Persona {
    /// Browses, scrolls, rarely buys.
    WindowShopper,
    /// Knows what they want: one product, straight to checkout.
    DecisiveBuyer,
    /// Views several products before picking.
    Comparer,
    /// On a phone: touch viewport, slower typing, more typos, less patience.
    Mobile,
}

impl Persona {
    /// Every persona.
    pub const ALL: [Persona; 4] = [
        Persona::WindowShopper,
        Persona::DecisiveBuyer,
        Persona::Comparer,
        Persona::Mobile,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Persona::WindowShopper => "window_shopper",
            Persona::DecisiveBuyer => "decisive_buyer",
            Persona::Comparer => "comparer",
            Persona::Mobile => "mobile",
        }
    }

    /// Share of the population.
    pub fn weight(self) -> f64 {
        self.profile().weight
    }

    fn profile(self) -> &'static Profile {
        match self {
            Persona::WindowShopper => &WINDOW_SHOPPER,
            Persona::DecisiveBuyer => &DECISIVE_BUYER,
            Persona::Comparer => &COMPARER,
            Persona::Mobile => &MOBILE,
        }
    }
}

/// A persona's habits. Probabilities are per opportunity; times are human-scale.
#[derive(Debug)]
struct Profile {
    weight: f64,
    /// Product pages viewed, inclusive range.
    views: (u32, u32),
    /// Chance to add a viewed product to the cart.
    p_add: f64,
    /// Chance to open the cart once something is in it.
    p_cart: f64,
    /// Chance to go on from the cart to checkout.
    p_checkout: f64,
    /// Chance to press Pay once the form is filled (else: form abandoned).
    p_commit: f64,
    /// Median pause before an ordinary step, ms.
    glance_ms: f64,
    /// Median time reading a product page, ms.
    read_ms: f64,
    /// Log-normal sigma of think times.
    think_sigma: f64,
    /// Median gap between keystrokes, ms.
    key_ms: f64,
    /// Chance per typed character of a typo (wrong key, then Backspace).
    typo_per_char: f64,
    /// Chance to type the e-mail address wrong (caught by the form).
    p_email_slip: f64,
    /// Chance, per product, to click its (non-link) picture first.
    p_image_slip: f64,
    /// Chance to scroll the catalog before choosing.
    p_scroll: f64,
    /// Patience for the payment, real seconds, uniform in this range.
    patience_s: (f64, f64),
    /// Extra clicks after a dead click, inclusive range.
    rage: (u32, u32),
    /// Chance to reload and retry once after a dead rage burst.
    p_reload: f64,
    /// Chance to look in a menu for a link that is not visible.
    p_menu: f64,
    /// Viewport: width, height, touch.
    viewport: (u32, u32, bool),
}

static WINDOW_SHOPPER: Profile = Profile {
    weight: 0.30,
    views: (1, 3),
    p_add: 0.22,
    p_cart: 0.55,
    p_checkout: 0.6,
    p_commit: 0.8,
    glance_ms: 1800.0,
    read_ms: 5000.0,
    think_sigma: 0.6,
    key_ms: 210.0,
    typo_per_char: 0.02,
    p_email_slip: 0.08,
    p_image_slip: 0.3,
    p_scroll: 0.8,
    patience_s: (1.8, 4.0),
    rage: (1, 2),
    p_reload: 0.2,
    p_menu: 0.45,
    viewport: (1280, 800, false),
};

static DECISIVE_BUYER: Profile = Profile {
    weight: 0.30,
    views: (1, 2),
    p_add: 0.95,
    p_cart: 0.97,
    p_checkout: 0.95,
    p_commit: 0.97,
    glance_ms: 900.0,
    read_ms: 2500.0,
    think_sigma: 0.45,
    key_ms: 150.0,
    typo_per_char: 0.015,
    p_email_slip: 0.05,
    p_image_slip: 0.1,
    p_scroll: 0.1,
    patience_s: (2.8, 6.0),
    rage: (2, 3),
    p_reload: 0.5,
    p_menu: 0.7,
    viewport: (1366, 768, false),
};

static COMPARER: Profile = Profile {
    weight: 0.25,
    views: (2, 4),
    p_add: 0.35,
    p_cart: 0.85,
    p_checkout: 0.8,
    p_commit: 0.9,
    glance_ms: 1400.0,
    read_ms: 4500.0,
    think_sigma: 0.5,
    key_ms: 180.0,
    typo_per_char: 0.02,
    p_email_slip: 0.1,
    p_image_slip: 0.25,
    p_scroll: 0.5,
    patience_s: (2.2, 5.0),
    rage: (2, 3),
    p_reload: 0.35,
    p_menu: 0.65,
    viewport: (1280, 800, false),
};

static MOBILE: Profile = Profile {
    weight: 0.15,
    views: (1, 3),
    p_add: 0.55,
    p_cart: 0.85,
    p_checkout: 0.8,
    p_commit: 0.85,
    glance_ms: 1600.0,
    read_ms: 3500.0,
    think_sigma: 0.55,
    key_ms: 280.0,
    typo_per_char: 0.045,
    p_email_slip: 0.15,
    p_image_slip: 0.35,
    p_scroll: 0.9,
    patience_s: (1.5, 4.0),
    rage: (1, 3),
    p_reload: 0.3,
    p_menu: 0.9,
    viewport: (390, 844, true),
};

/// Median pause while filling a form field, ms (before persona speed and scaling).
const FIELD_MS: f64 = 700.0;
/// Relative popularity of products 1..=10.
const POPULARITY: [f64; 10] = [3.0, 2.0, 3.0, 1.5, 2.0, 1.0, 2.0, 2.5, 1.0, 2.0];
/// Extra real time allowed for an ordinary page load or cart update beyond a person's
/// patience. Generous: only the payment tests patience, so a busy machine does not change
/// what people do.
const NAV_SLACK: Duration = Duration::from_secs(12);

/// Why a person gave up on something they were trying to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GaveUp {
    /// Clicked (and re-clicked) a control that did nothing.
    NoReaction { target: String, clicks: u32 },
    /// Waited longer than their patience.
    TooSlow { target: String, waited_ms: u64 },
    /// Could not find a control they needed.
    NotFound { target: String },
    /// The form kept rejecting what they typed.
    FormRejected,
    /// The payment API answered with an error.
    PaymentFailed,
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GaveUp::NoReaction { target, clicks } => {
                write!(f, "{target} did nothing after {clicks} clicks")
            }
            GaveUp::TooSlow { target, waited_ms } => {
                write!(f, "{target} too slow (waited {waited_ms} ms)")
            }
            GaveUp::NotFound { target } => write!(f, "could not find {target}"),
            GaveUp::FormRejected => f.write_str("the form kept rejecting the input"),
            GaveUp::PaymentFailed => f.write_str("the payment failed"),
        }
    }
}

/// How one person's visit went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserOutcome {
    pub user: u32,
    pub persona: Persona,
    /// Reached the confirmation page.
    pub converted: bool,
    /// Clicks (rage clicks included), fields typed, scrolls and navigations.
    pub actions: u32,
    /// Set when the person left because the shop got in their way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gave_up: Option<GaveUp>,
    /// Set when the person left of their own accord (`browsed`, `abandoned_cart`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left: Option<&'static str>,
    /// An infrastructure failure (browser, shop unreachable); not a behaviour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The person's decisions in order (no timings), for determinism checks and debugging.
    pub trace: Vec<String>,
    /// Milliseconds since the visit started at which each `trace` entry was made.
    pub trace_ms: Vec<u64>,
    /// Wall-clock time of the visit, tab opening and closing included.
    pub elapsed_ms: u64,
}

/// What a population run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PopulationReport {
    pub shop_url: String,
    pub config: PopulationConfig,
    /// One per user, by user id.
    pub users: Vec<UserOutcome>,
    /// Wall-clock time of the whole run.
    pub elapsed_ms: u64,
}

impl PopulationReport {
    /// Users who reached the confirmation page.
    pub fn converted(&self) -> usize {
        self.users.iter().filter(|u| u.converted).count()
    }

    /// Users whose visit failed for infrastructure reasons.
    pub fn errors(&self) -> usize {
        self.users.iter().filter(|u| u.error.is_some()).count()
    }

    /// Share of users (errors excluded) who converted.
    pub fn conversion(&self) -> f64 {
        let n = self.users.len() - self.errors();
        if n == 0 {
            0.0
        } else {
            self.converted() as f64 / n as f64
        }
    }

    /// Users who gave up because of the shop.
    pub fn gave_up(&self) -> usize {
        self.users.iter().filter(|u| u.gave_up.is_some()).count()
    }

    /// Finished sessions per wall-clock minute.
    pub fn sessions_per_minute(&self) -> f64 {
        if self.elapsed_ms == 0 {
            return 0.0;
        }
        self.users.len() as f64 * 60_000.0 / self.elapsed_ms as f64
    }

    /// One line: users, conversion, give-ups, errors, speed.
    pub fn summary(&self) -> String {
        format!(
            "{} users, {} converted ({:.1}%), {} gave up, {} errors, {:.1} s ({:.0} sessions/min)",
            self.users.len(),
            self.converted(),
            100.0 * self.conversion(),
            self.gave_up(),
            self.errors(),
            self.elapsed_ms as f64 / 1000.0,
            self.sessions_per_minute()
        )
    }
}

/// Runs `cfg.users` people against the shop at `shop_url` (e.g. `http://127.0.0.1:PORT`),
/// `cfg.concurrency` at a time, each in a fresh browser context. The shop's pages record
/// them through their own capture.js tag (tabs are opened with `capture: false`).
///
/// Fails only when the configuration is invalid or every user hit an infrastructure error;
/// individual failures are reported per user.
pub async fn run_population(
    chromium: &Chromium,
    shop_url: &str,
    cfg: &PopulationConfig,
) -> Result<PopulationReport> {
    if cfg.concurrency == 0 {
        bail!("population concurrency must be at least 1");
    }
    if !(cfg.time_scale.is_finite() && cfg.time_scale >= 0.0) {
        bail!(
            "population time_scale must be a non-negative number, not {}",
            cfg.time_scale
        );
    }
    let base = shop_url.trim_end_matches('/').to_string();
    let start = Instant::now();
    let mut users: Vec<UserOutcome> = futures::stream::iter(0..cfg.users)
        .map(|u| run_user(chromium, &base, cfg, u))
        .buffer_unordered(cfg.concurrency)
        .collect()
        .await;
    users.sort_by_key(|u| u.user);
    let report = PopulationReport {
        shop_url: base,
        config: cfg.clone(),
        users,
        elapsed_ms: start.elapsed().as_millis() as u64,
    };
    if !report.users.is_empty() && report.errors() == report.users.len() {
        let first = report.users[0].error.clone().unwrap_or_default();
        bail!("every population user failed; the first: {first}");
    }
    Ok(report)
}

/// One person's whole visit, tab included.
async fn run_user(
    chromium: &Chromium,
    base: &str,
    cfg: &PopulationConfig,
    user: u32,
) -> UserOutcome {
    let dice = Dice {
        seed: cfg.seed,
        user: user as u64,
    };
    let persona = dice.persona();
    let prof = persona.profile();
    let traits = Traits::draw(&dice, prof);
    let started = Instant::now();
    let mut outcome = UserOutcome {
        user,
        persona,
        converted: false,
        actions: 0,
        gave_up: None,
        left: None,
        error: None,
        trace: vec![format!("persona:{}", persona.name())],
        trace_ms: vec![0],
        elapsed_ms: 0,
    };
    let (width, height, touch) = prof.viewport;
    let opts = TabOptions {
        width,
        height,
        touch,
        capture: false,
        init_script: Some(page_init_js(&dice)),
    };
    // A busy browser can time out creating a tab: try once more before giving up.
    let opened = match chromium.open(&opts).await {
        Ok(t) => Ok(t),
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            chromium.open(&opts).await
        }
    };
    let tab = match opened {
        Ok(t) => t,
        Err(e) => {
            outcome.error = Some(format!("opening a tab: {e}"));
            outcome.elapsed_ms = started.elapsed().as_millis() as u64;
            return outcome;
        }
    };
    let mut walk = Walk {
        tab: &tab,
        base,
        dice,
        persona,
        prof,
        traits,
        scale: cfg.time_scale,
        trace: std::mem::take(&mut outcome.trace),
        trace_ms: std::mem::take(&mut outcome.trace_ms),
        started,
        actions: 0,
    };
    let exit = tokio::time::timeout(USER_TIMEOUT, walk.visit()).await;
    outcome.actions = walk.actions;
    outcome.trace = std::mem::take(&mut walk.trace);
    outcome.trace_ms = std::mem::take(&mut walk.trace_ms);
    match exit {
        Err(_) => outcome.error = Some(format!("the visit took longer than {USER_TIMEOUT:?}")),
        Ok(Err(e)) => outcome.error = Some(e.to_string()),
        Ok(Ok(Exit::Converted)) => outcome.converted = true,
        Ok(Ok(Exit::Left(why))) => outcome.left = Some(why),
        Ok(Ok(Exit::GaveUp(g))) => outcome.gave_up = Some(g),
    }
    // Leave as a person does: close the tab (pagehide flushes the recorder), then let the
    // beacon go before the context is torn down. Before that, let the recorder upload what
    // it holds, so a busy machine does not lose the last page of a visit.
    finish_recording(&tab).await;
    let _ = tab.close_page().await;
    tokio::time::sleep(FLUSH_GRACE).await;
    chromium.dispose(tab).await;
    outcome.elapsed_ms = started.elapsed().as_millis() as u64;
    outcome
}

/// Asks the page's recorder to upload what it holds and waits (at most
/// [`FINISH_MAX`]) until no fetch has been in flight for a few polls.
async fn finish_recording(tab: &Tab) {
    let js = format!(
        "new Promise(function (res) {{
           try {{ if (typeof window.understudy === 'function') window.understudy('flush'); }} catch (e) {{}}
           var t0 = Date.now(), quiet = 0;
           (function poll() {{
             quiet = window.__demoInflight > 0 ? 0 : quiet + 1;
             if (quiet >= 4 || Date.now() - t0 >= {max}) return res(true);
             setTimeout(poll, 25); }})(); }})",
        max = FINISH_MAX.as_millis()
    );
    let _ = tab.eval::<bool>(&js).await;
}

// ---------- randomness ----------

/// The keyed random source of one user: every draw is its own ChaCha stream, keyed by
/// (seed, user, purpose, step), so no draw shifts another.
#[derive(Debug, Clone, Copy)]
struct Dice {
    seed: u64,
    user: u64,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Dice {
    fn rng(&self, purpose: &str, step: u64) -> ChaCha8Rng {
        let mut h = splitmix(self.seed ^ 0x756e_6465_7273_7479); // "understy"
        h = splitmix(h ^ self.user);
        h = splitmix(h ^ fnv1a(purpose));
        h = splitmix(h ^ step);
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            h = splitmix(h);
            chunk.copy_from_slice(&h.to_le_bytes());
        }
        ChaCha8Rng::from_seed(key)
    }

    fn unit(&self, purpose: &str, step: u64) -> f64 {
        self.rng(purpose, step).random::<f64>()
    }

    fn chance(&self, purpose: &str, step: u64, p: f64) -> bool {
        self.unit(purpose, step) < p
    }

    fn range(&self, purpose: &str, step: u64, (lo, hi): (u32, u32)) -> u32 {
        self.rng(purpose, step).random_range(lo..=hi.max(lo))
    }

    fn persona(&self) -> Persona {
        let u = self.unit("persona", 0) * Persona::ALL.iter().map(|p| p.weight()).sum::<f64>();
        let mut acc = 0.0;
        for p in Persona::ALL {
            acc += p.weight();
            if u < acc {
                return p;
            }
        }
        Persona::Mobile
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with this median and log-scale sigma.
fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// What makes this person unlike others of their persona.
#[derive(Debug, Clone)]
struct Traits {
    /// Multiplier on think times and typing gaps.
    speed: f64,
    patience: Duration,
    /// Extra clicks after a dead click.
    rage: u32,
    /// Reload-and-retry attempts after a dead rage burst.
    reloads: u32,
    /// Looks in a menu for a missing link.
    explores: bool,
    name: (&'static str, &'static str),
    domain: &'static str,
    /// Types the card number with spaces.
    card_spaces: bool,
}

const FIRST: [&str; 12] = [
    "Ada", "Bruno", "Chiara", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kavya",
    "Luis",
];
const LAST: [&str; 12] = [
    "Moreau",
    "Okafor",
    "Silva",
    "Nakamura",
    "Novak",
    "Haddad",
    "Lindqvist",
    "Rossi",
    "Kowalski",
    "Mensah",
    "Ibarra",
    "Chen",
];
const DOMAINS: [&str; 4] = [
    "example.com",
    "mail.example",
    "example.org",
    "post.example.net",
];

impl Traits {
    fn draw(dice: &Dice, prof: &Profile) -> Traits {
        let mut r = dice.rng("traits", 0);
        let speed = lognormal(&mut r, 1.0, 0.25).clamp(0.5, 2.0);
        let (lo, hi) = prof.patience_s;
        let patience = Duration::from_secs_f64(r.random_range(lo..=hi));
        let rage = r.random_range(prof.rage.0..=prof.rage.1);
        let reloads = u32::from(r.random_bool(prof.p_reload));
        let explores = r.random_bool(prof.p_menu);
        let name = (
            FIRST[r.random_range(0..FIRST.len())],
            LAST[r.random_range(0..LAST.len())],
        );
        let domain = DOMAINS[r.random_range(0..DOMAINS.len())];
        let card_spaces = r.random_bool(0.6);
        Traits {
            speed,
            patience,
            rage,
            reloads,
            explores,
            name,
            domain,
            card_spaces,
        }
    }
}

/// Runs before the shop's scripts on every document of a person's tab. Two things:
///
/// * It makes the page's own `Math.random` reproducible for this person: each document
///   draws from a stream keyed by (seed, user, how many documents this tab has loaded).
///   So whatever the shop leaves to chance (e.g. a flaky button) falls the same way for
///   the same person on every run, while a reload still rolls again. This controls the
///   measurement; it does not steer behaviour.
/// * It raises `__demoLeaving` when a navigation away starts (`beforeunload`), which is
///   what a person sees as the tab's loading indicator, so a link whose next page is slow
///   to arrive is not mistaken for a dead click.
/// * It counts fetches in flight (`__demoInflight`), so the tab is closed only once the
///   recorder's uploads have left (see [`finish_recording`]).
fn page_init_js(dice: &Dice) -> String {
    let key = splitmix(dice.seed ^ splitmix(dice.user ^ 0x7061_6765)) >> 11; // "page"
    format!(
        r#"(function(){{
  var n = 0;
  try {{ n = +(sessionStorage.getItem('__demo_docs') || 0); sessionStorage.setItem('__demo_docs', String(n + 1)); }} catch (e) {{}}
  var a = ({key} + n * 2654435761) >>> 0, b = Math.floor({key} / 4294967296) >>> 0;
  Math.random = function () {{
    a = (a + 0x6D2B79F5) >>> 0; var t = a ^ b;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }};
  var f = window.fetch;
  if (f) window.fetch = function () {{
    window.__demoInflight = (window.__demoInflight || 0) + 1;
    var r = f.apply(this, arguments), d = function () {{ window.__demoInflight--; }};
    r.then(d, d);
    return r;
  }};
  addEventListener('beforeunload', function () {{ window.__demoLeaving = 1; }});
  addEventListener('pageshow', function () {{ window.__demoLeaving = 0; }});
}})();"#
    )
}

// ---------- perception ----------

/// What a person sees of the page, as a JS function expression: its path and a hash of its
/// visible text and of the states that show (hidden, disabled, invalid, expanded). Empty
/// while a new page is on its way or loading.
const FP_FN: &str = r#"function(){
  if (document.readyState === 'loading' || !document.body || window.__demoLeaving) return '';
  var s = document.body.innerText + '|' +
    document.querySelectorAll('[hidden],[disabled],[aria-invalid=true],[aria-expanded=true]').length;
  var h = 0;
  for (var i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return location.pathname + '#' + h;
}"#;

/// Longest single in-page wait; longer waits take several calls (the driver bounds each).
const WAIT_CHUNK: Duration = Duration::from_secs(2);
/// How often an in-page wait re-checks its condition, ms.
const POLL_MS: u64 = 20;

/// How an in-page wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waited {
    /// The condition held; its (non-empty) value.
    Met(String),
    /// The document went away while waiting (a navigation).
    Gone,
    TimedOut,
}

/// The path of the page once it has loaded; empty while loading.
const HERE_JS: &str = "document.readyState === 'complete' ? location.pathname : ''";

/// What the checkout form shows after pressing Pay.
const FORM_JS: &str = r#"(function(){
  function shown(t){ var e = document.querySelector('[data-testid="' + t + '"]');
    return !!e && !e.hidden && e.getClientRects().length > 0; }
  var bad = document.querySelector('[aria-invalid=true]');
  return {paying: shown('paying'), error: shown('form-error'),
    invalid: bad ? (bad.getAttribute('data-testid') || bad.id || '') : null};
})()"#;

#[derive(Debug, serde::Deserialize)]
struct FormState {
    paying: bool,
    error: bool,
    invalid: Option<String>,
}

/// What came of a click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Press {
    /// A new page is on its way.
    Navigated,
    /// The page visibly changed.
    Changed,
    /// Nothing happened, however often it was clicked.
    Dead { clicks: u32 },
    /// There was nothing usable to click.
    Missing,
}

/// How a visit ended.
enum Exit {
    Converted,
    Left(&'static str),
    GaveUp(GaveUp),
}

fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// One person walking through the shop in one tab.
struct Walk<'a> {
    tab: &'a Tab,
    base: &'a str,
    dice: Dice,
    persona: Persona,
    prof: &'static Profile,
    traits: Traits,
    scale: f64,
    trace: Vec<String>,
    trace_ms: Vec<u64>,
    started: Instant,
    actions: u32,
}

type Step<T> = Result<T, DriverError>;

impl Walk<'_> {
    fn note(&mut self, s: impl Into<String>) {
        self.trace.push(s.into());
        self.trace_ms
            .push(self.started.elapsed().as_millis() as u64);
    }

    /// Pauses for a scaled log-normal think time.
    async fn think(&self, purpose: &str, step: u64, median_ms: f64) {
        let mut r = self.dice.rng(purpose, step);
        let human = lognormal(&mut r, median_ms * self.traits.speed, self.prof.think_sigma)
            .min(median_ms * 8.0);
        let ms = human * self.scale;
        if ms >= 1.0 {
            tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
        }
    }

    /// What the page looks like; `None` while a page loads.
    async fn look(&self) -> Step<Option<String>> {
        Ok(self
            .tab
            .eval::<String>(&format!("({FP_FN})()"))
            .await?
            .filter(|s| !s.is_empty()))
    }

    /// The path of the loaded page; `None` while a page loads.
    async fn here(&self) -> Step<Option<String>> {
        Ok(self
            .tab
            .eval::<String>(HERE_JS)
            .await?
            .filter(|s| !s.is_empty()))
    }

    /// Waits in the page until the JS expression `cond` (which may call `fp()`, the
    /// [`FP_FN`] fingerprint) is truthy, for at most `limit`. One CDP call per
    /// [`WAIT_CHUNK`], however long the wait: polling from outside would cost a round trip
    /// every few milliseconds.
    async fn wait_for(&self, cond: &str, limit: Duration) -> Step<Waited> {
        self.wait_for_then(cond, limit, "").await
    }

    /// Like [`Walk::wait_for`], and if the wait runs out, runs `on_timeout` in the page in
    /// the same task that saw the condition fail, so nothing the page does can slip in
    /// between.
    async fn wait_for_then(&self, cond: &str, limit: Duration, on_timeout: &str) -> Step<Waited> {
        let start = Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            let chunk = left.min(WAIT_CHUNK);
            let last = if chunk == left { on_timeout } else { "" };
            let js = format!(
                "new Promise(function (res) {{ var fp = {FP_FN}; var t0 = Date.now();
                   (function poll() {{ var v = ''; try {{ v = ({cond}) || ''; }} catch (e) {{}}
                     if (v) return res(String(v));
                     if (Date.now() - t0 >= {ms}) {{ try {{ {last}; }} catch (e) {{}} return res(''); }}
                     setTimeout(poll, {POLL_MS}); }})(); }})",
                ms = chunk.as_millis()
            );
            match self.tab.eval::<String>(&js).await? {
                Some(v) if !v.is_empty() => return Ok(Waited::Met(v)),
                None => return Ok(Waited::Gone),
                Some(_) if start.elapsed() >= limit => return Ok(Waited::TimedOut),
                Some(_) => {}
            }
        }
    }

    /// Watches for up to `within` for the page to change from `before`.
    async fn watch(&self, before: &Option<String>, within: Duration) -> Step<Option<Press>> {
        let Some(before) = before else {
            // The page was still loading: any settled look is a change.
            return Ok(match self.wait_for("fp()", within).await? {
                Waited::Met(_) => Some(Press::Changed),
                Waited::Gone => Some(Press::Navigated),
                Waited::TimedOut => None,
            });
        };
        let b = serde_json::to_string(before).unwrap_or_default();
        let cond = format!(
            "(function () {{ var f = fp(), b = {b};
               if (!f || f.split('#')[0] !== b.split('#')[0]) return 'nav';
               return f !== b ? 'chg' : ''; }})()"
        );
        Ok(match self.wait_for(&cond, within).await? {
            Waited::Met(v) if v == "chg" => Some(Press::Changed),
            Waited::Met(_) | Waited::Gone => Some(Press::Navigated),
            Waited::TimedOut => None,
        })
    }

    /// Waits until the page at `path` has loaded, for at most `limit`.
    async fn arrive(&self, path: &str, limit: Duration) -> Step<bool> {
        let start = Instant::now();
        let p = serde_json::to_string(path).unwrap_or_default();
        let cond = format!(
            "document.readyState === 'complete' && location.pathname === {p} && !window.__demoLeaving"
        );
        loop {
            let left = limit.saturating_sub(start.elapsed());
            match self.wait_for(&cond, left).await? {
                Waited::Met(_) => return Ok(true),
                Waited::TimedOut => return Ok(false),
                // The old page went away under the wait; look again at the new one.
                Waited::Gone if start.elapsed() < limit => {
                    tokio::time::sleep(Duration::from_millis(POLL_MS)).await
                }
                Waited::Gone => return Ok(false),
            }
        }
    }

    /// Waits until the page is no longer the loaded page at `path` (a navigation away has
    /// started), for at most `limit`. If it has not by then, the person leaves, and the
    /// page is stopped in that same instant, so a late answer cannot still carry the
    /// closing tab on to the next page behind their back.
    async fn depart_or_stop(&self, path: &str, limit: Duration) -> Step<bool> {
        let p = serde_json::to_string(path).unwrap_or_default();
        let cond =
            format!("(function () {{ var f = fp(); return !f || f.split('#')[0] !== {p}; }})()");
        let waited = self.wait_for_then(&cond, limit, "window.stop()").await?;
        Ok(!matches!(waited, Waited::TimedOut))
    }

    fn nav_limit(&self) -> Duration {
        self.traits.patience + NAV_SLACK
    }

    /// Clicks a control that should do something; if it visibly does not, clicks again
    /// quickly (rage) as this person does.
    async fn press(&mut self, id: &str, step: u64) -> Step<Press> {
        let sel = testid(id);
        let before = self.look().await?;
        if !self.tab.click(&sel).await? {
            return Ok(Press::Missing);
        }
        self.actions += 1;
        if let Some(p) = self.watch(&before, REACTION_WINDOW).await? {
            return Ok(p);
        }
        let extra = self.traits.rage;
        let mut r = self.dice.rng(&format!("rage:{id}"), step);
        let mut clicks = 1;
        for _ in 0..extra {
            let gap = r.random_range(RAGE_GAP_MS.0..=RAGE_GAP_MS.1);
            tokio::time::sleep(Duration::from_millis(gap)).await;
            if !self.tab.click(&sel).await? {
                break;
            }
            clicks += 1;
            self.actions += 1;
        }
        self.note(format!("rage:{id}"));
        Ok(self
            .watch(&before, REACTION_WINDOW)
            .await?
            .unwrap_or(Press::Dead { clicks }))
    }

    /// Clicks a link and waits for the page at `path`. `None` when it got there.
    async fn follow(&mut self, id: &str, path: &str, step: u64) -> Step<Option<Exit>> {
        let started = Instant::now();
        match self.press(id, step).await? {
            Press::Navigated | Press::Changed => {}
            Press::Missing => {
                return Ok(Some(Exit::GaveUp(GaveUp::NotFound { target: id.into() })))
            }
            Press::Dead { clicks } => {
                return Ok(Some(Exit::GaveUp(GaveUp::NoReaction {
                    target: id.into(),
                    clicks,
                })))
            }
        }
        if self.arrive(path, self.nav_limit()).await? {
            Ok(None)
        } else {
            Ok(Some(Exit::GaveUp(GaveUp::TooSlow {
                target: id.into(),
                waited_ms: started.elapsed().as_millis() as u64,
            })))
        }
    }

    fn pick_product(&self, view: u64, seen: &[u32]) -> u32 {
        let mut r = self.dice.rng("pick", view);
        let open: Vec<(u32, f64)> = (1..=POPULARITY.len() as u32)
            .filter(|id| !seen.contains(id))
            .map(|id| (id, POPULARITY[id as usize - 1]))
            .collect();
        let total: f64 = open.iter().map(|(_, w)| w).sum();
        let mut u = r.random::<f64>() * total;
        for (id, w) in &open {
            if u < *w {
                return *id;
            }
            u -= w;
        }
        open.last().map(|(id, _)| *id).unwrap_or(1)
    }

    /// The whole visit, from landing on the catalog to leaving.
    async fn visit(&mut self) -> Step<Exit> {
        let home = format!("{}/", self.base);
        self.tab.goto(&home).await?;
        self.actions += 1;
        if !self.arrive("/", self.nav_limit()).await? {
            return Ok(Exit::GaveUp(GaveUp::TooSlow {
                target: "catalog".into(),
                waited_ms: self.nav_limit().as_millis() as u64,
            }));
        }
        self.note("land");
        let p = self.prof;
        self.think("think:land", 0, p.glance_ms).await;

        if self.dice.chance("scroll", 0, p.p_scroll) {
            let n = self.dice.range("scrolls", 0, (1, 3));
            self.note(format!("scroll:{n}"));
            for s in 0..n as u64 {
                let dy = 250.0 + 450.0 * self.dice.unit("scroll-by", s);
                self.tab.scroll_by(dy.round()).await?;
                self.actions += 1;
                self.think("think:scroll", s, p.glance_ms * 0.6).await;
            }
        }

        // Browse products.
        let views = self.dice.range("views", 0, p.views);
        let mut seen = Vec::new();
        let mut cart = BTreeSet::new();
        for v in 0..views as u64 {
            let pid = self.pick_product(v, &seen);
            seen.push(pid);
            if self.dice.chance("image-slip", v, p.p_image_slip) {
                // The picture looks clickable but is not a link: a moment's confusion,
                // then the title.
                let sel = testid(&format!("product-image-{pid}"));
                if self.tab.click(&sel).await? {
                    self.actions += 1;
                    self.note(format!("slip:image-{pid}"));
                    self.think("think:slip", v, p.glance_ms * 0.4).await;
                }
            }
            self.note(format!("view:{pid}"));
            if let Some(exit) = self
                .follow(&format!("product-{pid}"), &format!("/product/{pid}"), v)
                .await?
            {
                return Ok(exit);
            }
            self.think("think:read", v, p.read_ms).await;
            let last = v + 1 == views as u64;
            let wants = self.dice.chance("add", v, p.p_add)
                || (last
                    && cart.is_empty()
                    && self.persona == Persona::Comparer
                    && self.dice.chance("add-last", v, 0.6));
            if wants {
                self.note(format!("add:{pid}"));
                match self.press("add-to-cart", v).await? {
                    Press::Changed | Press::Navigated => {}
                    Press::Missing => {
                        return Ok(Exit::GaveUp(GaveUp::NotFound {
                            target: "add-to-cart".into(),
                        }))
                    }
                    Press::Dead { clicks } => {
                        return Ok(Exit::GaveUp(GaveUp::NoReaction {
                            target: "add-to-cart".into(),
                            clicks,
                        }))
                    }
                }
                if !self.wait_added().await? {
                    return Ok(Exit::GaveUp(GaveUp::TooSlow {
                        target: "add-to-cart".into(),
                        waited_ms: self.nav_limit().as_millis() as u64,
                    }));
                }
                cart.insert(pid);
                self.think("think:added", v, p.glance_ms).await;
            }
            if !last {
                if self.dice.chance("back-by-history", v, 0.5) {
                    self.note("back");
                    self.tab.eval::<bool>("(history.back(), true)").await?;
                    self.actions += 1;
                    if !self.arrive("/", self.nav_limit()).await? {
                        return Ok(Exit::GaveUp(GaveUp::TooSlow {
                            target: "back".into(),
                            waited_ms: self.nav_limit().as_millis() as u64,
                        }));
                    }
                } else {
                    self.note("home");
                    if let Some(exit) = self.follow("nav-home", "/", v).await? {
                        return Ok(exit);
                    }
                }
                self.think("think:catalog", v, p.glance_ms).await;
            }
        }
        if cart.is_empty() {
            self.note("leave:browsed");
            return Ok(Exit::Left("browsed"));
        }
        if !self.dice.chance("to-cart", 0, p.p_cart) {
            self.note("leave:cart_unvisited");
            return Ok(Exit::Left("cart_unvisited"));
        }

        // The cart.
        self.note("cart");
        if let Some(exit) = self.open_cart().await? {
            return Ok(exit);
        }
        self.think("think:cart", 0, p.glance_ms * 1.5).await;
        if cart.len() >= 2 && self.dice.chance("remove", 0, 0.4) {
            let nth = self
                .dice
                .range("remove-which", 0, (0, cart.len() as u32 - 1));
            let pid = *cart.iter().nth(nth as usize).unwrap_or(&0);
            self.note(format!("remove:{pid}"));
            if let Press::Dead { clicks } = self.press(&format!("remove-{pid}"), 0).await? {
                return Ok(Exit::GaveUp(GaveUp::NoReaction {
                    target: format!("remove-{pid}"),
                    clicks,
                }));
            }
            cart.remove(&pid);
            self.think("think:removed", 0, p.glance_ms).await;
        }
        if !self.dice.chance("checkout", 0, p.p_checkout) {
            self.note("leave:abandoned_cart");
            return Ok(Exit::Left("abandoned_cart"));
        }

        // Checkout.
        self.note("checkout");
        if let Some(exit) = self.follow("checkout", "/checkout", 0).await? {
            return Ok(exit);
        }
        self.think("think:checkout", 0, p.glance_ms).await;
        self.fill_form(0).await?;
        if !self.dice.chance("commit", 0, p.p_commit) {
            self.note("leave:abandoned_checkout");
            return Ok(Exit::Left("abandoned_checkout"));
        }
        self.pay().await
    }

    /// Waits for the "added" note after Add to cart.
    async fn wait_added(&self) -> Step<bool> {
        let cond = r#"(function () { var e = document.querySelector('[data-testid="added"]');
            return !!e && !e.hidden; })()"#;
        Ok(matches!(
            self.wait_for(cond, self.nav_limit()).await?,
            Waited::Met(_)
        ))
    }

    /// Opens the cart from the header; looks in a menu if the link is not visible.
    async fn open_cart(&mut self) -> Step<Option<Exit>> {
        let started = Instant::now();
        match self.press("cart-link", 0).await? {
            Press::Navigated | Press::Changed => {}
            Press::Dead { clicks } => {
                return Ok(Some(Exit::GaveUp(GaveUp::NoReaction {
                    target: "cart-link".into(),
                    clicks,
                })))
            }
            Press::Missing => {
                self.note("missing:cart-link");
                let not_found = Some(Exit::GaveUp(GaveUp::NotFound {
                    target: "cart-link".into(),
                }));
                // Search the page for a while, then either try a menu or give up.
                self.think("think:search", 0, self.prof.glance_ms * 2.0)
                    .await;
                if !self.traits.explores {
                    return Ok(not_found);
                }
                self.note("menu");
                match self.press("menu-toggle", 0).await? {
                    Press::Changed | Press::Navigated => {}
                    _ => return Ok(not_found),
                }
                self.think("think:menu", 0, self.prof.glance_ms * 0.5).await;
                match self.press("cart-link", 1).await? {
                    Press::Navigated | Press::Changed => {}
                    _ => return Ok(not_found),
                }
            }
        }
        if self.arrive("/cart", self.nav_limit()).await? {
            Ok(None)
        } else {
            Ok(Some(Exit::GaveUp(GaveUp::TooSlow {
                target: "cart-link".into(),
                waited_ms: started.elapsed().as_millis() as u64,
            })))
        }
    }

    fn email(&self) -> String {
        let (first, last) = self.traits.name;
        format!(
            "{}.{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            self.traits.domain
        )
    }

    fn card(&self) -> String {
        let digits = "4242424242424242";
        if self.traits.card_spaces {
            digits
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            digits.to_string()
        }
    }

    /// Fills the checkout form; `attempt` keys the draws so a refill after a reload is a
    /// fresh (but reproducible) performance.
    async fn fill_form(&mut self, attempt: u64) -> Step<()> {
        let (first, last) = self.traits.name;
        let name = format!("{first} {last}");
        let email = self.email();
        let slip = self
            .dice
            .chance("email-slip", attempt, self.prof.p_email_slip);
        let typed_email = if slip {
            self.note("slip:email");
            // Either the @ or the dot of the domain goes missing.
            if self.dice.chance("email-slip-kind", attempt, 0.5) {
                email.replacen('@', ".", 1)
            } else {
                let at = email.find('@').unwrap_or(0);
                let (user, dom) = email.split_at(at);
                format!("{user}{}", dom.replacen('.', "", 1))
            }
        } else {
            email
        };
        let card = self.card();
        for (i, (field, value)) in [("name", name), ("email", typed_email), ("card", card)]
            .into_iter()
            .enumerate()
        {
            let step = attempt * 10 + i as u64;
            self.think("think:field", step, FIELD_MS).await;
            if !self.tab.click(&testid(&format!("field-{field}"))).await? {
                continue;
            }
            self.actions += 1;
            self.note(format!("type:{field}"));
            self.type_like_a_person(&value, field, step).await?;
        }
        Ok(())
    }

    /// Types `text` into the focused field with human gaps and the odd typo, fixed with
    /// Backspace.
    async fn type_like_a_person(&mut self, text: &str, field: &str, step: u64) -> Step<()> {
        let mut r = self.dice.rng(&format!("typing:{field}"), step);
        let key_ms = self.prof.key_ms * self.traits.speed;
        let scale = self.scale;
        let gap = |r: &mut ChaCha8Rng| {
            Duration::from_secs_f64(lognormal(r, key_ms, 0.35).min(key_ms * 6.0) * scale / 1000.0)
        };
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            // Type up to the next typo in one go.
            let mut j = i;
            while j < chars.len() && !r.random_bool(self.prof.typo_per_char) {
                j += 1;
            }
            let run: String = chars[i..j].iter().collect();
            let gaps: Vec<Duration> = (0..run.chars().count()).map(|_| gap(&mut r)).collect();
            self.tab.type_text(&run, |k| gaps[k]).await?;
            if j < chars.len() {
                // A neighbouring key, noticed, erased.
                let wrong = if chars[j].is_ascii_digit() { '5' } else { 'x' };
                let pause = gap(&mut r);
                self.tab
                    .type_text(&wrong.to_string(), |_| pause * 3)
                    .await?;
                self.tab.press("Backspace").await?;
                self.note(format!("typo:{field}"));
                let ch: String = chars[j].to_string();
                let g = gap(&mut r);
                self.tab.type_text(&ch, |_| g).await?;
                j += 1;
            }
            i = j;
        }
        Ok(())
    }

    /// Clears and retypes a field the form rejected.
    async fn fix_field(&mut self, field_testid: &str, fix: u64) -> Step<()> {
        let field = field_testid.trim_start_matches("field-").to_string();
        self.think("think:fix", fix, self.prof.glance_ms).await;
        if !self.tab.click(&testid(field_testid)).await? {
            return Ok(());
        }
        self.actions += 1;
        self.note(format!("fix:{field}"));
        let len: usize = self
            .tab
            .eval::<usize>(&format!(
                "(document.querySelector({}) || {{value: ''}}).value.length",
                serde_json::to_string(&testid(field_testid)).unwrap_or_default()
            ))
            .await?
            .unwrap_or(0);
        for _ in 0..len {
            self.tab.press("Backspace").await?;
        }
        let value = match field.as_str() {
            "email" => self.email(),
            "card" => self.card(),
            _ => format!("{} {}", self.traits.name.0, self.traits.name.1),
        };
        self.type_like_a_person(&value, &field, 100 + fix).await
    }

    /// Presses Pay until the order is confirmed, the person's patience runs out, or they
    /// give up on a button that does nothing.
    async fn pay(&mut self) -> Step<Exit> {
        let mut reloads = self.traits.reloads;
        let mut fixes = 0u64;
        let mut attempt = 0u64;
        loop {
            self.think("think:pay", attempt, self.prof.glance_ms * 0.7)
                .await;
            self.note("pay");
            let clicked = Instant::now();
            match self.press("pay", attempt).await? {
                Press::Missing => {
                    return Ok(Exit::GaveUp(GaveUp::NotFound {
                        target: "pay".into(),
                    }))
                }
                Press::Dead { clicks } => {
                    if reloads == 0 {
                        self.note("leave:dead_pay");
                        return Ok(Exit::GaveUp(GaveUp::NoReaction {
                            target: "pay".into(),
                            clicks,
                        }));
                    }
                    reloads -= 1;
                    attempt += 1;
                    self.note("reload");
                    self.think("think:reload", attempt, self.prof.glance_ms)
                        .await;
                    let url = format!("{}/checkout", self.base);
                    self.tab.goto(&url).await?;
                    self.actions += 1;
                    if !self.arrive("/checkout", self.nav_limit()).await? {
                        return Ok(Exit::GaveUp(GaveUp::TooSlow {
                            target: "checkout".into(),
                            waited_ms: self.nav_limit().as_millis() as u64,
                        }));
                    }
                    self.fill_form(attempt).await?;
                    continue;
                }
                Press::Navigated | Press::Changed => {}
            }
            // Something happened: a spinner, an error, or the confirmation already.
            let form = if self.here().await?.as_deref() == Some("/checkout") {
                self.tab.eval::<FormState>(FORM_JS).await?
            } else {
                None
            };
            if let Some(FormState {
                paying: false,
                error: true,
                invalid,
            }) = &form
            {
                let Some(field) = invalid.clone() else {
                    self.note("leave:payment_failed");
                    return Ok(Exit::GaveUp(GaveUp::PaymentFailed));
                };
                fixes += 1;
                if fixes > 2 {
                    self.note("leave:form_rejected");
                    return Ok(Exit::GaveUp(GaveUp::FormRejected));
                }
                self.fix_field(&field, fixes).await?;
                attempt += 1;
                continue;
            }
            // Paying: wait, as long as patience lasts, for the payment to go through (the
            // page moves on); then for the confirmation page to load.
            let left = self.traits.patience.saturating_sub(clicked.elapsed());
            if self.depart_or_stop("/checkout", left).await?
                && self.arrive("/confirm", self.nav_limit()).await?
            {
                self.note("confirm");
                self.think("think:confirm", 0, self.prof.glance_ms).await;
                return Ok(Exit::Converted);
            }
            self.note("leave:slow_payment");
            return Ok(Exit::GaveUp(GaveUp::TooSlow {
                target: "pay".into(),
                waited_ms: clicked.elapsed().as_millis() as u64,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_keyed_and_reproducible() {
        let a = Dice { seed: 7, user: 3 };
        let b = Dice { seed: 7, user: 3 };
        assert_eq!(a.unit("add", 2), b.unit("add", 2));
        assert_ne!(a.unit("add", 2), a.unit("add", 3));
        assert_ne!(a.unit("add", 2), a.unit("pick", 2));
        assert_ne!(a.unit("add", 2), Dice { seed: 7, user: 4 }.unit("add", 2));
        assert_ne!(a.unit("add", 2), Dice { seed: 8, user: 3 }.unit("add", 2));
    }

    #[test]
    fn persona_mix_follows_the_weights() {
        let n = 4000;
        let mut counts = std::collections::HashMap::new();
        for u in 0..n {
            *counts
                .entry(Dice { seed: 1, user: u }.persona())
                .or_insert(0) += 1;
        }
        for p in Persona::ALL {
            let share = counts[&p] as f64 / n as f64;
            assert!((share - p.weight()).abs() < 0.03, "{p:?}: {share}");
        }
    }

    #[test]
    fn lognormal_median_is_the_median() {
        let mut below = 0;
        for s in 0..2000 {
            let mut r = Dice { seed: 1, user: s }.rng("t", 0);
            if lognormal(&mut r, 100.0, 0.5) < 100.0 {
                below += 1;
            }
        }
        assert!((900..1100).contains(&below), "{below}");
    }

    #[test]
    fn traits_stay_in_their_persona_ranges() {
        for u in 0..500 {
            let d = Dice { seed: 9, user: u };
            let p = d.persona().profile();
            let t = Traits::draw(&d, p);
            let s = t.patience.as_secs_f64();
            assert!(s >= p.patience_s.0 && s <= p.patience_s.1);
            assert!(t.rage >= p.rage.0 && t.rage <= p.rage.1);
        }
    }
}
