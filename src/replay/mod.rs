//! Session replay: one recorded session → one self-contained HTML player.
//!
//! This module owns the player: the page (`player.html`, a tera template), its script
//! (`player.js`) and what it embeds. The DOM rebuild itself is `rebuild.js`
//! (`UnderstudyRebuild.Rebuilder`), which the fidelity tests use as their oracle, so the
//! player shows exactly what those tests check.
//!
//! What the player does, in the browser, from the file alone (no network, works from
//! `file://`):
//! * rebuilds the recorded DOM from each page view's snapshot and mutations inside
//!   `<iframe sandbox="allow-same-origin">`: without `allow-scripts`, no recorded script or
//!   event handler runs; the page's Content-Security-Policy (inherited by the frame) stops
//!   every fetch the rebuilt markup would make; and the frame is `inert`, so a viewer cannot
//!   follow a recorded link out of the replay;
//! * plays the pointer (`move` samples), clicks, scrolls and inputs (value class and length,
//!   never a value) on a timeline with play, pause, seek and speed; page views play in order;
//!   seeking backwards rebuilds from the page view's latest snapshot and fast-forwards;
//! * marks the frustration signals that [`crate::cook`] finds in the same events (rage, dead
//!   and error clicks, JS errors, failed and repeated requests): they are computed here in
//!   Rust and embedded, never re-derived in JavaScript;
//! * lists console errors, network calls, page views, navigations and custom events (such as
//!   `$lost` and `$breaker`) beside it, each clickable to seek.
//!
//! The file opens on the first snapshot, or at `#t=MS` (ms since the session's first event);
//! `window.understudyReplay` (`seek`, `play`, `pause`, `time`, `duration`, `page`, `node`,
//! `problems`) drives it from a console or a test.
//!
//! Rendering is pure: batches in, HTML out. The session is embedded as JSON in a
//! `<script type="application/json">` through [`crate::report::script_json`], so no recorded
//! string can close the element, and the player only ever puts recorded strings into the
//! page as text.

use std::collections::HashMap;

use serde::Serialize;
use tera::{Context, Tera};

use crate::cook::{cook_session, Signal};
use crate::event::{Batch, Event};

/// The DOM rebuilder (`UnderstudyRebuild`), shared with the fidelity tests.
pub const REBUILD_JS: &str = include_str!("rebuild.js");
/// The player's own script.
const PLAYER_JS: &str = include_str!("player.js");
const TEMPLATE_NAME: &str = "player.html";
const TEMPLATE: &str = include_str!("player.html");

/// Why a session cannot be turned into a player.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The session has no events at all.
    #[error("session `{0}` has no events to replay")]
    Empty(String),
    /// No page view of the session has a DOM snapshot, so there is no page to rebuild.
    #[error(
        "session `{0}` has no DOM snapshot in any page view, so there is no page to rebuild \
         (its first batches may have been lost, or recording never started)"
    )]
    NoSnapshot(String),
    /// The embedded scripts cannot be inlined safely.
    #[error("cannot inline {0}: it contains `</script` or `<!--`")]
    UnsafeScript(&'static str),
    /// The template failed (a bug).
    #[error("cannot render the player: {0}")]
    Template(String),
    /// The session cannot be serialised (a bug).
    #[error("cannot serialise the session: {0}")]
    Json(#[from] serde_json::Error),
}

/// What the player embeds: the session's page views in order, and cook's signals.
#[derive(Serialize)]
struct Data<'a> {
    sid: &'a str,
    /// Epoch ms of the earliest event: time 0 on the timeline, and cook's origin for
    /// signal times.
    start: i64,
    end: i64,
    pages: Vec<Page<'a>>,
    signals: Vec<Signal>,
}

#[derive(Serialize)]
struct Page<'a> {
    pvid: &'a str,
    /// The page view's events, in recorded order (batches by `seq`).
    events: Vec<&'a Event>,
}

#[derive(Serialize)]
struct View<'a> {
    title: String,
    sid: &'a str,
    caption: Option<&'a str>,
    data_json: String,
    rebuild_js: &'static str,
    player_js: &'static str,
}

/// Renders the player for one session. `batches` may come in any order (they are ordered by
/// `seq`); `caption` is shown in the header (e.g. which user and build a simulated session
/// was).
pub fn render_player(
    sid: &str,
    batches: &[Batch],
    caption: Option<&str>,
) -> Result<String, ReplayError> {
    for (name, script) in [("rebuild.js", REBUILD_JS), ("player.js", PLAYER_JS)] {
        if !safe_inline_script(script) {
            return Err(ReplayError::UnsafeScript(name));
        }
    }
    let data = session_data(sid, batches)?;
    // Recorded DOMs can nest thousands of levels deep: `to_json` does not overflow.
    let json = crate::report::script_json(&crate::event::to_json(&data)?);
    let view = View {
        title: format!("understudy replay · {sid}"),
        sid,
        caption,
        data_json: json,
        rebuild_js: REBUILD_JS,
        player_js: PLAYER_JS,
    };
    // Under a `.html` name tera escapes every value unless the template says `| safe`.
    let mut tera = Tera::default();
    tera.add_raw_template(TEMPLATE_NAME, TEMPLATE)
        .map_err(|e| ReplayError::Template(format!("{e:?}")))?;
    let context =
        Context::from_serialize(&view).map_err(|e| ReplayError::Template(e.to_string()))?;
    tera.render(TEMPLATE_NAME, &context)
        .map_err(|e| ReplayError::Template(format!("{e:?}")))
}

/// Orders the session into page views and computes its signals.
fn session_data<'a>(sid: &'a str, batches: &'a [Batch]) -> Result<Data<'a>, ReplayError> {
    let mut ordered: Vec<&Batch> = batches.iter().collect();
    ordered.sort_by_key(|b| b.seq);
    let mut pages: Vec<Page> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for b in ordered {
        let i = *index.entry(b.pvid.as_str()).or_insert_with(|| {
            pages.push(Page {
                pvid: &b.pvid,
                events: Vec::new(),
            });
            pages.len() - 1
        });
        pages[i].events.extend(b.events.iter());
    }
    let all = || pages.iter().flat_map(|p| p.events.iter());
    let (Some(start), Some(end)) = (all().map(|e| e.t()).min(), all().map(|e| e.t()).max()) else {
        return Err(ReplayError::Empty(sid.to_string()));
    };
    if !all().any(|e| matches!(e, Event::Snap(_))) {
        return Err(ReplayError::NoSnapshot(sid.to_string()));
    }
    let signals = cook_session(sid, batches, &[]).signals;
    Ok(Data {
        sid,
        start,
        end,
        pages,
        signals,
    })
}

/// Whether a script can sit inside `<script>…</script>` as is: the HTML parser ends the
/// element at the first `</script`, and `<!--` can switch it into an escaped state.
fn safe_inline_script(js: &str) -> bool {
    let lower = js.to_ascii_lowercase();
    !lower.contains("</script") && !lower.contains("<!--")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "</script><img src=x onerror=alert(1)><!-- \u{2028}";

    fn batches(events: &str) -> Vec<Batch> {
        vec![serde_json::from_str(&format!(
            r#"{{"v":1,"sid":"s1","pvid":"p1","seq":0,"events":{events}}}"#
        ))
        .unwrap()]
    }

    fn page_view(pvid: &str, seq: u64, t: i64, extra: &str) -> Batch {
        serde_json::from_str(&format!(
            r#"{{"v":1,"sid":"s1","pvid":"{pvid}","seq":{seq},"events":[
              {{"k":"meta","t":{t},"url":"http://a/{pvid}","load":"navigate","w":800,"h":600}},
              {{"k":"snap","t":{t},"node":{{"id":1,"nt":9,"c":[{{"id":2,"nt":1,"tag":"html"}}]}}}}
              {extra}]}}"#
        ))
        .unwrap()
    }

    /// The embedded JSON, read back the way the player reads it.
    fn embedded(html: &str) -> serde_json::Value {
        let open = r#"<script type="application/json" id="session-data">"#;
        let from = html.find(open).unwrap() + open.len();
        let len = html[from..].find("</script>").unwrap();
        serde_json::from_str(&html[from..from + len]).unwrap()
    }

    #[test]
    fn scripts_are_safe_to_inline() {
        assert!(safe_inline_script(REBUILD_JS), "rebuild.js");
        assert!(safe_inline_script(PLAYER_JS), "player.js");
        assert!(!safe_inline_script("a = '</SCRIPT>'"));
        assert!(!safe_inline_script("<!-- x"));
    }

    #[test]
    fn a_session_without_events_or_snapshot_is_refused() {
        assert!(matches!(
            render_player("s1", &[], None),
            Err(ReplayError::Empty(_))
        ));
        let b = batches(
            r#"[{"k":"meta","t":1,"url":"http://a/","load":"navigate","w":1,"h":1},
                {"k":"click","t":2,"id":3,"x":1,"y":1,"tgt":{"tag":"a","path":"a"}}]"#,
        );
        let err = render_player("s1", &b, None).unwrap_err();
        assert!(matches!(err, ReplayError::NoSnapshot(_)), "{err}");
        assert!(err.to_string().contains("no DOM snapshot"), "{err}");
    }

    #[test]
    fn page_views_are_ordered_by_seq_and_grouped() {
        // Batches arrive out of order; the second page view's batch comes first.
        let b = vec![
            page_view("p2", 1, 2_000, ""),
            page_view(
                "p1",
                0,
                1_000,
                r#",{"k":"click","t":1500,"id":2,"x":5,"y":5,"tgt":{"tag":"html","path":"html"}}"#,
            ),
        ];
        let data = embedded(&render_player("s1", &b, Some("user 3 · candidate")).unwrap());
        assert_eq!(data["start"], 1_000);
        assert_eq!(data["end"], 2_000);
        let pages = data["pages"].as_array().unwrap();
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0]["pvid"], "p1");
        assert_eq!(pages[0]["events"].as_array().unwrap().len(), 3);
        assert_eq!(pages[1]["pvid"], "p2");
        assert_eq!(pages[1]["events"][0]["k"], "meta");
    }

    #[test]
    fn signals_come_from_cook() {
        // Three quick clicks on one interactive target with no reaction: a rage click and a
        // dead click, exactly as cook decides.
        let clicks: String = (0..3)
            .map(|i| {
                format!(
                    r#",{{"k":"click","t":{},"id":2,"x":5,"y":5,"tgt":{{"tag":"button","path":"body>button","ia":true}}}}"#,
                    1_100 + i * 200
                )
            })
            .collect();
        let b = vec![page_view(
            "p1",
            0,
            1_000,
            &format!(r#"{clicks},{{"k":"vis","t":9000,"hidden":true}}"#),
        )];
        let expected = cook_session("s1", &b, &[]).signals;
        let kinds: Vec<&str> = expected.iter().map(|s| s.kind.as_str()).collect();
        assert!(
            kinds.contains(&"rage_click") && kinds.contains(&"dead_click"),
            "{kinds:?}"
        );
        let data = embedded(&render_player("s1", &b, None).unwrap());
        let got: Vec<Signal> = serde_json::from_value(data["signals"].clone()).unwrap();
        assert_eq!(got, expected);
        assert_eq!(got[0].t, 100);
    }

    #[test]
    fn hostile_strings_stay_inside_the_json() {
        let url = format!("http://a/{}", HOSTILE.replace(' ', ""));
        let extra = format!(
            r#",{{"k":"err","t":1001,"ek":"uncaught","msg":{msg},"src":{url}}},
               {{"k":"net","t":1002,"via":"fetch","method":{msg},"url":{url},"status":500,"dur":1}},
               {{"k":"custom","t":1003,"name":{msg},"data":{{"x":{msg}}}}},
               {{"k":"nav","t":1004,"nav":"push","url":{url}}}"#,
            msg = serde_json::to_string(HOSTILE).unwrap(),
            url = serde_json::to_string(&url).unwrap(),
        );
        let b = vec![page_view("p1", 0, 1_000, &extra)];
        let caption = HOSTILE;
        let html = render_player("s1", &b, Some(caption)).unwrap();
        // Exactly the page's own script elements; nothing recorded opened or closed one.
        let page = html.replace(REBUILD_JS, "").replace(PLAYER_JS, "");
        let scripts = |s: &str| page.to_ascii_lowercase().matches(s).count();
        assert_eq!(scripts("<script"), 3);
        assert_eq!(scripts("</script"), 3);
        assert!(!page.contains("<img src=x"));
        assert!(
            html.contains("&lt;&#x2F;script&gt;&lt;img src=x"),
            "caption escaped"
        );
        // And the JSON still says exactly what was recorded.
        let data = embedded(&html);
        let events = &data["pages"][0]["events"];
        assert_eq!(events[2]["msg"], HOSTILE);
        assert_eq!(events[3]["method"], HOSTILE);
        assert_eq!(events[4]["data"]["x"], HOSTILE);
        assert_eq!(events[5]["url"], url.as_str());
    }

    #[test]
    fn the_player_is_self_contained() {
        let html = render_player("s1", &[page_view("p1", 0, 1, "")], None).unwrap();
        assert!(
            html.contains(REBUILD_JS) && html.contains(PLAYER_JS),
            "scripts inlined"
        );
        let page = html.replace(REBUILD_JS, "").replace(PLAYER_JS, "");
        let iframes: Vec<&str> = page.split("<iframe").skip(1).collect();
        assert_eq!(iframes.len(), 1);
        let tag = &iframes[0][..iframes[0].find('>').unwrap()];
        assert!(tag.contains(r#"sandbox="allow-same-origin""#), "{tag}");
        assert!(!tag.contains("allow-scripts"), "{tag}");
        // Recorded links cannot be followed: the frame takes no input.
        assert!(tag.contains(" inert "), "{tag}");
        assert!(
            page.contains("default-src 'none'"),
            "a CSP stops every fetch"
        );
        for external in ["src=", "href=", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
