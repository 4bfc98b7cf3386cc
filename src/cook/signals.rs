//! Frustration signals: rage, dead and error clicks, JS errors, failed and repeated requests.
//!
//! Every detector reads the same stream: one session's events in order, each with its page
//! view and route. Thresholds are the named constants below, taken from the defaults
//! synthesised in `reference/capture.md` §2.8 (PostHog, Datadog, Sentry, OpenReplay).
//! Real and simulated sessions go through this same code, so a signal means the same thing in
//! both.
//!
//! | signal | rule |
//! |---|---|
//! | `rage_click` | ≥ [`RAGE_MIN_CLICKS`] clicks, each ≤ [`RAGE_MAX_GAP_MS`] after the previous, on the same target descriptor or ≤ [`RAGE_MAX_DISTANCE_PX`] (Euclidean) from the previous click, in one page view. One signal per burst, at its first click, `count` = clicks. Clicks on `quiet` targets (text fields, selects…) neither start nor join a burst. |
//! | `dead_click` | a click on an interactive-looking (`ia`), non-`quiet` target with no reaction (DOM mutation, page view, SPA navigation, request start or end, scroll, visibility change) from the click until [`DEAD_WINDOW_MS`] after it. Clicks on the same target ≤ [`DEAD_MERGE_MS`] apart are merged (a rage burst gives one dead click, `count` = clicks) and the window runs from the first to [`DEAD_WINDOW_MS`] after the last. Not flagged when the recording ends before the window closes. |
//! | `error_click` | a JS error during a click's activity window. Activity is DOM mutations, page loads and requests in flight (from start to end) that begin at or after the click; the window runs from the click until activity has been quiet for [`ACTIVITY_QUIET_MS`] (each new activity must begin within that long of the previous activity's end), at least [`ERROR_WINDOW_MIN_MS`] and at most [`ERROR_WINDOW_MAX_MS`]. Each error goes to the latest click whose window holds it; one signal per click, `count` = errors. |
//! | `js_error` | every `err` event. |
//! | `failed_request` | every request with status ≥ 400, or 0 (network error, abort). |
//! | `repeated_request` | ≥ [`REPEAT_MIN_REQUESTS`] requests with identical method and URL, each starting ≤ [`REPEAT_MAX_GAP_MS`] after the previous one started. One signal per run, at its first request, `count` = requests. |
//!
//! Requests are logged when they finish: a `net` event's `t` is its end, and it started at
//! `t − dur`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Flat;
use crate::event::{self, Event};

/// Minimum clicks in a rage burst.
pub const RAGE_MIN_CLICKS: u32 = 3;
/// Longest gap between consecutive clicks of a rage burst.
pub const RAGE_MAX_GAP_MS: i64 = 1000;
/// Greatest Euclidean distance between consecutive clicks of a burst on different targets.
pub const RAGE_MAX_DISTANCE_PX: f64 = 100.0;
/// How long a click may wait for any reaction before it is dead.
pub const DEAD_WINDOW_MS: i64 = 2500;
/// Clicks on the same target this close together form one dead-click candidate.
pub const DEAD_MERGE_MS: i64 = 1000;
/// Page activity ends once nothing happened for this long (no mutation, no request in flight).
pub const ACTIVITY_QUIET_MS: i64 = 100;
/// A click's error window lasts at least this long.
pub const ERROR_WINDOW_MIN_MS: i64 = 1000;
/// A click's error window lasts at most this long.
pub const ERROR_WINDOW_MAX_MS: i64 = 10_000;
/// Minimum identical requests in a repeated-request run.
pub const REPEAT_MIN_REQUESTS: u32 = 3;
/// Longest gap between the starts of consecutive requests of a run.
pub const REPEAT_MAX_GAP_MS: i64 = 2000;

/// What kind of frustration a [`Signal`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    RageClick,
    DeadClick,
    ErrorClick,
    JsError,
    FailedRequest,
    RepeatedRequest,
}

impl SignalKind {
    /// The snake_case name used in JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::RageClick => "rage_click",
            SignalKind::DeadClick => "dead_click",
            SignalKind::ErrorClick => "error_click",
            SignalKind::JsError => "js_error",
            SignalKind::FailedRequest => "failed_request",
            SignalKind::RepeatedRequest => "repeated_request",
        }
    }
}

/// One detected signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Milliseconds since the session started.
    pub t: i64,
    pub kind: SignalKind,
    /// Route template of the page it happened on.
    pub route: String,
    /// Target descriptor, for click signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Clicks in the burst, errors in the window, or requests in the run; 1 otherwise.
    pub count: u32,
    /// A short human-readable detail: the error message, or `METHOD URL → status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

struct ClickRef<'a> {
    t: i64,
    page: u32,
    route: u32,
    click: &'a event::Click,
    desc: String,
}

/// Runs every detector. `start` is the session's epoch-ms origin, `end` the last event's time.
pub(crate) fn detect(flat: &[Flat<'_>], routes: &[String], start: i64, end: i64) -> Vec<Signal> {
    let clicks: Vec<ClickRef> = flat
        .iter()
        .filter_map(|f| match f.ev {
            Event::Click(c) => Some(ClickRef {
                t: c.t,
                page: f.page,
                route: f.route,
                click: c,
                desc: super::target::descriptor(&c.tgt),
            }),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    let rel = |t: i64| t.saturating_sub(start).max(0);
    let push = |out: &mut Vec<Signal>, t, kind, route: u32, target, count, detail| {
        out.push(Signal {
            t: rel(t),
            kind,
            route: routes[route as usize].clone(),
            target,
            count,
            detail,
        })
    };

    // Rage clicks.
    let mut burst: Vec<&ClickRef> = Vec::new();
    let flush_rage = |burst: &mut Vec<&ClickRef>, out: &mut Vec<Signal>| {
        if burst.len() as u32 >= RAGE_MIN_CLICKS {
            let first = burst[0];
            push(
                out,
                first.t,
                SignalKind::RageClick,
                first.route,
                Some(first.desc.clone()),
                burst.len() as u32,
                None,
            );
        }
        burst.clear();
    };
    for c in &clicks {
        if c.click.tgt.quiet {
            flush_rage(&mut burst, &mut out);
            continue;
        }
        let joins = burst.last().is_some_and(|p| {
            let dt = c.t.saturating_sub(p.t);
            let dist = ((c.click.x - p.click.x).powi(2) + (c.click.y - p.click.y).powi(2)).sqrt();
            p.page == c.page
                && (0..=RAGE_MAX_GAP_MS).contains(&dt)
                && (p.desc == c.desc || dist <= RAGE_MAX_DISTANCE_PX)
        });
        if !joins {
            flush_rage(&mut burst, &mut out);
        }
        burst.push(c);
    }
    flush_rage(&mut burst, &mut out);

    // Reactions (dead clicks) as sorted timestamps; activity (error clicks) as intervals
    // sorted by start.
    let mut reactions = Vec::new();
    let mut activity: Vec<(i64, i64)> = Vec::new();
    for f in flat {
        match f.ev {
            Event::Mut(m) => {
                reactions.push(m.t);
                activity.push((m.t, m.t));
            }
            Event::Meta(m) => {
                reactions.push(m.t);
                activity.push((m.t, m.t));
            }
            Event::Net(n) => {
                let s = n.t.saturating_sub(i64::from(n.dur));
                reactions.extend([s, n.t]);
                activity.push((s, n.t.max(s)));
            }
            Event::Nav(n) => reactions.push(n.t),
            Event::Scroll(s) => reactions.push(s.t),
            Event::Vis(v) => reactions.push(v.t),
            _ => {}
        }
    }
    reactions.sort_unstable();
    activity.sort_unstable();
    let any_in = |v: &[i64], from: i64, to: i64| {
        let i = v.partition_point(|&x| x < from);
        i < v.len() && v[i] <= to
    };

    // Dead clicks.
    let mut i = 0;
    while i < clicks.len() {
        let first = &clicks[i];
        let mut last_t = first.t;
        let mut j = i + 1;
        while j < clicks.len()
            && clicks[j].page == first.page
            && clicks[j].desc == first.desc
            && (0..=DEAD_MERGE_MS).contains(&clicks[j].t.saturating_sub(last_t))
        {
            last_t = clicks[j].t;
            j += 1;
        }
        let tgt = &first.click.tgt;
        let window_end = last_t.saturating_add(DEAD_WINDOW_MS);
        if tgt.ia && !tgt.quiet && window_end <= end && !any_in(&reactions, first.t, window_end) {
            push(
                &mut out,
                first.t,
                SignalKind::DeadClick,
                first.route,
                Some(first.desc.clone()),
                (j - i) as u32,
                None,
            );
        }
        i = j;
    }

    // Error clicks.
    let windows: Vec<i64> = clicks
        .iter()
        .map(|c| activity_end(&activity, c.t))
        .collect();
    let mut per_click: BTreeMap<usize, (u32, String)> = BTreeMap::new();
    for f in flat {
        let Event::Err(e) = f.ev else { continue };
        let upto = clicks.partition_point(|c| c.t <= e.t);
        let owner = (0..upto)
            .rev()
            .take_while(|&k| e.t.saturating_sub(clicks[k].t) <= ERROR_WINDOW_MAX_MS)
            .find(|&k| e.t <= windows[k]);
        if let Some(k) = owner {
            let entry = per_click.entry(k).or_insert((0, e.msg.clone()));
            entry.0 += 1;
        }
    }
    for (k, (n, msg)) in per_click {
        let c = &clicks[k];
        push(
            &mut out,
            c.t,
            SignalKind::ErrorClick,
            c.route,
            Some(c.desc.clone()),
            n,
            Some(msg),
        );
    }

    // JS errors and failed requests.
    let mut requests: BTreeMap<(String, String), Vec<(i64, u32)>> = BTreeMap::new();
    for f in flat {
        match f.ev {
            Event::Err(e) => push(
                &mut out,
                e.t,
                SignalKind::JsError,
                f.route,
                None,
                1,
                Some(e.msg.clone()),
            ),
            Event::Net(n) => {
                if n.status == 0 || n.status >= 400 {
                    push(
                        &mut out,
                        n.t,
                        SignalKind::FailedRequest,
                        f.route,
                        None,
                        1,
                        Some(format!(
                            "{} {} → {}",
                            n.method,
                            super::route::url_path(&n.url),
                            n.status
                        )),
                    );
                }
                requests
                    .entry((n.method.to_ascii_uppercase(), n.url.clone()))
                    .or_default()
                    .push((n.t.saturating_sub(i64::from(n.dur)), f.route));
            }
            _ => {}
        }
    }

    // Repeated identical requests.
    for ((method, url), mut starts) in requests {
        starts.sort_unstable();
        let mut k = 0;
        while k < starts.len() {
            let mut j = k + 1;
            while j < starts.len()
                && starts[j].0.saturating_sub(starts[j - 1].0) <= REPEAT_MAX_GAP_MS
            {
                j += 1;
            }
            if (j - k) as u32 >= REPEAT_MIN_REQUESTS {
                push(
                    &mut out,
                    starts[k].0,
                    SignalKind::RepeatedRequest,
                    starts[k].1,
                    None,
                    (j - k) as u32,
                    Some(format!("{method} {}", super::route::url_path(&url))),
                );
            }
            k = j;
        }
    }

    out.sort_by_key(|a| (a.t, a.kind));
    out
}

/// End of a click's activity window (epoch ms): see `error_click` in the module docs.
/// `activity` holds `(start, end)` intervals sorted by start.
fn activity_end(activity: &[(i64, i64)], click_t: i64) -> i64 {
    let cap = click_t.saturating_add(ERROR_WINDOW_MAX_MS);
    let mut last = click_t;
    let mut i = activity.partition_point(|&(s, _)| s < click_t);
    while let Some(&(s, e)) = activity.get(i) {
        if s > last.saturating_add(ACTIVITY_QUIET_MS) || s > cap {
            break;
        }
        last = last.max(e).min(cap);
        i += 1;
    }
    last.saturating_add(ACTIVITY_QUIET_MS)
        .clamp(click_t.saturating_add(ERROR_WINDOW_MIN_MS), cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cook::tests::{click, err, meta, mutation, net, run_signals};

    fn kinds(s: &[Signal], k: SignalKind) -> Vec<&Signal> {
        s.iter().filter(|x| x.kind == k).collect()
    }

    /// A page load, then the given events, then a vis event far enough away that every
    /// dead-click window has closed (unless the test says otherwise).
    fn with_page(mut evs: Vec<Event>, tail: bool) -> Vec<Event> {
        evs.insert(0, meta(0, "https://s.example/p/1"));
        if tail {
            evs.push(Event::Vis(event::Vis {
                t: 100_000,
                hidden: false,
            }));
        }
        evs
    }

    #[test]
    fn rage_needs_three_clicks_within_a_second() {
        let s = run_signals(with_page(
            vec![
                click(1000, "a", 10.0, 10.0, true),
                click(2000, "a", 10.0, 10.0, true),
                click(3000, "a", 10.0, 10.0, true),
            ],
            true,
        ));
        let rage = kinds(&s, SignalKind::RageClick);
        assert_eq!(rage.len(), 1, "gaps of exactly 1000 ms still count");
        assert_eq!(rage[0].count, 3);
        assert_eq!(rage[0].t, 1000);
        assert_eq!(rage[0].target.as_deref(), Some("testid:a"));

        let s = run_signals(with_page(
            vec![
                click(1000, "a", 10.0, 10.0, true),
                click(2001, "a", 10.0, 10.0, true),
                click(3002, "a", 10.0, 10.0, true),
            ],
            true,
        ));
        assert!(
            kinds(&s, SignalKind::RageClick).is_empty(),
            "1001 ms is too slow"
        );

        let s = run_signals(with_page(
            vec![
                click(1000, "a", 10.0, 10.0, true),
                click(1100, "a", 10.0, 10.0, true),
            ],
            true,
        ));
        assert!(kinds(&s, SignalKind::RageClick).is_empty(), "two clicks");
    }

    #[test]
    fn rage_by_distance_and_one_per_burst() {
        // Different targets, 100 px apart: joins; 5 clicks give one signal.
        let s = run_signals(with_page(
            (0..5)
                .map(|i| {
                    click(
                        1000 + i * 200,
                        &format!("t{i}"),
                        100.0 * i as f64,
                        0.0,
                        true,
                    )
                })
                .collect(),
            true,
        ));
        let rage = kinds(&s, SignalKind::RageClick);
        assert_eq!(rage.len(), 1);
        assert_eq!(rage[0].count, 5);
        // 101 px apart on different targets: no burst.
        let s = run_signals(with_page(
            (0..3)
                .map(|i| {
                    click(
                        1000 + i * 200,
                        &format!("t{i}"),
                        101.0 * i as f64,
                        0.0,
                        true,
                    )
                })
                .collect(),
            true,
        ));
        assert!(kinds(&s, SignalKind::RageClick).is_empty());
    }

    #[test]
    fn rage_is_suppressed_on_quiet_targets() {
        let mut evs: Vec<Event> = (0..4)
            .map(|i| click(1000 + i * 100, "q", 0.0, 0.0, true))
            .collect();
        for e in &mut evs {
            if let Event::Click(c) = e {
                c.tgt.quiet = true;
            }
        }
        let s = run_signals(with_page(evs, true));
        assert!(kinds(&s, SignalKind::RageClick).is_empty());
        assert!(kinds(&s, SignalKind::DeadClick).is_empty());
    }

    #[test]
    fn dead_click_edges() {
        // No reaction at all: dead.
        let s = run_signals(with_page(vec![click(1000, "b", 0.0, 0.0, true)], true));
        assert_eq!(kinds(&s, SignalKind::DeadClick).len(), 1);
        // A mutation exactly at the window's end: alive.
        let s = run_signals(with_page(
            vec![click(1000, "b", 0.0, 0.0, true), mutation(3500)],
            true,
        ));
        assert!(kinds(&s, SignalKind::DeadClick).is_empty());
        // One ms later: dead.
        let s = run_signals(with_page(
            vec![click(1000, "b", 0.0, 0.0, true), mutation(3501)],
            true,
        ));
        assert_eq!(kinds(&s, SignalKind::DeadClick).len(), 1);
        // A request that starts within the window (ends later): alive.
        let s = run_signals(with_page(
            vec![
                click(1000, "b", 0.0, 0.0, true),
                net(9000, "GET", "/api/x", 200, 7000),
            ],
            true,
        ));
        assert!(kinds(&s, SignalKind::DeadClick).is_empty());
        // Not interactive-looking: never dead.
        let s = run_signals(with_page(vec![click(1000, "b", 0.0, 0.0, false)], true));
        assert!(kinds(&s, SignalKind::DeadClick).is_empty());
    }

    #[test]
    fn dead_click_not_flagged_when_recording_ends_early() {
        let s = run_signals(with_page(
            vec![click(1000, "b", 0.0, 0.0, true), err(3499, "late")],
            false,
        ));
        assert!(kinds(&s, SignalKind::DeadClick).is_empty());
        let s = run_signals(with_page(
            vec![click(1000, "b", 0.0, 0.0, true), err(3500, "late")],
            false,
        ));
        assert_eq!(kinds(&s, SignalKind::DeadClick).len(), 1);
    }

    #[test]
    fn dead_rage_burst_is_one_dead_click() {
        let s = run_signals(with_page(
            (0..4)
                .map(|i| click(1000 + i * 300, "pay", 5.0, 5.0, true))
                .collect(),
            true,
        ));
        let dead = kinds(&s, SignalKind::DeadClick);
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].count, 4);
        assert_eq!(kinds(&s, SignalKind::RageClick).len(), 1);
    }

    #[test]
    fn error_click_window() {
        // Error 999 ms after a click with no activity: inside the 1 s minimum.
        let s = run_signals(with_page(
            vec![click(1000, "c", 0.0, 0.0, true), err(1999, "boom")],
            true,
        ));
        let ec = kinds(&s, SignalKind::ErrorClick);
        assert_eq!(ec.len(), 1);
        assert_eq!(ec[0].detail.as_deref(), Some("boom"));
        // 1001 ms after: outside.
        let s = run_signals(with_page(
            vec![click(1000, "c", 0.0, 0.0, true), err(2001, "boom")],
            true,
        ));
        assert!(kinds(&s, SignalKind::ErrorClick).is_empty());
        // A chain of mutations every 90 ms keeps the window open past 1 s.
        let mut evs = vec![click(1000, "c", 0.0, 0.0, true)];
        evs.extend((1..=20).map(|k| mutation(1000 + k * 90)));
        evs.push(err(2850, "chained"));
        let s = run_signals(with_page(evs, true));
        assert_eq!(kinds(&s, SignalKind::ErrorClick).len(), 1);
        // A chain broken by a 101 ms gap closes at the 1 s floor.
        let mut evs = vec![click(1000, "c", 0.0, 0.0, true)];
        evs.extend([
            mutation(1050),
            mutation(1151),
            mutation(1900),
            mutation(2000),
        ]);
        evs.push(err(2050, "after"));
        let s = run_signals(with_page(evs, true));
        assert!(kinds(&s, SignalKind::ErrorClick).is_empty());
    }

    #[test]
    fn a_request_in_flight_keeps_the_window_open() {
        // The click starts a 3 s request; its failure is reported when it ends.
        let s = run_signals(with_page(
            vec![
                click(1000, "pay", 0.0, 0.0, true),
                net(4000, "POST", "/api/pay", 502, 3000),
                err(4050, "payment failed"),
            ],
            true,
        ));
        assert_eq!(kinds(&s, SignalKind::ErrorClick).len(), 1);
        // 101 ms after the request ended, the window is closed.
        let s = run_signals(with_page(
            vec![
                click(1000, "pay", 0.0, 0.0, true),
                net(4000, "POST", "/api/pay", 502, 3000),
                err(4101, "payment failed"),
            ],
            true,
        ));
        assert!(kinds(&s, SignalKind::ErrorClick).is_empty());
        // A request that started before the click is not the click's activity.
        let s = run_signals(with_page(
            vec![
                net(100, "GET", "/api/poll", 200, 0),
                click(1000, "pay", 0.0, 0.0, true),
                net(4000, "GET", "/api/poll", 200, 3500),
                err(3000, "unrelated"),
            ],
            true,
        ));
        assert!(kinds(&s, SignalKind::ErrorClick).is_empty());
    }

    #[test]
    fn error_click_window_is_capped_at_ten_seconds() {
        let mut evs = vec![click(1000, "c", 0.0, 0.0, true)];
        evs.extend((1..=200).map(|k| mutation(1000 + k * 50)));
        evs.push(err(11_050, "too late"));
        let s = run_signals(with_page(evs, true));
        assert!(kinds(&s, SignalKind::ErrorClick).is_empty());
        let mut evs = vec![click(1000, "c", 0.0, 0.0, true)];
        evs.extend((1..=200).map(|k| mutation(1000 + k * 50)));
        evs.push(err(10_999, "just in"));
        let s = run_signals(with_page(evs, true));
        assert_eq!(kinds(&s, SignalKind::ErrorClick).len(), 1);
    }

    #[test]
    fn js_errors_and_failed_requests() {
        let s = run_signals(with_page(
            vec![
                err(10, "a"),
                err(20, "b"),
                net(30, "POST", "/api/pay", 502, 10),
                net(40, "GET", "/api/x", 0, 10),
                net(50, "GET", "/api/y", 399, 10),
            ],
            true,
        ));
        assert_eq!(kinds(&s, SignalKind::JsError).len(), 2);
        let failed = kinds(&s, SignalKind::FailedRequest);
        assert_eq!(failed.len(), 2);
        assert_eq!(failed[0].detail.as_deref(), Some("POST /api/pay → 502"));
    }

    #[test]
    fn repeated_requests_by_start_time() {
        // Starts at 1000, 3000, 5000 (gaps of exactly 2000): one run of 3.
        let s = run_signals(with_page(
            vec![
                net(1100, "GET", "/api/me", 200, 100),
                net(3100, "GET", "/api/me", 200, 100),
                net(5100, "GET", "/api/me", 200, 100),
                net(5200, "POST", "/api/me", 200, 100),
            ],
            true,
        ));
        let rep = kinds(&s, SignalKind::RepeatedRequest);
        assert_eq!(rep.len(), 1);
        assert_eq!((rep[0].t, rep[0].count), (1000, 3));
        // A 2001 ms gap breaks the run.
        let s = run_signals(with_page(
            vec![
                net(1100, "GET", "/api/me", 200, 100),
                net(3100, "GET", "/api/me", 200, 100),
                net(5101, "GET", "/api/me", 200, 100),
            ],
            true,
        ));
        assert!(kinds(&s, SignalKind::RepeatedRequest).is_empty());
    }
}
