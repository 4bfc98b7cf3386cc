//! Cook: one session's raw capture events → what the user did ([`Action`]s), what went wrong
//! ([`Signal`]s) and what they achieved ([`Outcome`]s).
//!
//! In: the [`Batch`]es of one session (any order; they are sorted by `seq`) and the scenario's
//! [`Goal`]s. Out: a [`CookedSession`], which `model` fits on and `compare` counts. Cook is pure:
//! no I/O, no clock, no randomness, and it never panics on well-typed input, however odd.
//! Real and simulated sessions go through this same code.
//!
//! * [`route`] turns URLs into route templates (`/product/42` → `/product/:id`).
//! * [`target`] names the element an action was on, in a way that survives a redeploy.
//! * [`signals`] holds the frustration detectors and their thresholds.
//! * [`goals`] parses goal specs and decides when a session reached them.
//!
//! Actions, in time order (ties keep event order):
//!
//! | kind | from |
//! |---|---|
//! | `navigate` | a page view (`meta` with load `navigate`, `reload` or `prerender`), including the session's first, so the chain knows where users enter; a `push` or `hash` navigation; a `replace` that changes the URL |
//! | `back` | a page view with load `back_forward`, or a `pop` navigation |
//! | `click`, `input`, `submit` | the event of that name; inputs carry the value class and typing summary, never the value |
//! | `scroll` | a burst of scroll events, each ≤ [`SCROLL_BURST_GAP_MS`] after the previous, in one page view, kept when some scroller moved ≥ [`SCROLL_MIN_PX`] (Euclidean) from where it was before the burst; at the burst's first event |
//!
//! `think_ms` is the time since the previous action minus the time the tab was hidden in
//! between (from `vis` events; a new page view ends a hidden spell), and for inputs minus the
//! typing time (an input is logged when the edit settles). The first action's is 0.

pub mod goals;
pub mod route;
pub mod signals;
pub mod target;

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use goals::{parse_goal, Goal, GoalError, GoalKind};
pub use signals::{Signal, SignalKind};

use crate::event::{Batch, Event, LoadKind, NavKind, ValueClass};

/// Scroll events further apart than this start a new burst.
pub const SCROLL_BURST_GAP_MS: i64 = 1000;
/// A scroll burst is an action only if it moved at least this far.
pub const SCROLL_MIN_PX: f64 = 100.0;
/// Route used for events seen before any page URL is known (a lost first batch).
pub const UNKNOWN_ROUTE: &str = "?";

/// What one session amounts to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CookedSession {
    pub sid: String,
    /// Epoch ms of the session's earliest event.
    pub started_at: i64,
    /// Milliseconds from the earliest to the latest event.
    pub duration_ms: i64,
    /// Raw events read.
    pub events: u64,
    /// Page views (documents).
    pub pages: u32,
    /// From the first page view's `meta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// From `understudy('identify', …)`, when the page called it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub actions: Vec<Action>,
    pub signals: Vec<Signal>,
    /// Goals reached, first time each, in time order.
    pub outcomes: Vec<Outcome>,
    /// Whether any goal was reached.
    pub converted: bool,
    /// Index of the action during which the first goal was reached (the last action at or
    /// before that moment). `model` puts its CONVERTED marker right after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_after: Option<usize>,
}

/// Viewport and pointer of the first page view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub w: u32,
    pub h: u32,
    pub touch: bool,
    pub dpr: f64,
}

/// What the user did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Click,
    Input,
    Submit,
    Navigate,
    Back,
    Scroll,
}

impl ActionKind {
    /// The snake_case name used in JSON, text output and model tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Click => "click",
            ActionKind::Input => "input",
            ActionKind::Submit => "submit",
            ActionKind::Navigate => "navigate",
            ActionKind::Back => "back",
            ActionKind::Scroll => "scroll",
        }
    }
}

/// One user action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Milliseconds since the session started.
    pub t: i64,
    pub kind: ActionKind,
    /// Route template of the page it happened on (for navigations: the page arrived at).
    pub route: String,
    /// Target descriptor ([`target::descriptor`]) for clicks, inputs and submits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// For inputs: the class of the value entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_class: Option<ValueClass>,
    /// For inputs: how it was typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing: Option<Typing>,
    /// Milliseconds since the previous action, excluding time the tab was hidden and, for
    /// inputs, the typing itself.
    pub think_ms: i64,
    /// Index of the page view (from 0) it happened in.
    pub page: u32,
}

/// How an input was typed (never what).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// `input` events (≈ keystrokes).
    pub keys: u32,
    /// From the first to the last keystroke, ms.
    pub dur_ms: u32,
    /// Deletions.
    pub dels: u32,
    /// Text arrived by paste or drop.
    pub paste: bool,
}

/// A goal reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub goal: String,
    /// Milliseconds since the session started.
    pub t: i64,
}

/// One event in session order, with the page view and route it belongs to.
pub(crate) struct Flat<'a> {
    pub ev: &'a Event,
    pub page: u32,
    /// Index into the route table; for `meta` and navigations, the route arrived at.
    pub route: u32,
}

/// Cooks one session. `batches` may come in any order; they are sorted by `seq`.
pub fn cook_session(sid: &str, batches: &[Batch], goals: &[Goal]) -> CookedSession {
    let mut ordered: Vec<&Batch> = batches.iter().collect();
    ordered.sort_by_key(|b| b.seq);

    // Flatten, assigning page views and routes.
    let mut routes: Vec<String> = Vec::new();
    let mut route_ids: HashMap<String, u32> = HashMap::new();
    let mut intern = |r: String| -> u32 {
        if let Some(&i) = route_ids.get(&r) {
            return i;
        }
        let i = routes.len() as u32;
        routes.push(r.clone());
        route_ids.insert(r, i);
        i
    };
    let unknown = intern(UNKNOWN_ROUTE.to_string());
    let mut pages: HashMap<&str, u32> = HashMap::new();
    let mut page_url: Vec<Option<String>> = Vec::new();
    let mut page_route: Vec<u32> = Vec::new();
    let mut flat = Vec::new();
    for b in &ordered {
        let n_pages = pages.len() as u32;
        let page = *pages.entry(b.pvid.as_str()).or_insert(n_pages);
        if page as usize == page_url.len() {
            page_url.push(None);
            page_route.push(page_route.last().copied().unwrap_or(unknown));
        }
        for ev in &b.events {
            let p = page as usize;
            let new_url = match ev {
                Event::Meta(m) => Some(&m.url),
                Event::Nav(n) if n.nav != NavKind::Leave => Some(&n.url),
                _ => None,
            };
            if let Some(url) = new_url {
                page_route[p] = intern(route::route_template(url));
            }
            flat.push(Flat {
                ev,
                page,
                route: page_route[p],
            });
        }
    }

    let start = flat.iter().map(|f| f.ev.t()).min().unwrap_or(0);
    let end = flat.iter().map(|f| f.ev.t()).max().unwrap_or(0);
    let rel = |t: i64| t.saturating_sub(start).max(0);

    let mut actions: Vec<(i64, Action)> = Vec::new();
    let mut hidden: Vec<(i64, i64)> = Vec::new();
    let mut hidden_since: Option<i64> = None;
    let mut device = None;
    let mut user = None;
    let mut scroll_pos: HashMap<(u32, u64), (f64, f64)> = HashMap::new();
    let mut burst: Option<ScrollBurst> = None;
    let mut tracker = goals::GoalTracker::new(goals);

    let act = |actions: &mut Vec<(i64, Action)>, f: &Flat, t: i64, kind, target, vc, ty| {
        actions.push((
            t,
            Action {
                t: rel(t),
                kind,
                route: routes[f.route as usize].clone(),
                target,
                value_class: vc,
                typing: ty,
                think_ms: 0,
                page: f.page,
            },
        ));
    };

    for f in &flat {
        tracker.on_event(f.ev);
        match f.ev {
            Event::Meta(m) => {
                page_url[f.page as usize] = Some(m.url.clone());
                // A new document starts at the top until its snapshot says otherwise.
                scroll_pos.insert((f.page, 0), (0.0, 0.0));
                if let Some(h0) = hidden_since.take() {
                    hidden.push((h0, m.t));
                }
                if device.is_none() {
                    device = Some(Device {
                        w: m.w,
                        h: m.h,
                        touch: m.touch,
                        dpr: m.dpr,
                    });
                }
                let kind = match m.load {
                    LoadKind::BackForward => ActionKind::Back,
                    _ => ActionKind::Navigate,
                };
                act(&mut actions, f, m.t, kind, None, None, None);
            }
            Event::Nav(n) => {
                let p = f.page as usize;
                let kind = match n.nav {
                    NavKind::Push | NavKind::Hash => Some(ActionKind::Navigate),
                    NavKind::Replace if page_url[p].as_deref() != Some(n.url.as_str()) => {
                        Some(ActionKind::Navigate)
                    }
                    NavKind::Pop => Some(ActionKind::Back),
                    NavKind::Replace | NavKind::Leave => None,
                };
                if n.nav != NavKind::Leave {
                    page_url[p] = Some(n.url.clone());
                }
                if let Some(kind) = kind {
                    act(&mut actions, f, n.t, kind, None, None, None);
                }
            }
            Event::Click(c) => {
                let d = target::descriptor(&c.tgt);
                act(&mut actions, f, c.t, ActionKind::Click, Some(d), None, None);
            }
            Event::Input(i) => {
                let typing = Typing {
                    keys: i.keys,
                    dur_ms: i.dur,
                    dels: i.dels,
                    paste: i.paste,
                };
                let d = target::descriptor(&i.tgt);
                let (vc, ty) = (Some(i.cls), Some(typing));
                act(&mut actions, f, i.t, ActionKind::Input, Some(d), vc, ty);
            }
            Event::Submit(s) => {
                let d = target::descriptor(&s.tgt);
                act(
                    &mut actions,
                    f,
                    s.t,
                    ActionKind::Submit,
                    Some(d),
                    None,
                    None,
                );
            }
            Event::Snap(s) => {
                scroll_pos.insert((f.page, 0), (s.sx, s.sy));
            }
            Event::Scroll(s) => {
                let continues = burst.as_ref().is_some_and(|b| {
                    b.page == f.page
                        && (0..=SCROLL_BURST_GAP_MS).contains(&s.t.saturating_sub(b.last_t))
                });
                if !continues {
                    if let Some(b) = burst.take() {
                        b.finish(&mut actions, &routes, rel);
                    }
                    burst = Some(ScrollBurst {
                        page: f.page,
                        route: f.route,
                        start_t: s.t,
                        last_t: s.t,
                        origin: HashMap::new(),
                        moved: 0.0,
                    });
                }
                if let Some(b) = burst.as_mut() {
                    let here = (s.x, s.y);
                    let before = scroll_pos.get(&(f.page, s.id)).copied().unwrap_or(here);
                    let origin = *b.origin.entry(s.id).or_insert(before);
                    let d = ((here.0 - origin.0).powi(2) + (here.1 - origin.1).powi(2)).sqrt();
                    if d.is_finite() && d > b.moved {
                        b.moved = d;
                    }
                    b.last_t = s.t;
                    scroll_pos.insert((f.page, s.id), here);
                }
            }
            Event::Vis(v) => {
                if v.hidden {
                    hidden_since.get_or_insert(v.t);
                } else if let Some(h0) = hidden_since.take() {
                    hidden.push((h0, v.t));
                }
            }
            Event::Custom(c) if c.name == "identify" => {
                if let Some(u) = identify_user(&c.data) {
                    user = Some(u);
                }
            }
            _ => {}
        }
    }
    if let Some(b) = burst.take() {
        b.finish(&mut actions, &routes, rel);
    }
    if let Some(h0) = hidden_since.take() {
        hidden.push((h0, end));
    }

    // Time order; the sort is stable, so ties keep event order.
    actions.sort_by_key(|(t, _)| *t);
    let mut prev: Option<i64> = None;
    for (t, a) in actions.iter_mut() {
        if let Some(p) = prev {
            let gap = t.saturating_sub(p);
            // An input is logged when the edit settles; its think time ends when typing began.
            let typing = a.typing.map_or(0, |ty| i64::from(ty.dur_ms));
            a.think_ms = gap
                .saturating_sub(hidden_overlap(&hidden, p, *t))
                .saturating_sub(typing)
                .max(0);
        }
        prev = Some(*t);
    }

    let signals = signals::detect(&flat, &routes, start, end);

    let mut outcomes: Vec<Outcome> = tracker
        .reached()
        .map(|(i, t)| Outcome {
            goal: goals[i].name.clone(),
            t: rel(t),
        })
        .collect();
    outcomes.sort_by(|a, b| (a.t, &a.goal).cmp(&(b.t, &b.goal)));
    let converted = !outcomes.is_empty();
    let converted_after = outcomes.first().and_then(|o| {
        if actions.is_empty() {
            return None;
        }
        let after = actions.partition_point(|(_, a)| a.t <= o.t);
        Some(after.saturating_sub(1))
    });

    CookedSession {
        sid: sid.to_string(),
        started_at: start,
        duration_ms: end.saturating_sub(start).max(0),
        events: flat.len() as u64,
        pages: pages.len() as u32,
        device,
        user,
        actions: actions.into_iter().map(|(_, a)| a).collect(),
        signals,
        outcomes,
        converted,
        converted_after,
    }
}

struct ScrollBurst {
    page: u32,
    route: u32,
    start_t: i64,
    last_t: i64,
    /// Where each scroller was just before the burst.
    origin: HashMap<u64, (f64, f64)>,
    /// Greatest distance any scroller got from its origin.
    moved: f64,
}

impl ScrollBurst {
    fn finish(self, actions: &mut Vec<(i64, Action)>, routes: &[String], rel: impl Fn(i64) -> i64) {
        if self.moved >= SCROLL_MIN_PX {
            actions.push((
                self.start_t,
                Action {
                    t: rel(self.start_t),
                    kind: ActionKind::Scroll,
                    route: routes[self.route as usize].clone(),
                    target: None,
                    value_class: None,
                    typing: None,
                    think_ms: 0,
                    page: self.page,
                },
            ));
        }
    }
}

/// Milliseconds of `[a, b]` covered by hidden spells.
fn hidden_overlap(hidden: &[(i64, i64)], a: i64, b: i64) -> i64 {
    hidden
        .iter()
        .map(|&(h0, h1)| (h1.min(b).saturating_sub(h0.max(a))).max(0))
        .fold(0i64, |acc, x| acc.saturating_add(x))
}

/// The user id of an `identify` call: a string, or the `id`/`user`/`userId` field of an object.
fn identify_user(data: &serde_json::Value) -> Option<String> {
    let v = match data {
        serde_json::Value::Object(o) => ["id", "user", "userId"].iter().find_map(|k| o.get(*k))?,
        other => other,
    };
    match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => {
            Some(s.trim().chars().take(128).collect())
        }
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl CookedSession {
    /// Human-readable form: a header line, then one line per action, signal and outcome.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let device = match &self.device {
            Some(d) => format!(
                "{}x{} dpr {} {}",
                d.w,
                d.h,
                d.dpr,
                if d.touch { "touch" } else { "mouse" }
            ),
            None => "device ?".into(),
        };
        let _ = writeln!(
            out,
            "session {} · {} · {} · {} events · {} page{} · {} · user {} · {}",
            self.sid,
            format_epoch_ms(self.started_at),
            secs(self.duration_ms),
            self.events,
            self.pages,
            if self.pages == 1 { "" } else { "s" },
            device,
            self.user.as_deref().unwrap_or("-"),
            if self.converted {
                "converted"
            } else {
                "not converted"
            },
        );
        for a in &self.actions {
            let _ = write!(out, "  +{} {} {}", secs(a.t), a.kind.as_str(), a.route);
            if let Some(t) = &a.target {
                let _ = write!(out, " {t}");
            }
            if let Some(vc) = a.value_class {
                let _ = write!(out, " = {}", value_class_name(vc));
            }
            if let Some(ty) = a.typing.filter(|t| t.keys > 1 || t.paste || t.dels > 0) {
                let _ = write!(
                    out,
                    " ({} keys in {}, {} del{})",
                    ty.keys,
                    secs(i64::from(ty.dur_ms)),
                    ty.dels,
                    if ty.paste { ", pasted" } else { "" }
                );
            }
            out.push('\n');
        }
        for s in &self.signals {
            let _ = write!(out, "  ! +{} {} {}", secs(s.t), s.kind.as_str(), s.route);
            if let Some(t) = &s.target {
                let _ = write!(out, " {t}");
            }
            if s.count > 1 {
                let _ = write!(out, " ×{}", s.count);
            }
            if let Some(d) = &s.detail {
                let _ = write!(out, " — {d}");
            }
            out.push('\n');
        }
        for o in &self.outcomes {
            let _ = writeln!(out, "  ✓ +{} goal {}", secs(o.t), o.goal);
        }
        out
    }
}

/// The serde name of a value class (`short_text`, `email`, …).
pub fn value_class_name(vc: ValueClass) -> String {
    serde_json::to_value(vc)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{vc:?}"))
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}s", ms / 1000, (ms % 1000).abs())
}

/// Formats epoch milliseconds as an ISO-8601 UTC timestamp (`2024-12-04T17:10:00Z`).
pub fn format_epoch_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event;
    use std::collections::BTreeMap;

    pub(crate) fn meta(t: i64, url: &str) -> Event {
        meta_load(t, url, LoadKind::Navigate)
    }

    pub(crate) fn meta_load(t: i64, url: &str, load: LoadKind) -> Event {
        Event::Meta(event::Meta {
            t,
            url: url.into(),
            referrer: None,
            load,
            w: 1280,
            h: 720,
            dpr: 1.0,
            touch: false,
            script: "test".into(),
        })
    }

    pub(crate) fn click(t: i64, testid: &str, x: f64, y: f64, ia: bool) -> Event {
        Event::Click(event::Click {
            t,
            id: 7,
            x,
            y,
            tgt: event::Target {
                tag: "button".into(),
                testid: Some(testid.into()),
                path: "main>button".into(),
                ia,
                ..Default::default()
            },
            btn: 0,
            trusted: true,
        })
    }

    pub(crate) fn mutation(t: i64) -> Event {
        Event::Mut(event::Mutation {
            t,
            adds: vec![],
            rems: vec![],
            attrs: vec![],
            roots: vec![],
            texts: vec![event::TextChange {
                id: 3,
                x: "**".into(),
            }],
        })
    }

    pub(crate) fn err(t: i64, msg: &str) -> Event {
        Event::Err(event::JsError {
            t,
            ek: event::ErrorKind::Uncaught,
            msg: msg.into(),
            src: None,
            line: 0,
            col: 0,
        })
    }

    pub(crate) fn net(t: i64, method: &str, path: &str, status: u16, dur: u32) -> Event {
        Event::Net(event::Net {
            t,
            via: "fetch".into(),
            method: method.into(),
            url: format!("https://s.example{path}"),
            status,
            dur,
            hdr: BTreeMap::new(),
        })
    }

    pub(crate) fn one_batch(events: Vec<Event>) -> Vec<Batch> {
        vec![Batch {
            v: 1,
            sid: "s1".into(),
            pvid: "p1".into(),
            seq: 0,
            sent: None,
            events,
        }]
    }

    pub(crate) fn run_signals(events: Vec<Event>) -> Vec<Signal> {
        cook_session("s1", &one_batch(events), &[]).signals
    }

    fn scroll(t: i64, y: f64) -> Event {
        Event::Scroll(event::Scroll {
            t,
            id: 0,
            x: 0.0,
            y,
        })
    }

    #[test]
    fn entry_page_is_an_action_and_navs_map_to_kinds() {
        let c = cook_session(
            "s1",
            &one_batch(vec![
                meta(1000, "https://s.example/catalog"),
                Event::Nav(event::Nav {
                    t: 2000,
                    nav: NavKind::Push,
                    url: "https://s.example/product/7".into(),
                }),
                Event::Nav(event::Nav {
                    t: 2500,
                    nav: NavKind::Replace,
                    url: "https://s.example/product/7".into(),
                }),
                Event::Nav(event::Nav {
                    t: 3000,
                    nav: NavKind::Pop,
                    url: "https://s.example/catalog".into(),
                }),
                Event::Nav(event::Nav {
                    t: 4000,
                    nav: NavKind::Leave,
                    url: "https://s.example/catalog".into(),
                }),
            ]),
            &[],
        );
        let got: Vec<_> = c
            .actions
            .iter()
            .map(|a| (a.t, a.kind, a.route.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, ActionKind::Navigate, "/catalog"),
                (1000, ActionKind::Navigate, "/product/:id"),
                (2000, ActionKind::Back, "/catalog"),
            ]
        );
        assert_eq!(c.started_at, 1000);
        assert_eq!(c.duration_ms, 3000);
    }

    #[test]
    fn back_forward_page_view_is_back() {
        let c = cook_session(
            "s1",
            &one_batch(vec![meta_load(5, "/cart", LoadKind::BackForward)]),
            &[],
        );
        assert_eq!(c.actions[0].kind, ActionKind::Back);
    }

    #[test]
    fn scroll_bursts_collapse_and_need_100_px() {
        let c = cook_session(
            "s1",
            &one_batch(vec![
                meta(0, "/catalog"),
                scroll(1000, 40.0),
                scroll(1500, 80.0),
                scroll(2500, 100.0), // 1000 ms gap: same burst; 100 px from 0
                scroll(4000, 150.0), // new burst: only 50 px
                scroll(9000, 120.0), // new burst: 30 px
            ]),
            &[],
        );
        let scrolls: Vec<_> = c
            .actions
            .iter()
            .filter(|a| a.kind == ActionKind::Scroll)
            .map(|a| a.t)
            .collect();
        assert_eq!(scrolls, vec![1000]);
    }

    #[test]
    fn think_time_excludes_hidden_time() {
        let c = cook_session(
            "s1",
            &one_batch(vec![
                meta(0, "/a"),
                Event::Vis(event::Vis {
                    t: 1000,
                    hidden: true,
                }),
                Event::Vis(event::Vis {
                    t: 61_000,
                    hidden: false,
                }),
                click(62_000, "x", 0.0, 0.0, true),
            ]),
            &[],
        );
        assert_eq!(c.actions[1].think_ms, 2000);
    }

    #[test]
    fn identify_and_device() {
        let c = cook_session(
            "s1",
            &one_batch(vec![
                meta(0, "/a"),
                Event::Custom(event::Custom {
                    t: 1,
                    name: "identify".into(),
                    data: serde_json::json!({"id": "u-42"}),
                }),
            ]),
            &[],
        );
        assert_eq!(c.user.as_deref(), Some("u-42"));
        assert_eq!(c.device.unwrap().w, 1280);
    }

    #[test]
    fn conversion_marks_the_action_in_progress() {
        let goals = vec![parse_goal("paid=request:POST /api/pay").unwrap()];
        let c = cook_session(
            "s1",
            &one_batch(vec![
                meta(0, "/checkout"),
                click(1000, "pay", 0.0, 0.0, true),
                net(1300, "POST", "/api/pay", 200, 250),
                click(5000, "home", 0.0, 0.0, true),
            ]),
            &goals,
        );
        assert!(c.converted);
        assert_eq!(c.outcomes[0].goal, "paid");
        assert_eq!(c.outcomes[0].t, 1300);
        assert_eq!(c.converted_after, Some(1));
    }

    #[test]
    fn empty_session_is_fine() {
        let c = cook_session("s1", &[], &[]);
        assert!(c.actions.is_empty());
        assert_eq!(c.pages, 0);
    }

    #[test]
    fn epoch_formatting() {
        assert_eq!(format_epoch_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_epoch_ms(1_733_332_200_000), "2024-12-04T17:10:00Z");
        assert_eq!(format_epoch_ms(-1000), "1969-12-31T23:59:59Z");
    }

    fn fixture() -> Vec<Batch> {
        include_str!("../../tests/fixtures/cook_small.ndjson")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("fixture line parses"))
            .collect()
    }

    fn fixture_goals() -> Vec<Goal> {
        [
            "purchase=element:[data-testid=order-confirmation]",
            "paid=request:POST /api/payment",
            "url:/order/*",
        ]
        .iter()
        .map(|s| parse_goal(s).unwrap())
        .collect()
    }

    #[test]
    fn fixture_session_cooks_to_snapshot() {
        let c = cook_session("s-fixture", &fixture(), &fixture_goals());
        insta::assert_json_snapshot!("cooked_fixture", c);
        insta::assert_snapshot!("cooked_fixture_text", c.render_text());
    }

    #[test]
    fn batch_order_does_not_matter() {
        let mut b = fixture();
        let a = cook_session("s", &b, &fixture_goals());
        b.reverse();
        assert_eq!(cook_session("s", &b, &fixture_goals()), a);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn arb_event() -> impl Strategy<Value = Event> {
            // Mostly plausible times, sometimes hostile extremes.
            let t = prop_oneof![
                20 => -5_000i64..200_000,
                1 => any::<i64>(),
            ];
            let url = prop_oneof![
                Just("https://s.example/".to_string()),
                Just("/product/42".to_string()),
                "[a-z/0-9]{0,12}".prop_map(|s| s),
            ];
            prop_oneof![
                (t.clone(), url.clone(), 0u8..4).prop_map(|(t, u, l)| {
                    let load = [
                        LoadKind::Navigate,
                        LoadKind::Reload,
                        LoadKind::BackForward,
                        LoadKind::Prerender,
                    ][l as usize];
                    meta_load(t, &u, load)
                }),
                (
                    t.clone(),
                    "[a-c]",
                    -50.0f64..50.0,
                    any::<bool>(),
                    any::<bool>()
                )
                    .prop_map(|(t, id, x, ia, quiet)| {
                        let mut c = click(t, &id, x, x, ia);
                        if let Event::Click(c) = &mut c {
                            c.tgt.quiet = quiet;
                        }
                        c
                    }),
                t.clone().prop_map(mutation),
                (t.clone(), "[a-z]{0,5}").prop_map(|(t, m)| err(t, &m)),
                (t.clone(), 0u16..600, 0u32..10_000)
                    .prop_map(|(t, s, d)| net(t, "GET", "/api/x", s, d)),
                (t.clone(), -1e6f64..1e6).prop_map(|(t, y)| scroll(t, y)),
                (t.clone(), any::<bool>())
                    .prop_map(|(t, hidden)| Event::Vis(event::Vis { t, hidden })),
                (t.clone(), url, 0u8..5).prop_map(|(t, url, k)| {
                    let nav = [
                        NavKind::Push,
                        NavKind::Replace,
                        NavKind::Pop,
                        NavKind::Hash,
                        NavKind::Leave,
                    ][k as usize];
                    Event::Nav(event::Nav { t, nav, url })
                }),
                (t, 0u32..50, 0u32..5000).prop_map(|(t, keys, dur)| Event::Input(event::Input {
                    t,
                    id: 1,
                    tgt: event::Target {
                        tag: "input".into(),
                        eid: Some("email".into()),
                        path: "form>input".into(),
                        ..Default::default()
                    },
                    cls: ValueClass::Email,
                    len: keys,
                    keys,
                    dur,
                    dels: 0,
                    paste: false,
                    idx: None,
                })),
            ]
        }

        proptest! {
            #[test]
            fn cook_never_panics_and_keeps_invariants(
                pages in proptest::collection::vec(proptest::collection::vec(arb_event(), 0..30), 1..4),
            ) {
                let batches: Vec<Batch> = pages
                    .into_iter()
                    .enumerate()
                    .map(|(i, events)| Batch {
                        v: 1,
                        sid: "s".into(),
                        pvid: format!("p{}", i % 2),
                        seq: i as u64,
                        sent: None,
                        events,
                    })
                    .collect();
                let goals = fixture_goals();
                let c = cook_session("s", &batches, &goals);
                prop_assert!(c.duration_ms >= 0);
                prop_assert!(c.actions.windows(2).all(|w| w[0].t <= w[1].t));
                prop_assert!(c.actions.iter().all(|a| a.think_ms >= 0 && a.t >= 0));
                if let Some(i) = c.converted_after {
                    prop_assert!(i < c.actions.len());
                }
                prop_assert_eq!(c.converted, !c.outcomes.is_empty());
            }
        }
    }
}
