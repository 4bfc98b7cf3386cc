//! capture.js sends its project's ingest key: real headless Chromium, pages on three
//! loopback origins, and a collector with a projects file. The key comes from the script
//! tag's `data-key` or from `understudyConfig.key`; a page on an origin that is not on the
//! project's list, or without a key, gets nothing stored.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use common::*;
use understudy::collect::projects::ProjectsFile;
use understudy::collect::{Access, Limits, Options};
use understudy::store::{SessionStore, SqliteStore};

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Key</title>
<script>window.understudyConfig = {{CONFIG}};</script>
<script src="{{COLLECTOR}}/capture.js"{{ATTR}}></script>
</head><body><p>Hello</p></body></html>"#;

#[derive(Clone)]
struct Page {
    html: String,
}

/// Serves `html` at `/` on `listener`.
fn serve_page(listener: tokio::net::TcpListener, html: String) {
    let app = Router::new()
        .route(
            "/",
            get(|State(p): State<Page>| async move { Html(p.html) }),
        )
        .with_state(Page { html });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_js_sends_the_key_from_its_script_tag_or_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (collector_l, collector) = bind().await;
    let mut listeners = Vec::new();
    let mut sites = Vec::new();
    for _ in 0..4 {
        let (l, a) = bind().await;
        listeners.push(l);
        sites.push(a);
    }
    let origin = |a: SocketAddr| format!("http://{a}");

    // `shop` allows the first two sites' origins only.
    let projects = dir.path().join("projects.toml");
    let mut file = ProjectsFile::default();
    let key = file
        .add_project("shop", &[origin(sites[0]), origin(sites[1])], None)
        .unwrap()
        .key
        .unwrap();
    file.save(&projects).unwrap();
    assert!(
        !std::fs::read_to_string(&projects).unwrap().contains(&key),
        "the key is stored hashed"
    );
    let options = Options {
        limits: Limits::default(),
        access: Some(Arc::new(
            Access::load(&projects, Duration::from_secs(60)).unwrap(),
        )),
        admin_store: Some(Box::new(SqliteStore::open(&db).unwrap())),
        retain: None,
    };
    let store = SqliteStore::open(&db).unwrap();
    tokio::spawn(understudy::collect::serve_with(
        collector_l,
        store,
        options,
        std::future::pending(),
    ));

    // (user, extra config, script tag attributes), one per site.
    let pages = [
        (
            "via-data-key",
            String::new(),
            format!(" data-key=\"{key}\""),
        ),
        ("via-config", format!(", key: \"{key}\""), String::new()),
        (
            "wrong-origin",
            String::new(),
            format!(" data-key=\"{key}\""),
        ),
        ("no-key", String::new(), String::new()),
    ];
    for ((user, config, attr), listener) in pages.iter().zip(listeners) {
        let html = PAGE
            .replace("{{COLLECTOR}}", &format!("http://{collector}"))
            .replace("{{CONFIG}}", &format!("{{ flushMs: 200{config} }}"))
            .replace("{{ATTR}}", attr)
            // The page identifies its user as soon as it loads.
            .replace(
                "</body>",
                &format!("<script>understudy('identify', '{user}');</script></body>"),
            );
        serve_page(listener, html);
    }

    let chromium = Chromium::launch().await;
    let mut tabs = Vec::new();
    for site in &sites {
        let page = chromium.isolated_page().await;
        page.goto(format!("http://{site}/")).await.unwrap();
        tabs.push(page);
    }
    let users = || -> Vec<(String, Option<String>)> {
        let store = SqliteStore::open(&db).unwrap();
        let mut v: Vec<_> = store
            .list_sessions()
            .unwrap()
            .into_iter()
            .map(|s| {
                let owner = store.session_project(&s.id).unwrap();
                (s.user.unwrap_or_default(), owner)
            })
            .collect();
        v.sort();
        v
    };
    // Polled without blocking: the collector runs on this runtime.
    let started = std::time::Instant::now();
    let stored = loop {
        let u = users();
        if u.len() >= 2 {
            break u;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sessions not stored: {u:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        stored,
        [
            ("via-config".to_string(), Some("shop".to_string())),
            ("via-data-key".to_string(), Some("shop".to_string())),
        ]
    );
    // The other two pages had as long to send (and keep retrying): nothing of theirs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(users().len(), 2, "{:?}", users());
    for tab in tabs {
        close_tab(tab).await;
    }
    chromium.close().await;
}
