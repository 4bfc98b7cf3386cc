//! [`PostgresStore`](super::PostgresStore)'s deletions and project claims: forgetting a
//! user, pruning old sessions, and which project owns a session. The same semantics as
//! SQLite's (`sqlite/admin.rs`).
//!
//! Every deleting transaction takes the session locks of what it deletes first (the
//! writers' locks, in the same ascending order), so a delete never interleaves with a put
//! into the same session. Finding a user's sessions reads outside any transaction.
//!
//! After forgetting, `VACUUM` removes the dead rows and their index entries, so the space
//! is reused and the rows are no longer reachable. PostgreSQL has no `secure_delete`:
//! until that space is overwritten, and until the server recycles its WAL segments, old
//! bytes can still be found in the server's files by someone who reads them raw.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::lock_key;
use crate::event::Event;
use crate::store::{identifies, ForgetReport, SessionSummary, StoreError};

/// Sessions deleted per transaction when pruning, so writers never wait long.
const PRUNE_CHUNK: i64 = 256;

pub(super) async fn forget_user(
    client: &mut Client,
    user: &str,
    project: Option<&str>,
) -> Result<ForgetReport, StoreError> {
    // The user as it appears inside the stored JSON text (events are written with
    // serde_json), to skip batches that cannot mention them.
    let quoted = serde_json::to_string(user).map_err(|e| StoreError::Invalid {
        sid: String::new(),
        seq: 0,
        reason: e.to_string(),
    })?;
    let needle = &quoted[1..quoted.len() - 1];
    let mut sids = BTreeSet::new();
    let rows = client
        .query(
            "SELECT session_id, seq, events FROM batches
             WHERE strpos(events, 'identify') > 0 AND strpos(events, $1) > 0",
            &[&needle],
        )
        .await?;
    for row in &rows {
        let sid: String = row.get(0);
        if sids.contains(&sid) {
            continue;
        }
        let seq: i64 = row.get(1);
        let events: Vec<Event> =
            crate::event::from_json(row.get(2)).map_err(|e| StoreError::Corrupt {
                sid: sid.clone(),
                seq,
                reason: e.to_string(),
            })?;
        if identifies(&events, user) {
            sids.insert(sid);
        }
    }
    drop(rows);
    for row in client
        .query("SELECT id FROM sessions WHERE user_name = $1", &[&user])
        .await?
    {
        sids.insert(row.get(0));
    }
    if sids.is_empty() {
        return Ok(ForgetReport::default());
    }
    let sids: Vec<String> = sids.into_iter().collect();

    let tx = client.transaction().await?;
    lock_sessions(&tx, &sids).await?;
    let sids = match project {
        Some(project) => tx
            .query(
                "SELECT session_id FROM session_projects
                 WHERE session_id = ANY($1) AND project = $2",
                &[&sids, &project],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        None => sids,
    };
    let report = delete_sessions(&tx, &sids).await?;
    tx.commit().await?;
    if report.sessions > 0 {
        // Not in a transaction: VACUUM cannot run inside one.
        client
            .batch_execute("VACUUM batches, page_views, sessions, session_projects")
            .await?;
    }
    Ok(report)
}

pub(super) async fn prune_sessions(
    client: &mut Client,
    received_before_ms: i64,
) -> Result<ForgetReport, StoreError> {
    let mut report = ForgetReport::default();
    loop {
        let candidates: Vec<String> = client
            .query(
                "SELECT id FROM sessions WHERE received_at < $1 ORDER BY id LIMIT $2",
                &[&received_before_ms, &PRUNE_CHUNK],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if candidates.is_empty() {
            break;
        }
        let tx = client.transaction().await?;
        lock_sessions(&tx, &candidates).await?;
        // A batch may have arrived since: check the age again under the locks.
        let sids: Vec<String> = tx
            .query(
                "SELECT id FROM sessions WHERE id = ANY($1) AND received_at < $2",
                &[&candidates, &received_before_ms],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        report.add(delete_sessions(&tx, &sids).await?);
        tx.commit().await?;
    }
    Ok(report)
}

/// Takes the writers' session locks for `sids`, in ascending key order.
async fn lock_sessions(
    tx: &tokio_postgres::Transaction<'_>,
    sids: &[String],
) -> Result<(), StoreError> {
    let mut keys: Vec<i64> = sids.iter().map(|s| lock_key(s)).collect();
    keys.sort_unstable();
    keys.dedup();
    tx.execute(super::LOCK_SQL, &[&keys]).await?;
    Ok(())
}

/// Deletes sessions: batches, page views, summaries and claims.
async fn delete_sessions(
    tx: &tokio_postgres::Transaction<'_>,
    sids: &[String],
) -> Result<ForgetReport, StoreError> {
    if sids.is_empty() {
        return Ok(ForgetReport::default());
    }
    let mut deleted: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for row in tx
        .query(
            "DELETE FROM batches WHERE session_id = ANY($1) RETURNING session_id, n_events",
            &[&sids],
        )
        .await?
    {
        let entry = deleted.entry(row.get(0)).or_default();
        entry.0 += 1;
        entry.1 += super::count(row.get(1));
    }
    tx.execute(
        "DELETE FROM page_views WHERE session_id = ANY($1)",
        &[&sids],
    )
    .await?;
    for row in tx
        .query(
            "DELETE FROM sessions WHERE id = ANY($1) RETURNING id",
            &[&sids],
        )
        .await?
    {
        deleted.entry(row.get(0)).or_default();
    }
    tx.execute(
        "DELETE FROM session_projects WHERE session_id = ANY($1)",
        &[&sids],
    )
    .await?;
    Ok(ForgetReport {
        sessions: deleted.len() as u64,
        batches: deleted.values().map(|d| d.0).sum(),
        events: deleted.values().map(|d| d.1).sum(),
    })
}

pub(super) async fn owner(client: &Client, sid: &str) -> Result<Option<String>, StoreError> {
    Ok(client
        .query_opt(
            "SELECT project FROM session_projects WHERE session_id = $1",
            &[&sid],
        )
        .await?
        .map(|r| r.get(0)))
}

pub(super) async fn list_project_sessions(
    client: &Client,
    project: &str,
) -> Result<Vec<SessionSummary>, StoreError> {
    let rows = client
        .query(
            "SELECT s.id, s.started_at, s.ended_at, s.batches, s.events, s.pages,
                    s.first_url, s.user_name
             FROM sessions s JOIN session_projects p ON p.session_id = s.id
             WHERE p.project = $1 ORDER BY s.started_at, s.id",
            &[&project],
        )
        .await?;
    Ok(rows.iter().map(super::summary).collect())
}
