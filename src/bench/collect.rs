//! `understudy bench collect`: collector ingest over loopback HTTP, side by side with its
//! anchor, raw rusqlite inserts of the same rows.
//!
//! What it measures: a collector started in this process on `127.0.0.1:0` with a fresh
//! SQLite file receives every batch of [`synth::sessions`] exactly once, gzip'd as
//! `capture.js` sends it, over C concurrent keep-alive HTTP/1.1 connections. A batch
//! counts as accepted when its `200` arrives, which the collector sends only once the
//! batch is durable. Afterwards the store is read back to check that everything
//! acknowledged is there.
//!
//! The anchor (the ceiling) is the same batch rows, JSON already encoded, inserted with
//! plain rusqlite into the same `batches` table in one transaction with the same pragmas
//! (WAL, `synchronous=FULL`). It is what the disk and SQLite allow with no HTTP, no
//! decoding, no per-request durability and no session summaries. This file is the one
//! place outside `store` with SQL in it: an anchor must not go through the code it
//! measures.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::synth;
use crate::collect::{self, Limits, BATCHES_PATH};
use crate::event::Batch;
use crate::exit_code::bad_input;
use crate::store::{SessionStore, SqliteStore};

/// Seed of the synthetic population, fixed so runs are comparable.
const SEED: u64 = 7;
/// Longest wait for one answer before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the benchmark and prints its figures to standard output.
pub fn run(sessions: usize, connections: usize) -> anyhow::Result<()> {
    if sessions == 0 || connections == 0 {
        return Err(bad_input("--sessions and --connections must be at least 1"));
    }
    let batches: Vec<Batch> = synth::sessions(sessions, SEED)
        .into_iter()
        .flatten()
        .collect();
    if batches.is_empty() {
        anyhow::bail!("the synthetic generator produced no batches");
    }
    let requests = encode(&batches)?;
    let events: usize = batches.iter().map(|b| b.events.len()).sum();
    let json_bytes: usize = requests.iter().map(|r| r.json_len).sum();
    let wire_bytes: usize = requests.iter().map(|r| r.body.len()).sum();
    println!(
        "bench collect: {sessions} sessions, {} batches, {events} events \
         ({:.1} MiB JSON, {:.1} MiB gzip), {connections} connections, seed {SEED}",
        batches.len(),
        mib(json_bytes),
        mib(wire_bytes),
    );

    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let db = dir.path().join("collector.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(ingest(&db, requests, connections))?;

    let lat = Percentiles::of(outcome.latencies);
    let secs = outcome.elapsed.as_secs_f64();
    let collector_eps = outcome.accepted_events as f64 / secs;
    println!(
        "collector  {:>7.2} s  {:>10.0} events/s  {:>8.0} batches/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
        secs,
        collector_eps,
        outcome.accepted_batches as f64 / secs,
        ms(lat.p50),
        ms(lat.p99),
        outcome.errors,
    );
    for sample in &outcome.error_samples {
        println!("  error: {sample}");
    }

    let store = SqliteStore::open(&db)?;
    let summaries = store.list_sessions()?;
    let stored_batches: u64 = summaries.iter().map(|s| s.batches).sum();
    let stored_events: u64 = summaries.iter().map(|s| s.events).sum();
    drop(store);
    let verified = stored_events == outcome.accepted_events as u64
        && stored_batches == outcome.accepted_batches as u64;
    println!(
        "stored     {stored_batches} batches, {stored_events} events in {} sessions ({})",
        summaries.len(),
        if verified {
            "matches what was acknowledged"
        } else {
            "MISMATCH with what was acknowledged"
        }
    );

    let ceiling_db = dir.path().join("ceiling.db");
    let ceiling = ceiling(&ceiling_db, &batches)?;
    let ceiling_eps = events as f64 / ceiling.as_secs_f64();
    println!(
        "ceiling    {:>7.2} s  {:>10.0} events/s  (rusqlite, same rows, one transaction, WAL, synchronous=FULL)",
        ceiling.as_secs_f64(),
        ceiling_eps,
    );
    println!(
        "ratio      collector / ceiling = {:.2}",
        collector_eps / ceiling_eps
    );
    std::io::stdout().flush()?;

    if !verified {
        anyhow::bail!("the store does not hold exactly what the collector acknowledged");
    }
    Ok(())
}

/// One request body, ready to send.
struct Request {
    body: Bytes,
    events: usize,
    json_len: usize,
}

/// Encodes every batch as the page does: JSON, gzip'd.
fn encode(batches: &[Batch]) -> anyhow::Result<Vec<Request>> {
    batches
        .iter()
        .map(|b| {
            let json = serde_json::to_vec(b)?;
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(json.len() / 4),
                flate2::Compression::default(),
            );
            gz.write_all(&json)?;
            Ok(Request {
                body: Bytes::from(gz.finish()?),
                events: b.events.len(),
                json_len: json.len(),
            })
        })
        .collect()
}

#[derive(Default)]
struct Outcome {
    elapsed: Duration,
    accepted_batches: usize,
    accepted_events: usize,
    errors: usize,
    error_samples: Vec<String>,
    latencies: Vec<Duration>,
}

/// Starts a collector, sends every request once over `connections` connections, stops it.
async fn ingest(db: &Path, requests: Vec<Request>, connections: usize) -> anyhow::Result<Outcome> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let path = db.to_path_buf();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await??;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(collect::serve_store(
        listener,
        store,
        Limits::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(client(addr, Arc::clone(&requests), Arc::clone(&next))))
        .collect();
    let mut outcome = Outcome::default();
    for c in clients {
        let part = c.await?;
        outcome.accepted_batches += part.accepted_batches;
        outcome.accepted_events += part.accepted_events;
        outcome.errors += part.errors;
        outcome.latencies.extend(part.latencies);
        for s in part.error_samples {
            if outcome.error_samples.len() < 5 {
                outcome.error_samples.push(s);
            }
        }
    }
    outcome.elapsed = started.elapsed();

    let _ = stop.send(());
    server.await?.context("the collector failed")?;
    Ok(outcome)
}

/// One keep-alive connection taking requests from the shared queue until it is empty.
async fn client(addr: SocketAddr, requests: Arc<Vec<Request>>, next: Arc<AtomicUsize>) -> Outcome {
    let mut out = Outcome::default();
    let mut sender: Option<http1::SendRequest<Full<Bytes>>> = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = requests.get(i) else { break };
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            match connect(addr).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    fail(&mut out, format!("connect: {e}"));
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let request = hyper::Request::post(BATCHES_PATH)
            .header(hyper::header::HOST, addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "text/plain")
            .body(Full::new(req.body.clone()));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                fail(&mut out, format!("building a request: {e}"));
                continue;
            }
        };
        let t0 = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            s.ready().await?;
            let response = s.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        let latency = t0.elapsed();
        match answer {
            Ok(Ok((status, _))) if status == hyper::StatusCode::OK => {
                out.accepted_batches += 1;
                out.accepted_events += req.events;
                out.latencies.push(latency);
            }
            Ok(Ok((status, body))) => fail(
                &mut out,
                format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
            ),
            Ok(Err(e)) => {
                sender = None;
                fail(&mut out, format!("HTTP: {e}"));
            }
            Err(_) => {
                sender = None;
                fail(
                    &mut out,
                    format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
                );
            }
        }
    }
    out
}

fn fail(out: &mut Outcome, what: String) {
    out.errors += 1;
    if out.error_samples.len() < 5 {
        out.error_samples.push(what);
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "bench connection closed");
        }
    });
    Ok(sender)
}

/// Inserts the batch rows straight into a fresh database of the store's shape, in one
/// transaction, and returns how long the inserts and the commit took.
fn ceiling(db: &Path, batches: &[Batch]) -> anyhow::Result<Duration> {
    // The store creates the schema and sets the pragmas; then it steps aside.
    drop(SqliteStore::open(db)?);
    let mut conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let rows = batches
        .iter()
        .map(|b| {
            Ok((
                serde_json::to_string(&b.events)?,
                b.first_t().unwrap_or(0),
                b.last_t().unwrap_or(0),
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO batches
                 (session_id, seq, v, pvid, sent, received_at, first_t, last_t, n_events, events)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for (b, (events, first_t, last_t)) in batches.iter().zip(&rows) {
            insert.execute(rusqlite::params![
                b.sid,
                b.seq as i64,
                b.v,
                b.pvid,
                b.sent,
                0i64,
                first_t,
                last_t,
                b.events.len() as i64,
                events,
            ])?;
        }
    }
    tx.commit()?;
    Ok(started.elapsed())
}

struct Percentiles {
    p50: Duration,
    p99: Duration,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let p = Percentiles::of((1..=100).rev().map(ms).collect());
        assert_eq!((p.p50, p.p99), (ms(50), ms(99)));
        let p = Percentiles::of(vec![ms(3)]);
        assert_eq!((p.p50, p.p99), (ms(3), ms(3)));
        let p = Percentiles::of(Vec::new());
        assert_eq!(p.p99, Duration::ZERO);
    }
}
