//! A fresh PostgreSQL schema per test, on the server `UNDERSTUDY_TEST_POSTGRES` names.
//!
//! Each [`TestDb`] creates its own schema and hands out a URL whose `search_path` is that
//! schema, so tests run in parallel on one server without seeing each other's tables. The
//! schema is dropped when the `TestDb` is.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable that names the test server.
pub const ENV: &str = "UNDERSTUDY_TEST_POSTGRES";

/// The test server's URL. Panics, saying how to start one, when it is not set: the
/// PostgreSQL tests never skip silently.
pub fn server_url() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{ENV} is not set, so the PostgreSQL tests have no server. Start a throwaway one \
             with `eval \"$(scripts/test-postgres)\"` and run the tests again, or run the \
             whole suite with `scripts/test`, which does both."
        ),
    }
}

/// A schema of its own on the test server.
pub struct TestDb {
    server: String,
    pub schema: String,
    /// Connection URL whose `search_path` is the schema.
    pub url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let server = server_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "t_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sql(&server, &format!("CREATE SCHEMA {schema}"));
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-csearch_path%3D{schema}");
        TestDb {
            server,
            schema,
            url,
        }
    }

    /// Runs SQL statements in the schema and returns the first column of every row they
    /// return, as text.
    pub fn query(&self, statements: &str) -> Vec<Option<String>> {
        sql(&self.url, statements)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping schema {} for a look", self.schema);
            return;
        }
        sql(
            &self.server,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        );
    }
}

/// Runs `statements` (simple query protocol) on `url` on a thread of its own with its own
/// runtime, so it works from sync and async tests alike.
pub fn sql(url: &str, statements: &str) -> Vec<Option<String>> {
    let (url, statements) = (url.to_string(), statements.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to the test server {url}: {e}"));
            let conn = tokio::spawn(conn);
            let messages = client
                .simple_query(&statements)
                .await
                .unwrap_or_else(|e| panic!("{statements}: {e:?}"));
            drop(client);
            let _ = conn.await;
            let mut rows = Vec::new();
            for m in messages {
                if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                    rows.push(r.get(0).map(str::to_string));
                }
            }
            rows
        })
    })
    .join()
    .unwrap()
}
