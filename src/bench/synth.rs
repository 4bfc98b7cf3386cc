//! Synthetic shop sessions in the exact capture wire format, for benchmarks and fit tests.
//!
//! **These sessions are synthetic.** No person produced them: a small scripted shopper,
//! driven by a seeded ChaCha8 generator, walks a made-up shop and this module writes down what
//! `capture.js` would have sent. They exercise the collector, the store, cook and fit with
//! realistic shapes and volumes; they say nothing about how real users behave, and no model
//! fitted on them should be used to gate anything.
//!
//! The shop: a home page, a catalog (`/catalog`, a grid of 24 product cards), product pages
//! (`/product/<n>`), a cart, a checkout form with an e-mail field and a payment request
//! (`POST /api/payment`), and a confirmation (`/order/<uuid>` with
//! `[data-testid=order-confirmation]`). Every page view has a `meta`, a snapshot of a few
//! hundred nodes with masked text, then mutations, clicks with full `Target`s, inputs,
//! scrolls, pointer moves, visibility changes and requests; now and then a JS error, a failed
//! or repeated request, a dead button clicked again and again. Paths vary, think times are
//! log-normal, a session has 1–6 page views, and its events are cut into several batches per
//! page view with `seq` running across page views.
//!
//! The same `(n, seed)` always gives the same sessions, and session `i` does not depend on
//! `n` (each session has its own ChaCha stream).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::event::{
    self, node_type, Batch, ErrorKind, Event, LoadKind, NavKind, Node, Target, ValueClass,
};

/// Start of the first synthetic session (2024-12-01T00:00:00Z).
pub const BASE_EPOCH_MS: i64 = 1_733_011_200_000;
/// Mean spacing between session starts.
pub const SESSION_SPACING_MS: i64 = 7 * 60 * 1000;
/// Most page views in one session.
pub const MAX_PAGE_VIEWS: u32 = 6;

const ORIGIN: &str = "https://shop.example";

/// `n` synthetic sessions, each a list of batches ordered by `seq`, deterministic in `seed`.
pub fn sessions(n: usize, seed: u64) -> Vec<Vec<Batch>> {
    (0..n).map(|i| session(i, seed)).collect()
}

fn session(i: usize, seed: u64) -> Vec<Batch> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(i as u64);
    let start =
        BASE_EPOCH_MS + i as i64 * SESSION_SPACING_MS + rng.random_range(0..SESSION_SPACING_MS / 2);
    let device = DEVICES[rng.random_range(0..DEVICES.len())];
    let mut g = Gen {
        persona: Persona {
            speed: lognormal(&mut rng, 1.0, 0.35),
            buyer: rng.random_bool(0.45),
            patient: rng.random_bool(0.6),
        },
        rng,
        t: start,
        sid: format!("s-{seed:x}-{i:06}"),
        seq: 0,
        batches: Vec::new(),
        page: None,
        views: 0,
        device,
        cart: 0,
    };
    g.run();
    g.batches
}

#[derive(Clone, Copy)]
struct Device {
    w: u32,
    h: u32,
    touch: bool,
    dpr: f64,
}

const DEVICES: [Device; 6] = [
    Device {
        w: 1280,
        h: 720,
        touch: false,
        dpr: 1.0,
    },
    Device {
        w: 1440,
        h: 900,
        touch: false,
        dpr: 2.0,
    },
    Device {
        w: 1920,
        h: 1080,
        touch: false,
        dpr: 1.0,
    },
    Device {
        w: 390,
        h: 844,
        touch: true,
        dpr: 3.0,
    },
    Device {
        w: 412,
        h: 915,
        touch: true,
        dpr: 2.625,
    },
    Device {
        w: 768,
        h: 1024,
        touch: true,
        dpr: 2.0,
    },
];

struct Persona {
    /// Multiplies every think time.
    speed: f64,
    /// Came to buy.
    buyer: bool,
    /// Waits and retries rather than leaving.
    patient: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Home,
    Catalog,
    Product(u32),
    Cart,
    Checkout,
    Confirmation,
}

/// Where the user goes after a page.
enum Next {
    Go(Kind, LoadKind),
    Leave,
}

struct Page {
    pvid: String,
    events: Vec<Event>,
    batch_start: i64,
    marks: BTreeMap<&'static str, u64>,
    next_id: u64,
    scroll_y: f64,
}

struct Gen {
    rng: ChaCha8Rng,
    persona: Persona,
    t: i64,
    sid: String,
    seq: u64,
    batches: Vec<Batch>,
    page: Option<Page>,
    views: u32,
    device: Device,
    cart: u32,
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    // Box–Muller; 1 − u keeps the logarithm finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * z).exp()
}

fn text(id: u64, len: usize) -> Node {
    Node {
        id,
        nt: node_type::TEXT,
        tag: None,
        a: BTreeMap::new(),
        x: Some("*".repeat(len)),
        c: vec![],
        svg: false,
        excl: None,
        shadow: None,
        frame: None,
        tpl: None,
    }
}

impl Gen {
    fn run(&mut self) {
        let entry = match self.rng.random_range(0..100) {
            0..15 => Kind::Home,
            15..65 => Kind::Catalog,
            65..95 => Kind::Product(self.product()),
            _ => Kind::Cart,
        };
        let mut next = Next::Go(entry, LoadKind::Navigate);
        let mut history: Vec<Kind> = Vec::new();
        while let Next::Go(kind, load) = next {
            self.views += 1;
            history.push(kind);
            let prev = if history.len() >= 2 {
                Some(history[history.len() - 2])
            } else {
                None
            };
            self.open(kind, load);
            next = match kind {
                Kind::Home => self.home(),
                Kind::Catalog => self.catalog(),
                Kind::Product(id) => self.product_page(id, prev),
                Kind::Cart => self.cart_page(),
                Kind::Checkout => self.checkout(),
                Kind::Confirmation => self.confirmation(),
            };
            if self.views >= MAX_PAGE_VIEWS {
                next = Next::Leave;
            }
            if let Next::Go(..) = next {
                self.emit_leave(kind);
            }
            self.close_page();
        }
    }

    fn product(&mut self) -> u32 {
        // Skewed popularity: low ids are more popular.
        let u: f64 = self.rng.random();
        1 + (u * u * 400.0) as u32
    }

    fn think(&mut self, median_ms: f64, sigma: f64) {
        let ms = lognormal(&mut self.rng, median_ms * self.persona.speed, sigma);
        let ms = ms.clamp(30.0, 20.0 * 60.0 * 1000.0) as i64;
        self.pointer_moves(ms);
        self.t += ms;
    }

    fn wait_between(&mut self, ms: std::ops::Range<i64>) {
        self.t += self.rng.random_range(ms);
    }

    fn page(&mut self) -> &mut Page {
        self.page.as_mut().expect("an open page view")
    }

    fn emit(&mut self, ev: Event) {
        let t = self.t;
        let full = {
            let p = self.page();
            p.events.push(ev);
            p.events.len() >= 40 || t - p.batch_start >= 5000
        };
        if full {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let sent = self.t + self.rng.random_range(5..200);
        let Some(p) = self.page.as_mut() else { return };
        if p.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut p.events);
        p.batch_start = self.t;
        self.batches.push(Batch {
            v: event::SCHEMA_VERSION,
            sid: self.sid.clone(),
            pvid: p.pvid.clone(),
            seq: self.seq,
            sent: Some(sent),
            events,
        });
        self.seq += 1;
    }

    fn close_page(&mut self) {
        self.flush();
        self.page = None;
    }

    fn url(kind: Kind, uuid: &str) -> String {
        let path = match kind {
            Kind::Home => "/".to_string(),
            Kind::Catalog => "/catalog".to_string(),
            Kind::Product(id) => format!("/product/{id}"),
            Kind::Cart => "/cart".to_string(),
            Kind::Checkout => "/checkout".to_string(),
            Kind::Confirmation => format!("/order/{uuid}"),
        };
        format!("{ORIGIN}{path}")
    }

    fn uuid(&mut self) -> String {
        let x: u128 = self.rng.random();
        let h = format!("{x:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Starts a page view: meta, snapshot, the page's own requests.
    fn open(&mut self, kind: Kind, load: LoadKind) {
        self.wait_between(150..900);
        let uuid = self.uuid();
        self.page = Some(Page {
            pvid: format!("p-{}-{}", self.seq, self.views),
            events: Vec::new(),
            batch_start: self.t,
            marks: BTreeMap::new(),
            next_id: 1,
            scroll_y: 0.0,
        });
        let d = self.device;
        self.emit(Event::Meta(event::Meta {
            t: self.t,
            url: Self::url(kind, &uuid),
            referrer: None,
            load,
            w: d.w,
            h: d.h,
            dpr: d.dpr,
            touch: d.touch,
            script: "0.1.0".into(),
        }));
        if self.views == 1 && self.rng.random_bool(0.3) {
            let user = format!("u-{}", self.rng.random_range(1..5000));
            self.emit(Event::Custom(event::Custom {
                t: self.t,
                name: "identify".into(),
                data: serde_json::json!({ "id": user }),
            }));
        }
        self.wait_between(10..120);
        let node = self.build(kind);
        self.emit(Event::Snap(event::Snap {
            t: self.t,
            node,
            sx: 0.0,
            sy: 0.0,
        }));
        self.request("GET", "/api/session", 200, 40..200);
        if matches!(kind, Kind::Catalog | Kind::Product(_)) {
            self.request("GET", "/api/recommendations", 200, 80..400);
            self.lazy_images();
        }
        if kind == Kind::Cart && self.rng.random_bool(0.05) {
            // The bug of the seed story: a client polls the same endpoint in a loop.
            for _ in 0..self.rng.random_range(3..6) {
                self.request("GET", "/api/cart", 200, 20..80);
                self.wait_between(300..1500);
            }
        }
    }

    fn emit_leave(&mut self, kind: Kind) {
        let url = Self::url(kind, "x");
        self.emit(Event::Nav(event::Nav {
            t: self.t + 5,
            nav: NavKind::Leave,
            url,
        }));
    }

    fn request(&mut self, method: &str, path: &str, status: u16, dur: std::ops::Range<u32>) {
        let dur = self.rng.random_range(dur);
        self.t += i64::from(dur);
        self.emit(Event::Net(event::Net {
            t: self.t,
            via: "fetch".into(),
            method: method.into(),
            url: format!("{ORIGIN}{path}"),
            status,
            dur,
            hdr: BTreeMap::new(),
        }));
    }

    fn mutate_text(&mut self, mark: &'static str, len: usize) {
        let id = self.page().marks.get(mark).copied().unwrap_or(1);
        self.emit(Event::Mut(event::Mutation {
            t: self.t,
            adds: vec![],
            rems: vec![],
            attrs: vec![],
            roots: vec![],
            texts: vec![event::TextChange {
                id,
                x: "*".repeat(len),
            }],
        }));
    }

    fn add_node(
        &mut self,
        parent_mark: &'static str,
        tag: &str,
        attrs: &[(&str, &str)],
        text_len: usize,
    ) {
        let parent = self.page().marks.get(parent_mark).copied().unwrap_or(1);
        let (id, tid) = {
            let p = self.page();
            let id = p.next_id;
            p.next_id += 2;
            (id, id + 1)
        };
        let node = Node {
            id,
            nt: node_type::ELEMENT,
            tag: Some(tag.into()),
            a: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            x: None,
            c: vec![text(tid, text_len)],
            svg: false,
            excl: None,
            shadow: None,
            frame: None,
            tpl: None,
        };
        self.emit(Event::Mut(event::Mutation {
            t: self.t,
            adds: vec![event::Add {
                p: parent,
                n: 0,
                node,
            }],
            rems: vec![],
            attrs: vec![],
            roots: vec![],
            texts: vec![],
        }));
    }

    fn lazy_images(&mut self) {
        self.wait_between(100..600);
        let ids: Vec<u64> = {
            let p = self.page();
            (0..3)
                .map(|k| p.next_id.saturating_sub(20 + k * 7).max(1))
                .collect()
        };
        let attrs = ids
            .into_iter()
            .map(|id| {
                let mut a = BTreeMap::new();
                a.insert("class".to_string(), Some("loaded".to_string()));
                event::AttrChange { id, a }
            })
            .collect();
        self.emit(Event::Mut(event::Mutation {
            t: self.t,
            adds: vec![],
            rems: vec![],
            attrs,
            roots: vec![],
            texts: vec![],
        }));
    }

    fn pointer_moves(&mut self, span_ms: i64) {
        if self.device.touch || self.page.is_none() || span_ms < 300 {
            return;
        }
        let n = self.rng.random_range(1..4);
        for k in 0..n {
            let t = self.t + span_ms * k / n;
            let mut pts = Vec::new();
            let (mut x, mut y) = (
                self.rng.random_range(0.0..f64::from(self.device.w)),
                self.rng.random_range(0.0..f64::from(self.device.h)),
            );
            for j in 0..self.rng.random_range(3..9) {
                x += self.rng.random_range(-60.0..60.0);
                y += self.rng.random_range(-40.0..40.0);
                pts.push([x.round(), y.round(), f64::from(j * 50)]);
            }
            let p = self.page();
            p.events.push(Event::Move(event::Move { t, pts }));
        }
    }

    fn scroll(&mut self) {
        let steps = self.rng.random_range(2..8);
        let down = self.rng.random_bool(0.8);
        for _ in 0..steps {
            self.wait_between(60..250);
            let dy = self.rng.random_range(60.0..260.0);
            let t = self.t;
            let y = {
                let p = self.page();
                p.scroll_y = if down {
                    p.scroll_y + dy
                } else {
                    (p.scroll_y - dy).max(0.0)
                }
                .round();
                p.scroll_y
            };
            self.emit(Event::Scroll(event::Scroll {
                t,
                id: 0,
                x: 0.0,
                y,
            }));
        }
    }

    fn target(&self, spec: &TargetSpec) -> Target {
        Target {
            tag: spec.tag.into(),
            testid: spec.testid.map(str::to_string),
            eid: spec.eid.map(str::to_string),
            role: spec.role.map(str::to_string),
            name: spec.name.map(str::to_string),
            label: spec.label.map(str::to_string),
            field: spec.field.map(str::to_string),
            kind: spec.kind.map(str::to_string),
            path: spec.path.into(),
            href: spec.href.map(str::to_string),
            ia: spec.ia,
            quiet: spec.quiet,
        }
    }

    fn click(&mut self, mark: &'static str, spec: &TargetSpec) {
        let id = self.page().marks.get(mark).copied().unwrap_or(1);
        let tgt = self.target(spec);
        let x = self.rng.random_range(10.0..f64::from(self.device.w - 10));
        let y = self.rng.random_range(10.0..f64::from(self.device.h - 10));
        self.emit(Event::Click(event::Click {
            t: self.t,
            id,
            x: x.round(),
            y: y.round(),
            tgt,
            btn: 0,
            trusted: true,
        }));
    }

    /// Clicks the same spot `n` times, quickly (a dead control, or impatience).
    fn click_burst(&mut self, mark: &'static str, spec: &TargetSpec, n: u32) {
        let id = self.page().marks.get(mark).copied().unwrap_or(1);
        let tgt = self.target(spec);
        let (x, y) = (
            self.rng.random_range(50.0..f64::from(self.device.w - 50)),
            self.rng.random_range(50.0..f64::from(self.device.h - 50)),
        );
        for k in 0..n {
            if k > 0 {
                self.wait_between(150..700);
            }
            let (dx, dy) = (
                self.rng.random_range(-8.0..8.0),
                self.rng.random_range(-8.0..8.0),
            );
            self.emit(Event::Click(event::Click {
                t: self.t,
                id,
                x: (x + dx).round(),
                y: (y + dy).round(),
                tgt: tgt.clone(),
                btn: 0,
                trusted: true,
            }));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn input(
        &mut self,
        mark: &'static str,
        spec: &TargetSpec,
        cls: ValueClass,
        len: u32,
        paste: bool,
    ) {
        let id = self.page().marks.get(mark).copied().unwrap_or(1);
        let tgt = self.target(spec);
        let (keys, dur, dels) = if paste || matches!(cls, ValueClass::Choice | ValueClass::Toggle) {
            (1, 0, 0)
        } else {
            let dels = if self.rng.random_bool(0.25) {
                self.rng.random_range(1..4)
            } else {
                0
            };
            let keys = len + 2 * dels;
            let per_key = lognormal(&mut self.rng, 170.0 * self.persona.speed, 0.35);
            let dur = (per_key * f64::from(keys.saturating_sub(1))) as u32;
            (keys, dur, dels)
        };
        self.t += i64::from(dur);
        self.emit(Event::Input(event::Input {
            t: self.t,
            id,
            tgt,
            cls,
            len,
            keys,
            dur,
            dels,
            paste,
            idx: matches!(cls, ValueClass::Choice).then(|| i64::from(len % 5)),
        }));
    }

    fn js_error(&mut self, msg: &str) {
        let col = self.rng.random_range(100..90_000);
        self.emit(Event::Err(event::JsError {
            t: self.t,
            ek: ErrorKind::Uncaught,
            msg: msg.into(),
            src: Some(format!("{ORIGIN}/assets/app.js")),
            line: 1,
            col,
        }));
    }

    fn maybe_hide(&mut self) {
        if self.rng.random_bool(0.04) {
            self.emit(Event::Vis(event::Vis {
                t: self.t,
                hidden: true,
            }));
            self.wait_between(10_000..300_000);
            self.emit(Event::Vis(event::Vis {
                t: self.t,
                hidden: false,
            }));
        }
    }

    /// Leaving through the browser's back button: the previous page loads from history.
    fn back_or(&mut self, prev: Option<Kind>, fallback: Next) -> Next {
        match prev {
            Some(k) if k != Kind::Confirmation => Next::Go(k, LoadKind::BackForward),
            _ => fallback,
        }
    }

    fn nav_link(&mut self, to: Kind) -> Next {
        let (mark, spec) = match to {
            Kind::Cart => ("cart-link", CART_LINK),
            Kind::Home => ("logo", LOGO),
            _ => ("nav-catalog", NAV_CATALOG),
        };
        self.click(mark, &spec);
        Next::Go(to, LoadKind::Navigate)
    }

    // ---- pages ----

    fn home(&mut self) -> Next {
        self.think(2500.0, 0.7);
        if self.rng.random_bool(0.5) {
            self.scroll();
            self.think(2000.0, 0.7);
        }
        match self.rng.random_range(0..100) {
            0..55 => {
                self.click("hero-cta", &HERO_CTA);
                Next::Go(Kind::Catalog, LoadKind::Navigate)
            }
            55..80 => self.nav_link(Kind::Catalog),
            _ => Next::Leave,
        }
    }

    fn catalog(&mut self) -> Next {
        self.think(3000.0, 0.8);
        for _ in 0..self.rng.random_range(0..4) {
            self.scroll();
            self.think(1800.0, 0.8);
        }
        if self.rng.random_bool(0.2) {
            self.click("sort", &SORT_SELECT);
            self.think(900.0, 0.5);
            self.input("sort", &SORT_SELECT, ValueClass::Choice, 2, false);
            self.request("GET", "/api/products", 200, 60..300);
            self.mutate_text("grid", 24);
            self.think(2000.0, 0.7);
        }
        if self.rng.random_bool(0.05) {
            // A promo banner that looks clickable and does nothing.
            let n = if self.persona.patient {
                1
            } else {
                self.rng.random_range(3..6)
            };
            self.click_burst("promo", &PROMO, n);
            self.think(1500.0, 0.6);
        }
        self.maybe_hide();
        let leave = if self.persona.buyer { 10 } else { 35 };
        match self.rng.random_range(0..100) {
            x if x < leave => Next::Leave,
            x if x < leave + 8 && self.cart > 0 => self.nav_link(Kind::Cart),
            _ => {
                let id = self.product();
                self.click("card", &card_link());
                Next::Go(Kind::Product(id), LoadKind::Navigate)
            }
        }
    }

    fn product_page(&mut self, _id: u32, prev: Option<Kind>) -> Next {
        self.think(3500.0, 0.8);
        if self.rng.random_bool(0.6) {
            self.scroll();
            self.think(2500.0, 0.8);
        }
        if self.rng.random_bool(0.4) {
            self.click("size", &SIZE_SELECT);
            self.think(800.0, 0.5);
            self.input("size", &SIZE_SELECT, ValueClass::Choice, 3, false);
            self.think(900.0, 0.6);
        }
        let wants = if self.persona.buyer { 0.75 } else { 0.25 };
        if self.rng.random_bool(wants) {
            if self.rng.random_bool(0.06) {
                // The add-to-cart handler failed to attach: nothing happens.
                let n = if self.persona.patient {
                    self.rng.random_range(1..3)
                } else {
                    self.rng.random_range(3..6)
                };
                self.click_burst("add-to-cart", &ADD_TO_CART, n);
                self.think(2000.0, 0.6);
                if !self.persona.patient || self.rng.random_bool(0.5) {
                    return Next::Leave;
                }
            } else {
                self.click("add-to-cart", &ADD_TO_CART);
                self.request("POST", "/api/cart", 200, 60..350);
                self.cart += 1;
                self.mutate_text("badge", 1);
                self.add_node("main", "div", &[("class", "toast"), ("role", "status")], 14);
            }
            self.think(1500.0, 0.7);
        } else if self.rng.random_bool(0.1) {
            self.click("wishlist", &WISHLIST);
            self.wait_between(50..300);
            self.js_error("TypeError: Cannot read properties of undefined (reading *)");
            self.think(1500.0, 0.6);
        }
        self.maybe_hide();
        match self.rng.random_range(0..100) {
            0..30 if self.cart > 0 => self.nav_link(Kind::Cart),
            0..20 => Next::Leave,
            30..55 => self.back_or(prev, Next::Leave),
            55..75 => {
                let id = self.product();
                self.click("related", &RELATED);
                Next::Go(Kind::Product(id), LoadKind::Navigate)
            }
            75..85 => self.nav_link(Kind::Catalog),
            _ if self.cart > 0 => self.nav_link(Kind::Cart),
            _ => Next::Leave,
        }
    }

    fn cart_page(&mut self) -> Next {
        self.think(2500.0, 0.7);
        if self.rng.random_bool(0.15) {
            self.click("coupon", &COUPON);
            self.think(700.0, 0.5);
            let paste = self.rng.random_bool(0.4);
            self.input("coupon", &COUPON, ValueClass::ShortText, 8, paste);
            self.think(600.0, 0.5);
            self.click("apply-coupon", &APPLY_COUPON);
            self.request("POST", "/api/coupon", 400, 50..200);
            if self.rng.random_bool(0.3) {
                self.js_error("Error: coupon response not handled");
            } else {
                self.add_node("main", "p", &[("class", "error")], 22);
            }
            self.think(1800.0, 0.6);
        }
        let go = if self.cart == 0 {
            0.15
        } else if self.persona.buyer {
            0.85
        } else {
            0.4
        };
        if self.rng.random_bool(go) {
            self.click("checkout", &CHECKOUT);
            return Next::Go(Kind::Checkout, LoadKind::Navigate);
        }
        match self.rng.random_range(0..3) {
            0 => self.nav_link(Kind::Catalog),
            _ => Next::Leave,
        }
    }

    fn checkout(&mut self) -> Next {
        self.think(2000.0, 0.6);
        // E-mail, sometimes wrong first.
        self.click("email", &EMAIL);
        self.think(500.0, 0.5);
        let bad = self.rng.random_bool(0.1);
        let paste = self.rng.random_bool(0.15);
        let len = self.rng.random_range(12..28);
        if bad {
            self.input("email", &EMAIL, ValueClass::BadEmail, len - 3, paste);
            self.add_node("form", "p", &[("class", "field-error")], 26);
            self.think(1500.0, 0.5);
            self.click("email", &EMAIL);
            self.think(400.0, 0.5);
        }
        self.input("email", &EMAIL, ValueClass::Email, len, paste && !bad);
        if self.rng.random_bool(0.15) {
            return Next::Leave; // second thoughts
        }
        self.think(600.0, 0.5);
        self.click("name", &NAME);
        self.think(300.0, 0.5);
        let name_len = self.rng.random_range(5..20);
        self.input("name", &NAME, ValueClass::ShortText, name_len, false);
        self.think(600.0, 0.5);
        self.click("address", &ADDRESS);
        self.think(300.0, 0.5);
        let cls = if self.rng.random_bool(0.7) {
            ValueClass::ShortText
        } else {
            ValueClass::LongText
        };
        let addr_len = self.rng.random_range(10..40);
        self.input("address", &ADDRESS, cls, addr_len, false);
        self.think(700.0, 0.5);
        self.click("terms", &TERMS);
        self.input("terms", &TERMS, ValueClass::Toggle, 1, false);
        self.think(1200.0, 0.6);

        let mut attempts = 0;
        loop {
            attempts += 1;
            self.click("pay", &PAY);
            let form = self.page().marks.get("form").copied().unwrap_or(1);
            self.emit(Event::Submit(event::Submit {
                t: self.t,
                id: form,
                tgt: self.target(&FORM),
            }));
            let slow = self.rng.random_bool(0.1);
            let dur = if slow { 2500..6000 } else { 300..1400 };
            let ok = self.rng.random_bool(if attempts == 1 { 0.88 } else { 0.6 });
            if ok {
                self.request("POST", "/api/payment", 200, dur);
                if self.rng.random_bool(0.5) {
                    // SPA: pushState, then the confirmation replaces the form.
                    self.wait_between(20..80);
                    let uuid = self.uuid();
                    self.emit(Event::Nav(event::Nav {
                        t: self.t,
                        nav: NavKind::Push,
                        url: format!("{ORIGIN}/order/{uuid}"),
                    }));
                    self.wait_between(10..60);
                    self.add_node(
                        "main",
                        "div",
                        &[
                            ("data-testid", "order-confirmation"),
                            ("class", "confirmation"),
                        ],
                        30,
                    );
                    self.think(3000.0, 0.7);
                    if self.rng.random_bool(0.3) {
                        self.scroll();
                    }
                    return Next::Leave;
                }
                return Next::Go(Kind::Confirmation, LoadKind::Navigate);
            }
            self.request("POST", "/api/payment", 502, dur);
            self.emit(Event::Err(event::JsError {
                t: self.t,
                ek: ErrorKind::Console,
                msg: "Payment failed: *".into(),
                src: None,
                line: 0,
                col: 0,
            }));
            self.add_node(
                "form",
                "div",
                &[("class", "banner error"), ("role", "alert")],
                40,
            );
            self.think(1800.0, 0.6);
            if attempts >= 3
                || !self
                    .rng
                    .random_bool(if self.persona.patient { 0.8 } else { 0.4 })
            {
                if !self.persona.patient && self.rng.random_bool(0.5) {
                    // The pay button is now disabled: pounding it does nothing.
                    let n = self.rng.random_range(3..6);
                    self.click_burst("pay", &PAY, n);
                    self.think(1500.0, 0.5);
                }
                return Next::Leave;
            }
        }
    }

    fn confirmation(&mut self) -> Next {
        self.think(3000.0, 0.7);
        if self.rng.random_bool(0.4) {
            self.scroll();
            self.think(2000.0, 0.7);
        }
        if self.rng.random_bool(0.15) {
            return self.nav_link(Kind::Home);
        }
        Next::Leave
    }

    // ---- DOM ----

    fn id(&mut self) -> u64 {
        let p = self.page();
        let id = p.next_id;
        p.next_id += 1;
        id
    }

    fn el(&mut self, tag: &str, attrs: &[(&str, &str)], children: Vec<Node>) -> Node {
        let id = self.id();
        Node {
            id,
            nt: node_type::ELEMENT,
            tag: Some(tag.into()),
            a: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            x: None,
            c: children,
            svg: false,
            excl: None,
            shadow: None,
            frame: None,
            tpl: None,
        }
    }

    /// An element whose id is remembered under `mark` (the last one wins).
    fn marked(
        &mut self,
        mark: &'static str,
        tag: &str,
        attrs: &[(&str, &str)],
        children: Vec<Node>,
    ) -> Node {
        let n = self.el(tag, attrs, children);
        self.page().marks.insert(mark, n.id);
        n
    }

    fn txt(&mut self, len: usize) -> Node {
        let id = self.id();
        text(id, len)
    }

    fn labelled(&mut self, tag: &str, attrs: &[(&str, &str)], text_len: usize) -> Node {
        let t = self.txt(text_len);
        self.el(tag, attrs, vec![t])
    }

    fn build(&mut self, kind: Kind) -> Node {
        let mut head = Vec::new();
        let title = self.labelled("title", &[], 18);
        head.push(title);
        for name in ["viewport", "description", "theme-color"] {
            head.push(self.el("meta", &[("name", name)], vec![]));
        }
        head.push(self.el(
            "link",
            &[("rel", "stylesheet"), ("href", "/assets/app.css")],
            vec![],
        ));
        head.push(self.el("script", &[("src", "/assets/app.js")], vec![]));
        let head = self.el("head", &[], head);

        let mut nav = Vec::new();
        for (k, label) in ["Catalog", "New", "Sale", "About", "Help"]
            .iter()
            .enumerate()
        {
            let a = if k == 0 {
                let t = self.txt(label.len());
                self.marked("nav-catalog", "a", &[("href", "/catalog")], vec![t])
            } else {
                self.labelled("a", &[("href", "/")], label.len())
            };
            nav.push(self.el("li", &[], vec![a]));
        }
        let ul = self.el("ul", &[], nav);
        let nav = self.el("nav", &[("aria-label", "Main")], vec![ul]);
        let logo_t = self.txt(4);
        let logo = self.marked(
            "logo",
            "a",
            &[("href", "/"), ("class", "logo")],
            vec![logo_t],
        );
        let badge_t = self.txt(1);
        let badge = self.marked("badge", "span", &[("class", "badge")], vec![badge_t]);
        let cart = self.marked(
            "cart-link",
            "a",
            &[("href", "/cart"), ("data-testid", "cart-link")],
            vec![badge],
        );
        let header = self.el("header", &[], vec![logo, nav, cart]);

        let main_children = match kind {
            Kind::Home => self.home_dom(),
            Kind::Catalog => self.catalog_dom(),
            Kind::Product(_) => self.product_dom(),
            Kind::Cart => self.cart_dom(),
            Kind::Checkout => self.checkout_dom(),
            Kind::Confirmation => self.confirmation_dom(),
        };
        let main = self.marked("main", "main", &[], main_children);

        let mut cols = Vec::new();
        for _ in 0..3 {
            let mut items = Vec::new();
            for _ in 0..4 {
                let a = self.labelled("a", &[("href", "/")], 9);
                items.push(self.el("li", &[], vec![a]));
            }
            let ul = self.el("ul", &[], items);
            cols.push(self.el("div", &[("class", "col")], vec![ul]));
        }
        let footer = self.el("footer", &[], cols);
        let body = self.el("body", &[], vec![header, main, footer]);
        let html = self.el("html", &[("lang", "en")], vec![head, body]);
        Node {
            // The root of a tree must say its id (the wire leaves only the others implicit).
            id: self.id(),
            nt: node_type::DOCUMENT,
            tag: None,
            a: BTreeMap::new(),
            x: None,
            c: vec![html],
            svg: false,
            excl: None,
            shadow: None,
            frame: None,
            tpl: None,
        }
    }

    fn home_dom(&mut self) -> Vec<Node> {
        let h1 = self.labelled("h1", &[], 24);
        let cta_t = self.txt(8);
        let cta = self.marked(
            "hero-cta",
            "a",
            &[("href", "/catalog"), ("data-testid", "hero-cta")],
            vec![cta_t],
        );
        let hero = self.el("section", &[("class", "hero")], vec![h1, cta]);
        let mut tiles = Vec::new();
        for _ in 0..8 {
            let img = self.el("img", &[("alt", "")], vec![]);
            let cap = self.labelled("p", &[], 16);
            tiles.push(self.el("div", &[("class", "tile")], vec![img, cap]));
        }
        let grid = self.el("section", &[("class", "tiles")], tiles);
        vec![hero, grid]
    }

    fn catalog_dom(&mut self) -> Vec<Node> {
        let h1 = self.labelled("h1", &[], 12);
        let mut opts = Vec::new();
        for _ in 0..4 {
            opts.push(self.labelled("option", &[], 10));
        }
        let sort = self.marked("sort", "select", &[("id", "sort"), ("name", "sort")], opts);
        let promo_t = self.txt(22);
        let promo = self.marked(
            "promo",
            "div",
            &[("class", "promo"), ("data-testid", "promo-banner")],
            vec![promo_t],
        );
        let mut cards = Vec::new();
        for k in 0..24 {
            let img = self.el("img", &[("alt", ""), ("class", "lazy")], vec![]);
            let h3 = self.labelled("h3", &[], 14 + k % 7);
            let price = self.labelled("p", &[("class", "price")], 6);
            let a = self.marked(
                "card",
                "a",
                &[("href", "/product/1"), ("class", "card-link")],
                vec![img, h3, price],
            );
            let quick = self.labelled("button", &[("class", "quick-add")], 3);
            cards.push(self.el("article", &[("class", "card")], vec![a, quick]));
        }
        let grid = self.marked("grid", "div", &[("class", "grid")], cards);
        vec![h1, sort, promo, grid]
    }

    fn product_dom(&mut self) -> Vec<Node> {
        let mut gallery = Vec::new();
        for _ in 0..5 {
            gallery.push(self.el("img", &[("alt", ""), ("class", "lazy")], vec![]));
        }
        let gallery = self.el("div", &[("class", "gallery")], gallery);
        let h1 = self.labelled("h1", &[], 20);
        let price = self.labelled("p", &[("class", "price")], 6);
        let mut desc = Vec::new();
        for k in 0..6 {
            desc.push(self.labelled("p", &[], 60 + k * 13));
        }
        let desc = self.el("div", &[("class", "desc")], desc);
        let mut sizes = Vec::new();
        for _ in 0..5 {
            sizes.push(self.labelled("option", &[], 2));
        }
        let size = self.marked("size", "select", &[("id", "size"), ("name", "size")], sizes);
        let add_t = self.txt(11);
        let add = self.marked(
            "add-to-cart",
            "button",
            &[("data-testid", "add-to-cart")],
            vec![add_t],
        );
        let wish_t = self.txt(8);
        let wish = self.marked(
            "wishlist",
            "button",
            &[("data-testid", "wishlist")],
            vec![wish_t],
        );
        let mut reviews = Vec::new();
        for _ in 0..8 {
            let h4 = self.labelled("h4", &[], 12);
            let p = self.labelled("p", &[], 140);
            let stars = self.labelled("span", &[("class", "stars")], 5);
            reviews.push(self.el("article", &[("class", "review")], vec![h4, p, stars]));
        }
        let reviews = self.el("section", &[("class", "reviews")], reviews);
        let mut related = Vec::new();
        for _ in 0..6 {
            let t = self.txt(15);
            related.push(self.marked(
                "related",
                "a",
                &[("href", "/product/2"), ("class", "related")],
                vec![t],
            ));
        }
        let related = self.el("div", &[("class", "related-list")], related);
        vec![gallery, h1, price, desc, size, add, wish, reviews, related]
    }

    fn cart_dom(&mut self) -> Vec<Node> {
        let mut rows = Vec::new();
        for _ in 0..(self.cart.clamp(1, 6)) {
            let mut cells = Vec::new();
            for len in [18, 2, 6] {
                cells.push(self.labelled("td", &[], len));
            }
            rows.push(self.el("tr", &[], cells));
        }
        let table = self.el("table", &[("class", "cart")], rows);
        let coupon = self.marked(
            "coupon",
            "input",
            &[("id", "coupon"), ("name", "coupon"), ("type", "text")],
            vec![],
        );
        let apply_t = self.txt(5);
        let apply = self.marked(
            "apply-coupon",
            "button",
            &[("data-testid", "apply-coupon")],
            vec![apply_t],
        );
        let co_t = self.txt(8);
        let checkout = self.marked(
            "checkout",
            "a",
            &[("href", "/checkout"), ("data-testid", "checkout")],
            vec![co_t],
        );
        vec![table, coupon, apply, checkout]
    }

    fn checkout_dom(&mut self) -> Vec<Node> {
        let mut fields = Vec::new();
        for (mark, id, ty) in [
            ("email", "email", "email"),
            ("name", "name", "text"),
            ("address", "address", "text"),
        ] {
            let label = self.labelled("label", &[("for", id)], id.len());
            fields.push(label);
            let input = self.marked(
                mark,
                "input",
                &[("id", id), ("name", id), ("type", ty)],
                vec![],
            );
            fields.push(input);
        }
        let terms = self.marked(
            "terms",
            "input",
            &[("id", "terms"), ("type", "checkbox")],
            vec![],
        );
        fields.push(terms);
        let pay_t = self.txt(3);
        let pay = self.marked(
            "pay",
            "button",
            &[("data-testid", "pay"), ("type", "submit")],
            vec![pay_t],
        );
        fields.push(pay);
        let form = self.marked("form", "form", &[("id", "checkout-form")], fields);
        let summary = self.labelled("aside", &[("class", "summary")], 40);
        vec![form, summary]
    }

    fn confirmation_dom(&mut self) -> Vec<Node> {
        let h1 = self.labelled("h1", &[], 16);
        let mut ps = vec![h1];
        for _ in 0..3 {
            ps.push(self.labelled("p", &[], 50));
        }
        vec![self.el("div", &[("data-testid", "order-confirmation")], ps)]
    }
}

/// A `Target` as capture.js would describe it.
#[derive(Clone, Copy)]
struct TargetSpec {
    tag: &'static str,
    testid: Option<&'static str>,
    eid: Option<&'static str>,
    role: Option<&'static str>,
    name: Option<&'static str>,
    label: Option<&'static str>,
    field: Option<&'static str>,
    kind: Option<&'static str>,
    path: &'static str,
    href: Option<&'static str>,
    ia: bool,
    quiet: bool,
}

const BASE: TargetSpec = TargetSpec {
    tag: "button",
    testid: None,
    eid: None,
    role: None,
    name: None,
    label: None,
    field: None,
    kind: None,
    path: "",
    href: None,
    ia: true,
    quiet: false,
};

const HERO_CTA: TargetSpec = TargetSpec {
    tag: "a",
    testid: Some("hero-cta"),
    role: Some("link"),
    path: "main>section.hero>a",
    href: Some("/catalog"),
    ..BASE
};
const NAV_CATALOG: TargetSpec = TargetSpec {
    tag: "a",
    role: Some("link"),
    name: Some("Catalog"),
    path: "header>nav>ul>li>a",
    href: Some("/catalog"),
    ..BASE
};
const LOGO: TargetSpec = TargetSpec {
    tag: "a",
    role: Some("link"),
    path: "header>a.logo",
    href: Some("/"),
    ..BASE
};
const CART_LINK: TargetSpec = TargetSpec {
    tag: "a",
    testid: Some("cart-link"),
    role: Some("link"),
    path: "header>a",
    href: Some("/cart"),
    ..BASE
};
const SORT_SELECT: TargetSpec = TargetSpec {
    tag: "select",
    eid: Some("sort"),
    role: Some("combobox"),
    field: Some("sort"),
    path: "main>select#sort",
    quiet: true,
    ..BASE
};
const PROMO: TargetSpec = TargetSpec {
    tag: "div",
    testid: Some("promo-banner"),
    path: "main>div.promo",
    ..BASE
};
const ADD_TO_CART: TargetSpec = TargetSpec {
    testid: Some("add-to-cart"),
    role: Some("button"),
    path: "main>button",
    ..BASE
};
const WISHLIST: TargetSpec = TargetSpec {
    testid: Some("wishlist"),
    role: Some("button"),
    path: "main>button:nth-of-type(2)",
    ..BASE
};
const RELATED: TargetSpec = TargetSpec {
    tag: "a",
    role: Some("link"),
    path: "main>div.related-list>a.related",
    href: Some("/product/:id"),
    ..BASE
};
const SIZE_SELECT: TargetSpec = TargetSpec {
    tag: "select",
    eid: Some("size"),
    role: Some("combobox"),
    field: Some("size"),
    path: "main>select#size",
    quiet: true,
    ..BASE
};
const COUPON: TargetSpec = TargetSpec {
    tag: "input",
    eid: Some("coupon"),
    role: Some("textbox"),
    field: Some("coupon"),
    kind: Some("text"),
    path: "main>input#coupon",
    quiet: true,
    ..BASE
};
const APPLY_COUPON: TargetSpec = TargetSpec {
    testid: Some("apply-coupon"),
    role: Some("button"),
    path: "main>button",
    ..BASE
};
const CHECKOUT: TargetSpec = TargetSpec {
    tag: "a",
    testid: Some("checkout"),
    role: Some("link"),
    path: "main>a",
    href: Some("/checkout"),
    ..BASE
};
const EMAIL: TargetSpec = TargetSpec {
    tag: "input",
    eid: Some("email"),
    role: Some("textbox"),
    label: Some("E-mail"),
    field: Some("email"),
    kind: Some("email"),
    path: "form#checkout-form>input#email",
    quiet: true,
    ..BASE
};
const NAME: TargetSpec = TargetSpec {
    tag: "input",
    eid: Some("name"),
    role: Some("textbox"),
    label: Some("Name"),
    field: Some("name"),
    kind: Some("text"),
    path: "form#checkout-form>input#name",
    quiet: true,
    ..BASE
};
const ADDRESS: TargetSpec = TargetSpec {
    tag: "input",
    eid: Some("address"),
    role: Some("textbox"),
    label: Some("Address"),
    field: Some("address"),
    kind: Some("text"),
    path: "form#checkout-form>input#address",
    quiet: true,
    ..BASE
};
const TERMS: TargetSpec = TargetSpec {
    tag: "input",
    eid: Some("terms"),
    role: Some("checkbox"),
    kind: Some("checkbox"),
    path: "form#checkout-form>input#terms",
    quiet: true,
    ..BASE
};
const PAY: TargetSpec = TargetSpec {
    testid: Some("pay"),
    role: Some("button"),
    name: Some("Pay"),
    kind: Some("submit"),
    path: "form#checkout-form>button",
    ..BASE
};
const FORM: TargetSpec = TargetSpec {
    tag: "form",
    eid: Some("checkout-form"),
    role: Some("form"),
    path: "main>form#checkout-form",
    ia: false,
    ..BASE
};

fn card_link() -> TargetSpec {
    TargetSpec {
        tag: "a",
        role: Some("link"),
        path: "main>div.grid>article.card>a.card-link",
        href: Some("/product/:id"),
        ..BASE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_prefix_stable() {
        let a = sessions(30, 42);
        assert_eq!(a, sessions(30, 42));
        assert_eq!(&a[..10], &sessions(10, 42)[..]);
        assert_ne!(a, sessions(30, 43));
    }

    #[test]
    fn well_formed_batches() {
        for s in sessions(200, 1) {
            assert!(!s.is_empty());
            for (k, b) in s.iter().enumerate() {
                b.validate().unwrap();
                assert_eq!(b.seq, k as u64, "seq runs across page views");
                assert_eq!(b.sid, s[0].sid);
                // Round trip through the wire format.
                let back: Batch = serde_json::from_str(&serde_json::to_string(b).unwrap()).unwrap();
                assert_eq!(&back, b);
            }
            let pages: std::collections::BTreeSet<&str> =
                s.iter().map(|b| b.pvid.as_str()).collect();
            assert!((1..=MAX_PAGE_VIEWS as usize).contains(&pages.len()));
            assert!(matches!(s[0].events[0], Event::Meta(_)));
        }
    }

    #[test]
    fn snapshots_have_a_few_hundred_nodes() {
        fn count(n: &Node) -> usize {
            1 + n.c.iter().map(count).sum::<usize>()
        }
        let s = sessions(20, 3);
        let sizes: Vec<usize> = s
            .iter()
            .flatten()
            .flat_map(|b| &b.events)
            .filter_map(|e| match e {
                Event::Snap(sn) => Some(count(&sn.node)),
                _ => None,
            })
            .collect();
        assert!(sizes.iter().all(|&n| (60..=700).contains(&n)), "{sizes:?}");
        assert!(sizes.iter().any(|&n| n >= 200), "{sizes:?}");
    }

    #[test]
    fn the_mix_has_every_ingredient() {
        let goals =
            vec![crate::cook::parse_goal("element:[data-testid=order-confirmation]").unwrap()];
        let cooked: Vec<_> = sessions(400, 7)
            .iter()
            .map(|b| crate::cook::cook_session(&b[0].sid, b, &goals))
            .collect();
        let conv = cooked.iter().filter(|c| c.converted).count() as f64 / 400.0;
        assert!((0.05..0.5).contains(&conv), "conversion {conv}");
        use crate::cook::SignalKind::*;
        for kind in [
            RageClick,
            DeadClick,
            ErrorClick,
            JsError,
            FailedRequest,
            RepeatedRequest,
        ] {
            let n = cooked
                .iter()
                .flat_map(|c| &c.signals)
                .filter(|s| s.kind == kind)
                .count();
            assert!(n > 0, "no {kind:?} in 400 sessions");
        }
    }
}
