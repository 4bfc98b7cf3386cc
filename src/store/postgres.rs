//! [`PostgresStore`]: the [`SessionStore`] that several collectors can share.
//!
//! Same tables, same semantics as [`super::SqliteStore`]: `(session_id, seq)` is the
//! identity of a batch (`ON CONFLICT DO NOTHING`), reads order by `seq`, events are kept as
//! plain JSON text (stored `EXTERNAL`: never compressed, even when TOASTed), and a put
//! returns only after its transaction committed with `synchronous_commit` on, so a 2xx
//! from the collector means the batch is in the server's flushed WAL.
//!
//! The schema comes from the embedded [`MIGRATIONS`], applied in one transaction on open
//! and tracked in `schema_version`. An advisory lock serialises that transaction, so
//! collectors starting at once against an empty database do not race.
//!
//! Several collectors may write at once. Every write transaction first takes a
//! transaction-scoped advisory lock per session it touches, in ascending key order; all
//! the rows a batch touches (`batches`, `page_views`, `sessions`) belong to its session,
//! so writers to different sessions never wait for each other and writers to the same
//! sessions cannot deadlock.
//!
//! The client is `tokio-postgres`, driven from synchronous code: each connection's socket
//! is served by its own thread (a one-thread Tokio runtime), and calls block on the
//! client's channel with [`futures::executor::block_on`]. So the store works, and drops
//! cleanly, on any thread that is not itself running async tasks. A connection that
//! breaks (server restart) is replaced on the next call; the call that saw it break
//! fails, and the collector answers that batch with a 503 for the page to retry.
//! Connections are plain TCP or Unix sockets: TLS is not supported.

use std::cell::RefCell;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use futures::executor::block_on;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::spec::redact;
use super::{EncodedBatch, ForgetReport, PutOutcome, SessionStore, SessionSummary, StoreError};
use crate::event::{Batch, Event};

mod admin;

/// Schema migrations, in order: `(version, SQL)`. Never edit a released migration;
/// append a new one with the next version.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/postgres/0001_init.sql")),
    (2, include_str!("migrations/postgres/0002_projects.sql")),
];

/// The advisory lock that serialises migrations, in the two-`int4` key space (session
/// locks use the `int8` space, which does not overlap it).
const MIGRATION_LOCK: (i32, i32) = (0x756e_6473, 1);

/// How long opening a connection may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Takes the session locks of one transaction; keys sorted ascending, no repeats.
const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k";

/// Claims session `$1` for project `$2` unless a project has it, and returns its owner.
/// Run under the session's lock, so no other claim of it runs meanwhile.
const CLAIM_SQL: &str = r#"
WITH ins AS (
    INSERT INTO session_projects (session_id, project) VALUES ($1::text, $2::text)
    ON CONFLICT (session_id) DO NOTHING
    RETURNING project
)
SELECT project FROM ins
UNION ALL
SELECT project FROM session_projects WHERE session_id = $1::text
"#;

/// Inserts one batch and folds it into its page views and session summary, all in one
/// statement; returns how many batch rows were inserted (0: duplicate, 1: stored).
const PUT_SQL: &str = r#"
WITH ins AS (
    INSERT INTO batches
        (session_id, seq, v, pvid, sent, received_at, first_t, last_t, n_events, events)
    VALUES ($1::text, $2::bigint, $3::bigint, $4::text, $5::bigint, $6::bigint,
            $7::bigint, $8::bigint, $9::bigint, $10::text)
    ON CONFLICT (session_id, seq) DO NOTHING
    RETURNING session_id
), page AS (
    INSERT INTO page_views (session_id, pvid)
    SELECT session_id, $4::text FROM ins
    ON CONFLICT (session_id, pvid) DO NOTHING
    RETURNING session_id
), summary AS (
    INSERT INTO sessions AS s
        (id, started_at, ended_at, batches, events, pages,
         first_url, first_url_t, first_url_seq, user_name, user_t, user_seq, received_at)
    SELECT session_id, $7::bigint, $8::bigint, 1, $9::bigint, (SELECT count(*) FROM page),
           $11::text, $12::bigint, $2::bigint, $13::text, $14::bigint, $2::bigint, $6::bigint
    FROM ins
    ON CONFLICT (id) DO UPDATE SET
        started_at = LEAST(s.started_at, EXCLUDED.started_at),
        ended_at = GREATEST(s.ended_at, EXCLUDED.ended_at),
        batches = s.batches + 1,
        events = s.events + EXCLUDED.events,
        pages = s.pages + EXCLUDED.pages,
        first_url = CASE WHEN EXCLUDED.first_url_t IS NOT NULL AND (s.first_url_t IS NULL
                OR (EXCLUDED.first_url_t, EXCLUDED.first_url_seq) < (s.first_url_t, s.first_url_seq))
            THEN EXCLUDED.first_url ELSE s.first_url END,
        first_url_t = CASE WHEN EXCLUDED.first_url_t IS NOT NULL AND (s.first_url_t IS NULL
                OR (EXCLUDED.first_url_t, EXCLUDED.first_url_seq) < (s.first_url_t, s.first_url_seq))
            THEN EXCLUDED.first_url_t ELSE s.first_url_t END,
        first_url_seq = CASE WHEN EXCLUDED.first_url_t IS NOT NULL AND (s.first_url_t IS NULL
                OR (EXCLUDED.first_url_t, EXCLUDED.first_url_seq) < (s.first_url_t, s.first_url_seq))
            THEN EXCLUDED.first_url_seq ELSE s.first_url_seq END,
        user_name = CASE WHEN EXCLUDED.user_t IS NOT NULL AND (s.user_t IS NULL
                OR (EXCLUDED.user_t, EXCLUDED.user_seq) > (s.user_t, s.user_seq))
            THEN EXCLUDED.user_name ELSE s.user_name END,
        user_t = CASE WHEN EXCLUDED.user_t IS NOT NULL AND (s.user_t IS NULL
                OR (EXCLUDED.user_t, EXCLUDED.user_seq) > (s.user_t, s.user_seq))
            THEN EXCLUDED.user_t ELSE s.user_t END,
        user_seq = CASE WHEN EXCLUDED.user_t IS NOT NULL AND (s.user_t IS NULL
                OR (EXCLUDED.user_t, EXCLUDED.user_seq) > (s.user_t, s.user_seq))
            THEN EXCLUDED.user_seq ELSE s.user_seq END,
        received_at = GREATEST(s.received_at, EXCLUDED.received_at)
    RETURNING 1
)
SELECT count(*) FROM ins
"#;

/// Why PostgreSQL could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The server or the client library failed.
    #[error("{}", describe(.0))]
    Db(tokio_postgres::Error),
    /// The thread that serves a connection could not be started.
    #[error("cannot start the connection thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The connection thread ended before it answered.
    #[error("the connection thread stopped")]
    ThreadGone,
}

impl From<tokio_postgres::Error> for PgError {
    fn from(err: tokio_postgres::Error) -> Self {
        PgError::Db(err)
    }
}

/// One line that says what went wrong: the server's own message for errors it reported
/// (`FATAL: database "x" does not exist`), else the client's with its causes.
pub(super) fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        StoreError::Postgres(PgError::Db(err))
    }
}

/// A [`SessionStore`] in a PostgreSQL database.
pub struct PostgresStore {
    config: Config,
    /// The URL with its password hidden, for messages.
    shown: String,
    conn: RefCell<Option<Conn>>,
}

/// One open connection and its prepared statements.
struct Conn {
    client: Client,
    lock: Statement,
    claim: Statement,
    put: Statement,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.shown)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) and brings its schema up to
    /// date. Tables go into the first schema of the connection's `search_path`.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let shown = redact(url);
        let open_err = |source: PgError| StoreError::PostgresOpen {
            url: shown.clone(),
            source,
        };
        let mut config = Config::from_str(url).map_err(|e| open_err(e.into()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("understudy");
        }
        let mut client = connect(&config).map_err(open_err)?;
        block_on(migrate(&mut client)).map_err(|e| match e {
            StoreError::Postgres(source) => open_err(source),
            other => other,
        })?;
        let conn = block_on(prepare(client)).map_err(|e| open_err(e.into()))?;
        Ok(PostgresStore {
            config,
            shown,
            conn: RefCell::new(Some(conn)),
        })
    }

    /// Runs `f` on the open connection, connecting again first if the last one broke. If
    /// the connection breaks during `f`, runs `f` once more on a new one: every operation
    /// is safe to repeat (puts are idempotent by `(sid, seq)`; a repeated put whose first
    /// try did commit answers `Duplicate`, which the collector acknowledges all the same).
    fn with_conn<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.conn.borrow_mut();
        let mut retried = false;
        loop {
            if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
                *slot = None;
                tracing::info!(url = %self.shown, "connecting to PostgreSQL again");
                let client = connect(&self.config).map_err(StoreError::Postgres)?;
                *slot = Some(block_on(prepare(client))?);
            }
            let Some(conn) = slot.as_mut() else {
                unreachable!("connected above")
            };
            match f(conn) {
                Err(err) if !retried && (conn.client.is_closed() || is_closed(&err)) => {
                    tracing::warn!(error = %err, "the PostgreSQL connection broke; trying again on a new one");
                    retried = true;
                    *slot = None;
                }
                other => return other,
            }
        }
    }
}

/// Whether `err` says the connection is gone.
fn is_closed(err: &StoreError) -> bool {
    matches!(err, StoreError::Postgres(PgError::Db(e)) if e.is_closed())
}

/// Opens one connection, served by its own thread until the client is dropped.
fn connect(config: &Config) -> Result<Client, PgError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let config = config.clone();
    std::thread::Builder::new()
        .name("understudy-postgres".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(PgError::Thread(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                match config.connect(NoTls).await {
                    Ok((client, connection)) => {
                        if tx.send(Ok(client)).is_ok() {
                            if let Err(e) = connection.await {
                                tracing::warn!(error = %e, "PostgreSQL connection failed");
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(PgError::Db(e)));
                    }
                }
            });
        })
        .map_err(PgError::Thread)?;
    let client = rx.recv().map_err(|_| PgError::ThreadGone)??;
    // The store promises that a put is durable when it returns; do not inherit a
    // server-wide `synchronous_commit = off`.
    block_on(async {
        let row = client.query_one("SHOW synchronous_commit", &[]).await?;
        if row.get::<_, String>(0) == "off" {
            client.batch_execute("SET synchronous_commit = on").await?;
        }
        Ok::<_, tokio_postgres::Error>(())
    })?;
    Ok(client)
}

async fn prepare(client: Client) -> Result<Conn, tokio_postgres::Error> {
    let lock = client.prepare(LOCK_SQL).await?;
    let claim = client.prepare(CLAIM_SQL).await?;
    let put = client.prepare(PUT_SQL).await?;
    Ok(Conn {
        client,
        lock,
        claim,
        put,
    })
}

/// Applies the migrations the database has not seen yet, in one transaction, under the
/// migration lock.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let supported = MIGRATIONS.last().map_or(0, |m| i64::from(m.0));
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER     NOT NULL PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(max(version), 0)::bigint FROM schema_version",
            &[],
        )
        .await?
        .get(0);
    if found > supported {
        return Err(StoreError::NewerSchema { found, supported });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| i64::from(m.0) > found) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The advisory-lock key of a session: 64-bit FNV-1a of its id. Every collector must
/// compute the same key for the same id, whatever its build, so this is spelled out
/// rather than left to a hasher that may change.
fn lock_key(sid: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = sid
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Inserts `rows` in one transaction: session locks first, then the claims of rows put
/// for a project, then every insert pipelined, then one commit.
async fn put_rows(
    conn: &mut Conn,
    rows: &[EncodedBatch],
    received_at_ms: i64,
) -> Result<Vec<PutOutcome>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys: Vec<i64> = rows.iter().map(|r| lock_key(&r.sid)).collect();
    keys.sort_unstable();
    keys.dedup();

    let tx = conn.client.transaction().await?;
    tx.execute(&conn.lock, &[&keys]).await?;
    // Pipelined too; statements of one transaction run in the order sent, so a second
    // row of a session sees the first one's claim.
    let claims = rows.iter().map(|row| {
        let (tx, claim) = (&tx, &conn.claim);
        async move {
            match &row.project {
                Some(project) => {
                    let owner: String = tx.query_one(claim, &[&row.sid, project]).await?.get(0);
                    Ok::<_, tokio_postgres::Error>(owner == *project)
                }
                None => Ok(true),
            }
        }
    });
    let admitted = futures::future::try_join_all(claims).await?;
    // A later copy of a (sid, seq) in the same call is a duplicate of the first, whatever
    // the database says; only first copies are sent.
    let mut seen = HashSet::with_capacity(rows.len());
    let firsts: Vec<bool> = rows
        .iter()
        .zip(&admitted)
        .map(|(r, ok)| *ok && seen.insert((r.sid.as_str(), r.seq)))
        .collect();
    let puts = rows
        .iter()
        .zip(&firsts)
        .filter(|(_, first)| **first)
        .map(|(row, _)| {
            let (url_t, url) = match &row.facts.first_meta {
                Some((t, u)) => (Some(*t), Some(u.as_str())),
                None => (None, None),
            };
            let (user_t, user) = match &row.facts.last_identify {
                Some((t, u)) => (Some(*t), Some(u.as_str())),
                None => (None, None),
            };
            let n_events = row.facts.events as i64;
            let tx = &tx;
            let put = &conn.put;
            async move {
                let params: [&(dyn ToSql + Sync); 14] = [
                    &row.sid,
                    &row.seq,
                    &row.v,
                    &row.pvid,
                    &row.sent,
                    &received_at_ms,
                    &row.facts.first_t,
                    &row.facts.last_t,
                    &n_events,
                    &row.events,
                    &url,
                    &url_t,
                    &user,
                    &user_t,
                ];
                let inserted: i64 = tx.query_one(put, &params).await?.get(0);
                Ok::<_, tokio_postgres::Error>(inserted)
            }
        });
    // Polled together, the statements go out back to back on the one connection.
    let inserted = futures::future::try_join_all(puts).await?;
    tx.commit().await?;

    let mut inserted = inserted.into_iter();
    Ok(firsts
        .iter()
        .zip(&admitted)
        .map(
            |(first, ok)| match first.then(|| inserted.next()).flatten() {
                _ if !ok => PutOutcome::Foreign,
                Some(n) if n > 0 => PutOutcome::Stored,
                _ => PutOutcome::Duplicate,
            },
        )
        .collect())
}

/// A count column, which is never negative.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A `sessions` row selected as `id, started_at, ended_at, batches, events, pages,
/// first_url, user_name`.
fn summary(row: &tokio_postgres::Row) -> SessionSummary {
    SessionSummary {
        id: row.get(0),
        started_at: row.get(1),
        ended_at: row.get(2),
        batches: count(row.get(3)),
        events: count(row.get(4)),
        pages: count(row.get(5)),
        first_url: row.get(6),
        user: row.get(7),
    }
}

impl SessionStore for PostgresStore {
    fn put_encoded(
        &mut self,
        batches: &[EncodedBatch],
        received_at_ms: i64,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        self.with_conn(|conn| block_on(put_rows(conn, batches, received_at_ms)))
    }

    fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        let rows = self.with_conn(|conn| {
            Ok(block_on(conn.client.query(
                "SELECT id, started_at, ended_at, batches, events, pages, first_url, user_name
                 FROM sessions ORDER BY started_at, id",
                &[],
            ))?)
        })?;
        Ok(rows.iter().map(summary).collect())
    }

    fn session_batches(&self, sid: &str) -> Result<Vec<Batch>, StoreError> {
        let (rows, known) = self.with_conn(|conn| {
            block_on(async {
                let rows = conn
                    .client
                    .query(
                        "SELECT seq, v, pvid, sent, events FROM batches
                         WHERE session_id = $1 ORDER BY seq",
                        &[&sid],
                    )
                    .await?;
                // A session row without batches cannot exist; check anyway for a clear error.
                let known = rows.is_empty()
                    && conn
                        .client
                        .query_opt("SELECT 1 FROM sessions WHERE id = $1", &[&sid])
                        .await?
                        .is_some();
                Ok((rows, known))
            })
        })?;
        let mut batches = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.get(0);
            let corrupt = |reason: String| StoreError::Corrupt {
                sid: sid.to_string(),
                seq,
                reason,
            };
            let json: &str = row.get(4);
            let events: Vec<Event> =
                crate::event::from_json(json).map_err(|e| corrupt(e.to_string()))?;
            let v: i64 = row.get(1);
            batches.push(Batch {
                v: u32::try_from(v).map_err(|_| corrupt(format!("bad version {v}")))?,
                sid: sid.to_string(),
                pvid: row.get(2),
                seq: u64::try_from(seq).map_err(|_| corrupt("negative seq".into()))?,
                sent: row.get(3),
                events,
            });
        }
        if batches.is_empty() && !known {
            return Err(StoreError::NotFound(sid.to_string()));
        }
        Ok(batches)
    }

    fn forget_user(
        &mut self,
        user: &str,
        project: Option<&str>,
    ) -> Result<ForgetReport, StoreError> {
        self.with_conn(|conn| block_on(admin::forget_user(&mut conn.client, user, project)))
    }

    fn prune_sessions(&mut self, received_before_ms: i64) -> Result<ForgetReport, StoreError> {
        self.with_conn(|conn| block_on(admin::prune_sessions(&mut conn.client, received_before_ms)))
    }

    fn session_project(&self, sid: &str) -> Result<Option<String>, StoreError> {
        self.with_conn(|conn| block_on(admin::owner(&conn.client, sid)))
    }

    fn list_project_sessions(&self, project: &str) -> Result<Vec<SessionSummary>, StoreError> {
        self.with_conn(|conn| block_on(admin::list_project_sessions(&conn.client, project)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_fnv1a_and_stable() {
        // FNV-1a 64 of "" and "a", from the algorithm's published test vectors.
        assert_eq!(lock_key("") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(lock_key("a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_ne!(lock_key("s-1"), lock_key("s-2"));
    }

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, (version, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1);
            assert!(sql.contains("CREATE TABLE"));
        }
    }

    #[test]
    fn an_unreachable_server_is_an_open_error_without_the_password() {
        // Port 1 on loopback: nothing listens there.
        let err = PostgresStore::open("postgres://ann:s3cret@127.0.0.1:1/db?connect_timeout=5")
            .unwrap_err();
        let shown = err.to_string();
        assert!(matches!(err, StoreError::PostgresOpen { .. }), "{shown}");
        assert!(
            shown.starts_with("cannot open session database postgres://ann:***@127.0.0.1:1/db"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
