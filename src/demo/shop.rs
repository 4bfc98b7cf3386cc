//! The demo shop, "Understudy Outfitters", served on loopback in several builds.
//!
//! One small server-rendered shop: a catalog, product pages, a cart, a checkout form, a
//! payment API and a confirmation page. Every build serves the same routes:
//!
//! | method | path | what |
//! |---|---|---|
//! | `GET` | `/` | catalog ([`PRODUCTS`]) |
//! | `GET` | `/product/{id}` | product page with "Add to cart" |
//! | `GET` | `/cart` | the cart, with "Remove" buttons and "Checkout" |
//! | `GET` | `/checkout` | form: name, e-mail, card number, "Pay" |
//! | `GET` | `/confirm` | the goal page: `<h1 data-testid="order-confirmation">` |
//! | `GET`/`POST` | `/api/cart` | the cart as JSON; `{"add":id}` or `{"remove":id}` |
//! | `POST` | `/api/pay` | `{name,email,card}` → `{"ok":true,"order":n}` |
//! | `GET` | `/static/…` | the stylesheet and `shop.js` |
//!
//! The cart lives on the server, keyed by a `cart` cookie the shop sets on first contact,
//! so every browser context (every user) has its own. Main controls carry `data-testid`s
//! (`product-<id>`, `add-to-cart`, `cart-link`, `checkout`, `field-name`, `pay`,
//! `nav-home`, …) that every build keeps.
//!
//! When a collector URL is given, every page loads `<collector>/capture.js`, so people using
//! the shop are recorded the real way. Serve builds *without* one for simulation, where the
//! simulator injects the same script itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;

const LAYOUT: &str = include_str!("shop/layout.html");
const CSS_BASELINE: &str = include_str!("shop/shop.css");
const CSS_REFACTOR: &str = include_str!("shop/shop-refactor.css");
const SHOP_JS: &str = include_str!("shop/shop.js");

/// How long `slow-payment`'s `/api/pay` takes, at least; up to [`SLOW_PAY_JITTER`] more.
pub const SLOW_PAY_BASE: Duration = Duration::from_millis(3000);
/// Extra delay on top of [`SLOW_PAY_BASE`], spread evenly over orders.
pub const SLOW_PAY_JITTER: Duration = Duration::from_millis(1000);
/// Share of `flaky-checkout` checkout page loads on which "Pay" does nothing.
pub const FLAKY_PAY_RATE: f64 = 0.5;

/// One build of the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Build {
    /// The shop as deployed.
    Baseline,
    /// Harmless: renamed classes, reordered markup, a new stylesheet. Same test ids and
    /// behaviour.
    Refactor,
    /// Regression: on about half the checkout page loads the "Pay" button does nothing.
    FlakyCheckout,
    /// Regression: the payment API answers after 3–4 s (the page shows a spinner).
    SlowPayment,
    /// Regression: the cart link moved into a collapsed hamburger menu.
    MovedCart,
}

impl Build {
    /// Every build, baseline first.
    pub const ALL: [Build; 5] = [
        Build::Baseline,
        Build::Refactor,
        Build::FlakyCheckout,
        Build::SlowPayment,
        Build::MovedCart,
    ];

    /// Every build but the baseline.
    pub const CANDIDATES: [Build; 4] = [
        Build::Refactor,
        Build::FlakyCheckout,
        Build::SlowPayment,
        Build::MovedCart,
    ];

    /// The build's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Build::Baseline => "baseline",
            Build::Refactor => "refactor",
            Build::FlakyCheckout => "flaky-checkout",
            Build::SlowPayment => "slow-payment",
            Build::MovedCart => "moved-cart",
        }
    }

    /// The build named `name` ([`Build::name`]).
    pub fn from_name(name: &str) -> Option<Build> {
        Build::ALL.into_iter().find(|b| b.name() == name)
    }

    /// One sentence on what the build changes.
    pub fn description(self) -> &'static str {
        match self {
            Build::Baseline => "the shop as deployed",
            Build::Refactor => {
                "cosmetic refactor: renamed CSS classes, reordered markup, new stylesheet; \
                 same test ids and behaviour"
            }
            Build::FlakyCheckout => {
                "on about half the checkout page loads the Pay button silently does nothing"
            }
            Build::SlowPayment => "the payment API answers after 3-4 s behind a spinner",
            Build::MovedCart => "the cart link moved into a collapsed hamburger menu",
        }
    }

    /// Whether the build should fail a gate.
    pub fn is_regression(self) -> bool {
        !matches!(self, Build::Baseline | Build::Refactor)
    }

    fn skin(self) -> &'static Skin {
        if self == Build::Refactor {
            &REFACTOR_SKIN
        } else {
            &BASELINE_SKIN
        }
    }
}

impl std::fmt::Display for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Build {
    type Err = String;
    fn from_str(s: &str) -> Result<Build, String> {
        Build::from_name(s).ok_or_else(|| {
            let names: Vec<_> = Build::ALL.iter().map(|b| b.name()).collect();
            format!("unknown build `{s}` (expected one of {})", names.join(", "))
        })
    }
}

/// One thing the shop sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    pub id: u32,
    pub name: &'static str,
    pub price_cents: u32,
    /// Background of the (CSS-only) product picture.
    pub color: &'static str,
    pub blurb: &'static str,
}

/// The catalog, ids 1 to 10.
pub const PRODUCTS: &[Product] = &[
    Product {
        id: 1,
        name: "Canvas Tote",
        price_cents: 2400,
        color: "#e07a5f",
        blurb: "A sturdy bag for groceries and scripts.",
    },
    Product {
        id: 2,
        name: "Wool Beanie",
        price_cents: 1900,
        color: "#3d405b",
        blurb: "Warm ears for cold dress rehearsals.",
    },
    Product {
        id: 3,
        name: "Travel Mug",
        price_cents: 2200,
        color: "#81b29a",
        blurb: "Keeps coffee hot through a long second act.",
    },
    Product {
        id: 4,
        name: "Linen Shirt",
        price_cents: 5400,
        color: "#f2cc8f",
        blurb: "Light, breathable, stage-ready.",
    },
    Product {
        id: 5,
        name: "Leather Notebook",
        price_cents: 3100,
        color: "#8d5a3b",
        blurb: "For lines, cues and notes.",
    },
    Product {
        id: 6,
        name: "Rain Jacket",
        price_cents: 8900,
        color: "#457b9d",
        blurb: "Packable and waterproof.",
    },
    Product {
        id: 7,
        name: "Desk Lamp",
        price_cents: 4600,
        color: "#ffb703",
        blurb: "A warm spotlight for your desk.",
    },
    Product {
        id: 8,
        name: "Cotton Socks (3 pairs)",
        price_cents: 1500,
        color: "#a8dadc",
        blurb: "Soft, quiet footsteps backstage.",
    },
    Product {
        id: 9,
        name: "Headphones",
        price_cents: 12900,
        color: "#264653",
        blurb: "Closed-back, for learning your part.",
    },
    Product {
        id: 10,
        name: "Water Bottle",
        price_cents: 1800,
        color: "#2a9d8f",
        blurb: "Steel, one litre, no leaks.",
    },
];

/// The product with this id.
pub fn product(id: u32) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.id == id)
}

/// Class names of one build's markup. Behaviour never depends on them.
struct Skin {
    css: &'static str,
    body: &'static str,
    page: &'static str,
    footer: &'static str,
    header: &'static str,
    brand: &'static str,
    nav: &'static str,
    badge: &'static str,
    title: &'static str,
    grid: &'static str,
    card: &'static str,
    thumb: &'static str,
    card_title: &'static str,
    price: &'static str,
    detail: &'static str,
    detail_thumb: &'static str,
    button: &'static str,
    cta: &'static str,
    note: &'static str,
    lines: &'static str,
    line: &'static str,
    total: &'static str,
    form: &'static str,
    row: &'static str,
    error: &'static str,
    spinner: &'static str,
    thanks: &'static str,
    /// Refactored markup puts things in a different source order.
    reordered: bool,
}

static BASELINE_SKIN: Skin = Skin {
    css: "shop.css",
    body: "shop",
    page: "page",
    footer: "site-footer",
    header: "site-header",
    brand: "logo",
    nav: "nav",
    badge: "badge",
    title: "page-title",
    grid: "grid",
    card: "card",
    thumb: "thumb",
    card_title: "card-title",
    price: "price",
    detail: "product",
    detail_thumb: "thumb large",
    button: "btn",
    cta: "btn btn-primary",
    note: "note",
    lines: "cart-items",
    line: "cart-item",
    total: "total",
    form: "form",
    row: "field",
    error: "error",
    spinner: "spinner",
    thanks: "confirm",
    reordered: false,
};

static REFACTOR_SKIN: Skin = Skin {
    css: "shop-v2.css",
    body: "t-outfitters",
    page: "l-page",
    footer: "c-footer",
    header: "c-header",
    brand: "c-header__brand",
    nav: "c-nav",
    badge: "c-pill",
    title: "c-title",
    grid: "l-products",
    card: "c-tile",
    thumb: "c-tile__media",
    card_title: "c-tile__name",
    price: "c-tile__price",
    detail: "c-pdp",
    detail_thumb: "c-pdp__media",
    button: "o-button",
    cta: "o-button o-button--cta",
    note: "c-flash",
    lines: "c-basket",
    line: "c-basket__row",
    total: "c-basket__sum",
    form: "c-form",
    row: "c-form__row",
    error: "c-alert",
    spinner: "c-loader",
    thanks: "c-thanks",
    reordered: true,
};

type Cart = BTreeMap<u32, u32>;

struct Shop {
    build: Build,
    collector: Option<String>,
    carts: Mutex<HashMap<String, Cart>>,
    orders: AtomicU64,
}

/// Carts kept at most; the oldest are not tracked, so past this all carts are dropped.
const MAX_CARTS: usize = 100_000;

/// A running build of the shop on loopback. Stops when dropped.
pub struct ShopServer {
    build: Build,
    addr: SocketAddr,
    shop: Arc<Shop>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ShopServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn build(&self) -> Build {
        self.build
    }

    /// Orders paid so far.
    pub fn orders(&self) -> u64 {
        self.shop.orders.load(Ordering::Relaxed)
    }
}

impl Drop for ShopServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

/// Serves `build` on `127.0.0.1:0`. With `collector_url` (e.g. `http://127.0.0.1:4318`),
/// every page loads `<collector_url>/capture.js`.
pub async fn serve_build(build: Build, collector_url: Option<String>) -> Result<ShopServer> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the demo shop to 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let shop = Arc::new(Shop {
        build,
        collector: collector_url.map(|u| u.trim_end_matches('/').to_string()),
        carts: Mutex::new(HashMap::new()),
        orders: AtomicU64::new(0),
    });
    let app = router(shop.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, build = build.name(), "demo shop stopped");
        }
    });
    Ok(ShopServer {
        build,
        addr,
        shop,
        shutdown: Some(tx),
        task,
    })
}

/// Serves each of `builds` on its own port, in order.
pub async fn serve_all(builds: &[Build], collector_url: Option<String>) -> Result<Vec<ShopServer>> {
    let mut out = Vec::with_capacity(builds.len());
    for &b in builds {
        out.push(serve_build(b, collector_url.clone()).await?);
    }
    Ok(out)
}

/// The shop's routes for one build.
fn router(shop: Arc<Shop>) -> Router {
    Router::new()
        .route("/", get(catalog))
        .route("/product/{id}", get(product_page))
        .route("/cart", get(cart_page))
        .route("/checkout", get(checkout_page))
        .route("/confirm", get(confirm_page))
        .route("/api/cart", get(cart_get).post(cart_post))
        .route("/api/pay", axum::routing::post(pay))
        .route("/static/{file}", get(asset))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .with_state(shop)
}

// ---------- cart identity ----------

/// The `cart` cookie, if present and well-formed.
fn cart_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix("cart="))
        .find(|v| !v.is_empty() && v.len() <= 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
}

/// The caller's cart id, and a `Set-Cookie` value when it is new.
fn identify(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cart_cookie(headers) {
        Some(id) => (id, None),
        None => {
            let id = format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            );
            let cookie = format!("cart={id}; Path=/; HttpOnly; SameSite=Lax");
            let value = HeaderValue::from_str(&cookie).ok();
            (id, value)
        }
    }
}

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

impl Shop {
    fn cart(&self, id: &str) -> Cart {
        self.carts
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Cart)) -> Cart {
        let mut carts = self.carts.lock().unwrap();
        if carts.len() >= MAX_CARTS && !carts.contains_key(id) {
            carts.clear();
        }
        let cart = carts.entry(id.to_string()).or_default();
        f(cart);
        let out = cart.clone();
        if cart.is_empty() {
            carts.remove(id);
        }
        out
    }
}

fn count(cart: &Cart) -> u32 {
    cart.values().sum()
}

fn total_cents(cart: &Cart) -> u32 {
    cart.iter()
        .filter_map(|(id, qty)| product(*id).map(|p| p.price_cents * qty))
        .sum()
}

fn money(cents: u32) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn cart_json(cart: &Cart) -> serde_json::Value {
    let items: Vec<_> = cart
        .iter()
        .filter_map(|(id, qty)| {
            product(*id).map(|p| {
                serde_json::json!({"id": p.id, "name": p.name, "qty": qty, "price_cents": p.price_cents})
            })
        })
        .collect();
    serde_json::json!({"items": items, "count": count(cart), "total_cents": total_cents(cart)})
}

// ---------- pages ----------

/// Renders a whole page around `main`.
fn page(shop: &Shop, title: &str, cart: &Cart, main: &str) -> String {
    let skin = shop.build.skin();
    let capture = match &shop.collector {
        Some(c) => format!("<script src=\"{c}/capture.js\"></script>\n"),
        None => String::new(),
    };
    let flake = if shop.build == Build::FlakyCheckout {
        FLAKY_PAY_RATE
    } else {
        0.0
    };
    let config = serde_json::json!({"build": shop.build.name(), "payFlake": flake});
    LAYOUT
        .replace("{{TITLE}}", title)
        .replace("{{CSS}}", skin.css)
        .replace("{{CAPTURE}}", &capture)
        .replace("{{CONFIG}}", &config.to_string())
        .replace("{{BODY_CLASS}}", skin.body)
        .replace("{{MAIN_CLASS}}", skin.page)
        .replace("{{FOOTER_CLASS}}", skin.footer)
        .replace("{{HEADER}}", &header_html(shop.build, count(cart)))
        .replace("{{MAIN}}", main)
}

fn header_html(build: Build, items: u32) -> String {
    let s = build.skin();
    let brand = format!(
        r#"<a class="{}" data-testid="nav-home" href="/">Understudy Outfitters</a>"#,
        s.brand
    );
    let cart = format!(
        r#"<a class="cart-link" data-testid="cart-link" href="/cart">Cart <span class="{}" data-testid="cart-count">{items}</span></a>"#,
        s.badge
    );
    match build {
        Build::MovedCart => format!(
            r#"<header class="{h}" data-understudy-unmask>{brand}<button class="menu-toggle" data-testid="menu-toggle" type="button" aria-expanded="false" aria-controls="menu" aria-label="Menu">&#9776;</button><nav id="menu" class="{n} menu" data-testid="menu" hidden><a href="/">All products</a>{cart}</nav></header>"#,
            h = s.header,
            n = s.nav
        ),
        _ if s.reordered => format!(
            r#"<header class="{h}" data-understudy-unmask><nav class="{n}">{cart}</nav>{brand}</header>"#,
            h = s.header,
            n = s.nav
        ),
        _ => format!(
            r#"<header class="{h}" data-understudy-unmask>{brand}<nav class="{n}"><a href="/">All products</a>{cart}</nav></header>"#,
            h = s.header,
            n = s.nav
        ),
    }
}

fn html(body: String, cookie: Option<HeaderValue>) -> Response {
    let resp = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    with_cookie(resp, cookie)
}

async fn catalog(State(shop): State<Arc<Shop>>, headers: HeaderMap) -> Response {
    let (id, cookie) = identify(&headers);
    let cart = shop.cart(&id);
    let s = shop.build.skin();
    let mut main = format!(
        r#"<h1 class="{}" data-understudy-unmask>All products</h1><ul class="{}" data-testid="catalog" data-understudy-unmask>"#,
        s.title, s.grid
    );
    for p in PRODUCTS {
        let thumb = format!(
            r#"<div class="{}" data-testid="product-image-{id}" role="img" aria-label="{name}" style="background:{color}"></div>"#,
            s.thumb,
            id = p.id,
            name = p.name,
            color = p.color
        );
        let title = format!(
            r#"<a class="{}" data-testid="product-{id}" href="/product/{id}">{name}</a>"#,
            s.card_title,
            id = p.id,
            name = p.name
        );
        let price = format!(
            r#"<span class="{}">{}</span>"#,
            s.price,
            money(p.price_cents)
        );
        if s.reordered {
            let _ = write!(
                main,
                r#"<li class="{}" data-testid="card-{}">{title}{price}{thumb}</li>"#,
                s.card, p.id
            );
        } else {
            let _ = write!(
                main,
                r#"<li class="{}" data-testid="card-{}">{thumb}{title}{price}</li>"#,
                s.card, p.id
            );
        }
    }
    main.push_str("</ul>");
    html(page(&shop, "All products", &cart, &main), cookie)
}

async fn product_page(
    State(shop): State<Arc<Shop>>,
    Path(pid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(p) = pid.parse::<u32>().ok().and_then(product) else {
        return not_found().await;
    };
    let (id, cookie) = identify(&headers);
    let cart = shop.cart(&id);
    let s = shop.build.skin();
    let media = format!(
        r#"<div class="{}" role="img" aria-label="{}" style="background:{}"></div>"#,
        s.detail_thumb, p.name, p.color
    );
    let buy = format!(
        r#"<button class="{}" data-testid="add-to-cart" data-product="{}" type="button">Add to cart</button><p class="{}" data-testid="added" role="status" hidden>Added to your cart.</p>"#,
        s.cta, p.id, s.note
    );
    let info = if s.reordered {
        format!(
            r#"<div><h1 class="{}" data-testid="product-title">{}</h1>{buy}<p class="{}">{}</p><p>{}</p></div>"#,
            s.title,
            p.name,
            s.price,
            money(p.price_cents),
            p.blurb
        )
    } else {
        format!(
            r#"<div><h1 class="{}" data-testid="product-title">{}</h1><p class="{}">{}</p><p>{}</p>{buy}</div>"#,
            s.title,
            p.name,
            s.price,
            money(p.price_cents),
            p.blurb
        )
    };
    let main = format!(
        r#"<div class="{}" data-understudy-unmask>{media}{info}</div><p><a data-testid="continue-shopping" href="/">&larr; Continue shopping</a></p>"#,
        s.detail
    );
    html(page(&shop, p.name, &cart, &main), cookie)
}

async fn cart_page(State(shop): State<Arc<Shop>>, headers: HeaderMap) -> Response {
    let (id, cookie) = identify(&headers);
    let cart = shop.cart(&id);
    let s = shop.build.skin();
    let mut main = format!(
        r#"<h1 class="{}">Your cart</h1><ul class="{}" data-testid="cart-items" data-understudy-unmask>"#,
        s.title, s.lines
    );
    for (pid, qty) in &cart {
        let Some(p) = product(*pid) else { continue };
        let _ = write!(
            main,
            r#"<li class="{}" data-testid="cart-item-{id}"><span>{name} &times; {qty}</span><span>{sub}</span><button class="{b}" data-testid="remove-{id}" data-product="{id}" type="button">Remove</button></li>"#,
            s.line,
            id = p.id,
            name = p.name,
            sub = money(p.price_cents * qty),
            b = s.button
        );
    }
    main.push_str("</ul>");
    let empty = cart.is_empty();
    let _ = write!(
        main,
        r#"<p data-testid="cart-empty"{}>Your cart is empty.</p><p class="{}" data-understudy-unmask>Total <span data-testid="cart-total">{}</span></p><p><a class="{}" data-testid="checkout" href="/checkout"{}>Checkout</a> <a data-testid="continue-shopping" href="/">Continue shopping</a></p>"#,
        if empty { "" } else { " hidden" },
        s.total,
        money(total_cents(&cart)),
        s.cta,
        if empty { " hidden" } else { "" },
    );
    html(page(&shop, "Cart", &cart, &main), cookie)
}

async fn checkout_page(State(shop): State<Arc<Shop>>, headers: HeaderMap) -> Response {
    let (id, cookie) = identify(&headers);
    let cart = shop.cart(&id);
    let s = shop.build.skin();
    let field = |name: &str, label: &str, extra: &str| {
        format!(
            r#"<div class="{}"><label for="{name}" data-understudy-unmask>{label}</label><input id="{name}" name="{name}" data-testid="field-{name}" {extra}></div>"#,
            s.row
        )
    };
    let fields = [
        field("name", "Full name", r#"type="text" autocomplete="name""#),
        field("email", "E-mail", r#"type="email" autocomplete="email""#),
        field(
            "card",
            "Card number",
            r#"type="text" inputmode="numeric" autocomplete="cc-number""#,
        ),
    ]
    .concat();
    let summary = format!(
        r#"<p class="{}" data-understudy-unmask>{} item(s), total <span data-testid="checkout-total">{}</span></p>"#,
        s.total,
        count(&cart),
        money(total_cents(&cart))
    );
    let form = format!(
        r#"<form id="checkout-form" class="{}" data-testid="checkout-form" novalidate>{fields}<p class="{}" data-testid="form-error" role="alert" hidden></p><button class="{}" data-testid="pay" type="submit">Pay {}</button><div class="{}" data-testid="paying" role="status" hidden data-understudy-unmask>Processing payment&hellip;</div></form>"#,
        s.form,
        s.error,
        s.cta,
        money(total_cents(&cart)),
        s.spinner
    );
    let main = if s.reordered {
        format!(r#"<h1 class="{}">Checkout</h1>{form}{summary}"#, s.title)
    } else {
        format!(r#"<h1 class="{}">Checkout</h1>{summary}{form}"#, s.title)
    };
    html(page(&shop, "Checkout", &cart, &main), cookie)
}

async fn confirm_page(State(shop): State<Arc<Shop>>, headers: HeaderMap) -> Response {
    let (id, cookie) = identify(&headers);
    let cart = shop.cart(&id);
    let s = shop.build.skin();
    let main = format!(
        r#"<section class="{}" data-understudy-unmask><h1 data-testid="order-confirmation">Thank you for your order!</h1><p>A receipt is on its way.</p><p><a data-testid="continue-shopping" href="/">Continue shopping</a></p></section>"#,
        s.thanks
    );
    html(page(&shop, "Order confirmed", &cart, &main), cookie)
}

async fn asset(State(shop): State<Arc<Shop>>, Path(file): Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "shop.css" if shop.build != Build::Refactor => (CSS_BASELINE, "text/css; charset=utf-8"),
        "shop-v2.css" if shop.build == Build::Refactor => (CSS_REFACTOR, "text/css; charset=utf-8"),
        "shop.js" => (SHOP_JS, "application/javascript; charset=utf-8"),
        _ => return not_found().await,
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        r#"<!doctype html><title>Not found</title><h1>Not found</h1><p><a data-testid="nav-home" href="/">Back to the shop</a></p>"#,
    )
        .into_response()
}

// ---------- API ----------

fn api_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

async fn cart_get(State(shop): State<Arc<Shop>>, headers: HeaderMap) -> Response {
    let (id, cookie) = identify(&headers);
    with_cookie(Json(cart_json(&shop.cart(&id))).into_response(), cookie)
}

#[derive(Debug, Deserialize)]
struct CartChange {
    #[serde(default)]
    add: Option<u32>,
    #[serde(default)]
    remove: Option<u32>,
}

async fn cart_post(
    State(shop): State<Arc<Shop>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (id, cookie) = identify(&headers);
    let Ok(change) = serde_json::from_slice::<CartChange>(&body) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected {\"add\":id} or {\"remove\":id}",
        );
    };
    if change.add.or(change.remove).and_then(product).is_none() {
        return api_error(StatusCode::BAD_REQUEST, "unknown product");
    }
    let cart = shop.update(&id, |cart| {
        if let Some(p) = change.add {
            *cart.entry(p).or_insert(0) += 1;
        }
        if let Some(p) = change.remove {
            cart.remove(&p);
        }
    });
    with_cookie(Json(cart_json(&cart)).into_response(), cookie)
}

#[derive(Debug, Deserialize)]
struct Payment {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    card: String,
}

async fn pay(
    State(shop): State<Arc<Shop>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(id) = cart_cookie(&headers) else {
        return api_error(StatusCode::CONFLICT, "your cart is empty");
    };
    let Ok(p) = serde_json::from_slice::<Payment>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, "expected {name, email, card}");
    };
    let digits = p
        .card
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .count();
    let card_ok = (12..=19).contains(&digits)
        && p.card
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
    if p.name.trim().is_empty() || !p.email.contains('@') || !card_ok {
        return api_error(StatusCode::BAD_REQUEST, "the payment details are invalid");
    }
    if shop.build == Build::SlowPayment {
        // Spread evenly over the jitter range, by order of arrival.
        let n = shop.orders.load(Ordering::Relaxed);
        let extra = SLOW_PAY_JITTER.as_millis() as u64 * ((n * 37) % 100) / 100;
        tokio::time::sleep(SLOW_PAY_BASE + Duration::from_millis(extra)).await;
    }
    let mut paid = false;
    shop.update(&id, |cart| {
        paid = !cart.is_empty();
        cart.clear();
    });
    if !paid {
        return api_error(StatusCode::CONFLICT, "your cart is empty");
    }
    let order = 1000 + shop.orders.fetch_add(1, Ordering::Relaxed) + 1;
    Json(serde_json::json!({ "ok": true, "order": order })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_names_round_trip() {
        for b in Build::ALL {
            assert_eq!(Build::from_name(b.name()), Some(b));
            assert_eq!(b.name().parse::<Build>().unwrap(), b);
        }
        assert!(!Build::Baseline.is_regression());
        assert!(!Build::Refactor.is_regression());
        assert!(Build::FlakyCheckout.is_regression());
        assert!("nope".parse::<Build>().is_err());
    }

    #[test]
    fn cookie_parsing_is_strict() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cart=00ff; b=2"),
        );
        assert_eq!(cart_cookie(&h).as_deref(), Some("00ff"));
        h.insert(header::COOKIE, HeaderValue::from_static("cart=<script>"));
        assert_eq!(cart_cookie(&h), None);
    }

    #[test]
    fn layout_has_every_placeholder_filled() {
        for b in Build::ALL {
            let shop = Shop {
                build: b,
                collector: Some("http://127.0.0.1:9".into()),
                carts: Mutex::new(HashMap::new()),
                orders: AtomicU64::new(0),
            };
            let cart: Cart = [(1, 2)].into_iter().collect();
            let html = page(&shop, "T", &cart, "<p>x</p>");
            assert!(!html.contains("{{"), "{b}: {html}");
            assert!(html.contains(r#"<script src="http://127.0.0.1:9/capture.js"></script>"#));
            assert!(html.contains(r#"data-testid="cart-link""#));
            assert!(html.contains(r#"data-testid="nav-home""#));
        }
    }
}
