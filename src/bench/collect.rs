//! `understudy bench collect`: collector ingest over loopback HTTP, side by side with its
//! anchor, raw rusqlite inserts of the same rows.
//!
//! What it measures: for each connection count C (1, 16 and 64 unless told otherwise), a
//! fresh `understudy collect` process (this executable, so that its peak RSS is its own)
//! on `127.0.0.1` receives realistic batches — the synthetic shop sessions of
//! [`synth`], gzip'd as `capture.js` sends them — over C concurrent keep-alive HTTP/1.1
//! connections, each sending its next batch as soon as the previous one is answered, for
//! a bounded time (or until the pool of batches is used up). A batch counts as accepted
//! when its `200` arrives, which the collector sends only once the batch is durable. Each
//! row prints accepted events/s and batches/s, p50 and p99 latency of accepted batches,
//! errors, the collector's peak RSS (`VmHWM`) and the CPU time it and the clients used per
//! batch (`/proc/<pid>/stat`); under it, the store writer's own account (transactions,
//! group sizes, commit times, how busy it was). Afterwards the store is read back to check
//! that it holds what was acknowledged.
//!
//! The target is a `--db` spec handed unchanged to `understudy collect --db`: a SQLite
//! file or a `postgres://` URL. Without it each row gets a fresh SQLite file in a
//! temporary directory. Every row tags its session ids with a run- and row-unique prefix,
//! so rows never collide even when they share one database.
//!
//! The anchor (the ceiling) is the same batch rows, JSON already encoded, inserted with
//! plain rusqlite into the same `batches` table in one transaction with the same pragmas
//! (WAL, `synchronous=FULL`): best of three runs. It is what the disk and SQLite allow
//! with no HTTP, no decoding, no per-request durability and no session summaries. Each
//! row's ratio is its events/s over the ceiling's. This file is the one place outside
//! `store` with SQL in it: an anchor must not go through the code it measures.
//!
//! With `--profile` it first prints where one batch's time goes on one thread: gunzip,
//! JSON parse, checks, encoding for the store, drop (the collector does these on its
//! request threads), the store's put in groups (its one writer thread), and a bare
//! `synchronous=FULL` commit (the disk sync every acknowledgement waits for).

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
use crate::collect::{decode, BATCHES_PATH};
use crate::event::{self, Batch};
use crate::exit_code::bad_input;
use crate::store::{DbSpec, EncodedBatch, SessionStore, SqliteStore};

/// Seed of the synthetic population, fixed so runs are comparable.
const SEED: u64 = 7;
/// Sessions generated at once (bounds the generator's memory).
const CHUNK: usize = 200;
/// Longest wait for one answer before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a collector to answer its health check after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a collector to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest inflated body, as the collector's default limit.
const MAX_DECODED: usize = 8 << 20;
/// Ceiling runs; the best counts.
const CEILING_RUNS: usize = 3;
/// Batches the `--profile` stage costs are measured on.
const PROFILE_BATCHES: usize = 4_000;
/// Batches per transaction in the `--profile` store put (like a 16-connection group).
const PROFILE_GROUP: usize = 16;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The collector's `--db`: a SQLite file or a `postgres://` URL. `None`: a fresh
    /// SQLite file per row in a temporary directory.
    pub db: Option<String>,
    /// Concurrent connections, one row each.
    pub connections: Vec<usize>,
    /// Seconds of load per row.
    pub seconds: f64,
    /// Synthetic sessions in each row's pool of batches.
    pub sessions: usize,
    /// Print where one batch's time goes first.
    pub profile: bool,
}

/// Runs the benchmark and prints its figures to standard output.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    if opts.sessions == 0 || opts.connections.is_empty() || opts.connections.contains(&0) {
        return Err(bad_input(
            "--sessions and every --connections value must be at least 1",
        ));
    }
    if !(opts.seconds > 0.0 && opts.seconds.is_finite()) {
        return Err(bad_input("--seconds must be a positive number"));
    }
    if let Some(db) = &opts.db {
        db.parse::<DbSpec>()
            .map_err(|e| bad_input(format!("--db: {e}")))?;
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let exe = std::env::current_exe().context("finding this executable")?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() % 0xff_ffff_ffff);
    let target = match &opts.db {
        Some(db) => format!("{}", db.parse::<DbSpec>().map_err(anyhow::Error::from)?),
        None => "SQLite, a fresh file per row".to_string(),
    };

    let started = Instant::now();
    let first = Pool::build(opts.sessions, &format!("b{nonce:x}r0"))?;
    println!(
        "bench collect: {target}; pool of {} sessions: {} batches, {} events ({:.1} MiB JSON, \
         {:.1} MiB gzip, built in {:.1} s); up to {} s per row; seed {SEED}; {} CPUs",
        opts.sessions,
        first.requests.len(),
        first.events,
        mib(first.json_bytes),
        mib(first.wire_bytes),
        started.elapsed().as_secs_f64(),
        opts.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if opts.profile {
        profile(dir.path(), &first)?;
    }

    let mut best = None::<Ceiling>;
    for i in 0..CEILING_RUNS {
        let c = ceiling(&dir.path().join(format!("ceiling-{i}.db")), &first)?;
        if best
            .as_ref()
            .is_none_or(|b| c.events_per_s() > b.events_per_s())
        {
            best = Some(c);
        }
    }
    let ceiling = best.context("no ceiling run")?;
    println!(
        "ceiling: {:.0} events/s, {:.0} batches/s (rusqlite, {} rows in one transaction, WAL, \
         synchronous=FULL; best of {CEILING_RUNS})",
        ceiling.events_per_s(),
        ceiling.rows as f64 / ceiling.elapsed.as_secs_f64(),
        ceiling.rows,
    );
    println!(
        "{:>5}  {:>6}  {:>9}  {:>9}  {:>7}  {:>7}  {:>6}  {:>9}  {:>5}  {:>8}  stored",
        "conns",
        "secs",
        "events/s",
        "batches/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "peak RSS",
        "ratio",
        "CPU µs/b"
    );
    std::io::stdout().flush()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut mismatches = 0;
    let mut pool = Some(first);
    for (i, &connections) in opts.connections.iter().enumerate() {
        let tag = format!("b{nonce:x}r{i}");
        let pool = match pool.take() {
            Some(p) => p,
            None => Pool::build(opts.sessions, &tag)?,
        };
        let db = match &opts.db {
            Some(db) => db.clone(),
            None => dir
                .path()
                .join(format!("collector-{i}.db"))
                .to_string_lossy()
                .into_owned(),
        };
        let log = dir.path().join(format!("collector-{i}.log"));
        let row = runtime.block_on(load(
            &exe,
            &db,
            &log,
            pool,
            connections,
            Duration::from_secs_f64(opts.seconds),
        ))?;
        let check = verify(&db, &tag, &row);
        let secs = row.elapsed.as_secs_f64();
        let eps = row.events as f64 / secs;
        let lat = Percentiles::of(row.latencies);
        println!(
            "{:>5}  {:>6.2}  {:>9.0}  {:>9.0}  {:>7.2}  {:>7.2}  {:>6}  {:>5} MiB  {:>5.2}  {:>8}  {}",
            connections,
            secs,
            eps,
            row.stored as f64 / secs,
            ms(lat.p50),
            ms(lat.p99),
            row.errors,
            row.peak_rss_kib
                .map_or("?".into(), |k| format!("{}", k / 1024)),
            eps / ceiling.events_per_s(),
            per_batch(row.collector_cpu, row.stored),
            check
                .as_ref()
                .map_or_else(|e| format!("MISMATCH: {e}"), String::clone),
        );
        for sample in &row.error_samples {
            println!("       error: {sample}");
        }
        println!(
            "       CPU during the load: collector {}, clients {} (µs per stored batch)",
            per_batch(row.collector_cpu, row.stored),
            per_batch(row.client_cpu, row.stored),
        );
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("store writer")) {
            let line = line.split_once("store writer").map_or(line, |(_, l)| l);
            println!("       store writer{line}");
        }
        if row.duplicates > 0 {
            println!("       {} answers were `duplicate`", row.duplicates);
        }
        if check.is_err() {
            mismatches += 1;
        }
        std::io::stdout().flush()?;
    }
    if mismatches > 0 {
        anyhow::bail!("the store does not hold what the collector acknowledged");
    }
    Ok(())
}

/// One request body, ready to send.
struct Request {
    body: Bytes,
    events: usize,
}

/// Every batch of `sessions` synthetic sessions, gzip'd, in arrival order.
struct Pool {
    requests: Vec<Request>,
    events: usize,
    json_bytes: usize,
    wire_bytes: usize,
}

impl Pool {
    /// Generates the sessions in chunks, tags every session id with `tag`, and orders
    /// each chunk's batches by their first event, as a collector would see them arrive.
    fn build(sessions: usize, tag: &str) -> anyhow::Result<Pool> {
        let mut pool = Pool {
            requests: Vec::new(),
            events: 0,
            json_bytes: 0,
            wire_bytes: 0,
        };
        let mut done = 0;
        let mut chunk_seed = SEED;
        while done < sessions {
            let n = CHUNK.min(sessions - done);
            let mut batches: Vec<Batch> = synth::sessions(n, chunk_seed)
                .into_iter()
                .flatten()
                .collect();
            batches.sort_by_key(|b| (b.first_t(), b.seq));
            for mut b in batches {
                b.sid = format!("{tag}-{}", b.sid);
                let json = event::to_json(&b)?;
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(json.len() / 4),
                    flate2::Compression::default(),
                );
                gz.write_all(json.as_bytes())?;
                let body = gz.finish()?;
                pool.events += b.events.len();
                pool.json_bytes += json.len();
                pool.wire_bytes += body.len();
                pool.requests.push(Request {
                    body: Bytes::from(body),
                    events: b.events.len(),
                });
            }
            done += n;
            chunk_seed += 1;
        }
        if pool.requests.is_empty() {
            anyhow::bail!("the synthetic generator produced no batches");
        }
        Ok(pool)
    }
}

/// What one row's load achieved.
#[derive(Default)]
struct Outcome {
    elapsed: Duration,
    /// Answers `200 {"status":"stored"}`.
    stored: usize,
    /// Answers `200 {"status":"duplicate"}`.
    duplicates: usize,
    /// Events in the stored batches.
    events: usize,
    errors: usize,
    error_samples: Vec<String>,
    latencies: Vec<Duration>,
    peak_rss_kib: Option<u64>,
    /// CPU time the collector process used during the load.
    collector_cpu: Option<Duration>,
    /// CPU time this process (the clients) used during the load.
    client_cpu: Option<Duration>,
}

impl Outcome {
    fn absorb(&mut self, part: Outcome) {
        self.stored += part.stored;
        self.duplicates += part.duplicates;
        self.events += part.events;
        self.errors += part.errors;
        self.latencies.extend(part.latencies);
        for s in part.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(s);
            }
        }
    }
}

/// Starts a collector on `db`, loads it from `connections` connections until `duration`
/// has passed or the pool is used up, reads its peak RSS and stops it.
async fn load(
    exe: &Path,
    db: &str,
    log: &Path,
    pool: Pool,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let collector = {
        let (exe, db, log) = (exe.to_path_buf(), db.to_string(), log.to_path_buf());
        tokio::task::spawn_blocking(move || CollectorProcess::start(&exe, &db, &log)).await??
    };
    let requests = Arc::new(pool.requests);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = (cpu_time(collector.child.id()), cpu_time(std::process::id()));
    let started = Instant::now();
    let deadline = started + duration;
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(client(
                collector.addr,
                Arc::clone(&requests),
                Arc::clone(&next),
                deadline,
            ))
        })
        .collect();
    let mut outcome = Outcome::default();
    for c in clients {
        outcome.absorb(c.await?);
    }
    outcome.elapsed = started.elapsed();
    outcome.peak_rss_kib = collector.peak_rss_kib();
    let since = |before: Option<Duration>, pid| Some(cpu_time(pid)?.saturating_sub(before?));
    outcome.collector_cpu = since(cpu_before.0, collector.child.id());
    outcome.client_cpu = since(cpu_before.1, std::process::id());
    tokio::task::spawn_blocking(move || collector.stop()).await??;
    Ok(outcome)
}

/// One keep-alive connection taking requests from the shared pool until the deadline.
async fn client(
    addr: SocketAddr,
    requests: Arc<Vec<Request>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    let mut sender: Option<http1::SendRequest<Full<Bytes>>> = None;
    while Instant::now() < deadline {
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
            Ok(Ok((status, body))) if status == hyper::StatusCode::OK => {
                if body.windows(11).any(|w| w == b"\"duplicate\"") {
                    out.duplicates += 1;
                } else {
                    out.stored += 1;
                    out.events += req.events;
                }
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

/// An `understudy collect` child process on a loopback port.
struct CollectorProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl CollectorProcess {
    /// Starts `exe collect` on a free loopback port and waits until it answers `/healthz`.
    fn start(exe: &Path, db: &str, log: &Path) -> anyhow::Result<CollectorProcess> {
        let mut last = String::new();
        for _ in 0..5 {
            let addr = free_port()?;
            let child = Command::new(exe)
                .args(["collect", "--listen", &addr.to_string(), "--db", db])
                .env("RUST_LOG", "warn,understudy::collect::writer=info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).context("creating the collector log")?)
                .spawn()
                .with_context(|| format!("starting {} collect", exe.display()))?;
            let mut c = CollectorProcess {
                child,
                addr,
                log: log.to_path_buf(),
            };
            match c.wait_ready() {
                Ok(()) => return Ok(c),
                Err(e) => {
                    last = format!("{e:#}");
                    let _ = c.child.kill();
                    let _ = c.child.wait();
                }
            }
        }
        anyhow::bail!(
            "the collector did not start: {last}\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("it exited with {status}");
            }
            if healthy(self.addr) {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                anyhow::bail!("no healthy answer within {} s", START_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process's peak resident set size (`VmHWM`), KiB, where `/proc` tells it.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Asks the collector to stop (SIGTERM: finish requests, close the store) and waits;
    /// kills it if it does not stop in time.
    fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let asked = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        let started = Instant::now();
        while asked && started.elapsed() < STOP_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    anyhow::bail!(
                        "the collector exited with {status}:\n{}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    );
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        anyhow::bail!("the collector did not stop on SIGTERM; killed it")
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User and system CPU time of process `pid` so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses: state is field 3, utime 14
    // and stime 15, in clock ticks (USER_HZ, 100 on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(14)? + ticks(15)?) * 10))
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Whether `GET /healthz` answers 200.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let asked = stream.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let mut answer = Vec::new();
    asked.is_ok() && stream.read_to_end(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.1 200")
}

/// Reads back the sessions tagged `tag` and compares them with what was acknowledged:
/// every acknowledged batch stored, and nothing stored beyond the requests that failed
/// without an answer (those may or may not have landed).
fn verify(db: &str, tag: &str, row: &Outcome) -> anyhow::Result<String> {
    let spec: DbSpec = db.parse()?;
    let store = crate::store::open(&spec)?;
    let prefix = format!("{tag}-");
    let (mut batches, mut events) = (0u64, 0u64);
    for s in store.list_sessions()? {
        if s.id.starts_with(&prefix) {
            batches += s.batches;
            events += s.events;
        }
    }
    let acked = row.stored as u64;
    if batches < acked || batches > acked + row.errors as u64 {
        anyhow::bail!("{batches} batches stored, {acked} acknowledged");
    }
    if batches == acked && events != row.events as u64 {
        anyhow::bail!("{events} events stored, {} acknowledged", row.events);
    }
    Ok(format!("{batches} batches, {events} events: ok"))
}

/// One ceiling run.
struct Ceiling {
    elapsed: Duration,
    rows: usize,
    events: usize,
}

impl Ceiling {
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

/// Inserts the pool's batch rows straight into a fresh database of the store's shape, in
/// one transaction, and times the inserts and the commit (decoding the bodies back into
/// rows is not timed).
fn ceiling(db: &Path, pool: &Pool) -> anyhow::Result<Ceiling> {
    // The store creates the schema and sets the pragmas; then it steps aside.
    drop(SqliteStore::open(db)?);
    let mut conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let mut elapsed = Duration::ZERO;
    let mut events = 0;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO batches
                 (session_id, seq, v, pvid, sent, received_at, first_t, last_t, n_events, events)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for req in &pool.requests {
            let json = decode::gunzip(&req.body, MAX_DECODED)?;
            let b: Batch = event::from_json(std::str::from_utf8(&json)?)?;
            let row = event::to_json(&b.events)?;
            let t0 = Instant::now();
            insert.execute(rusqlite::params![
                b.sid,
                b.seq as i64,
                b.v,
                b.pvid,
                b.sent,
                0i64,
                b.first_t().unwrap_or(0),
                b.last_t().unwrap_or(0),
                b.events.len() as i64,
                row,
            ])?;
            elapsed += t0.elapsed();
            events += b.events.len();
        }
    }
    let t0 = Instant::now();
    tx.commit()?;
    elapsed += t0.elapsed();
    Ok(Ceiling {
        elapsed,
        rows: pool.requests.len(),
        events,
    })
}

/// Prints the single-thread cost of each step a batch goes through, per batch.
fn profile(dir: &Path, pool: &Pool) -> anyhow::Result<()> {
    let sample = &pool.requests[..pool.requests.len().min(PROFILE_BATCHES)];
    let n = sample.len();
    let mut t = [Duration::ZERO; 5];
    let mut batches = Vec::with_capacity(n);
    for req in sample {
        let t0 = Instant::now();
        let json = decode::gunzip(&req.body, MAX_DECODED)?;
        let t1 = Instant::now();
        let b: Batch = event::from_json(std::str::from_utf8(&json)?)?;
        let t2 = Instant::now();
        b.validate()?;
        decode::check_plausible(&b)?;
        let t3 = Instant::now();
        let encoded = EncodedBatch::of(&b)?;
        let t4 = Instant::now();
        drop(b);
        let t5 = Instant::now();
        for (slot, d) in t
            .iter_mut()
            .zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4])
        {
            *slot += d;
        }
        batches.push(encoded);
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!("profile: one thread, {n} batches, µs per batch:");
    for (name, d) in [
        "gunzip",
        "JSON parse (event::from_json)",
        "checks (validate, plausibility)",
        "encode for the store (EncodedBatch::of)",
        "drop a decoded batch",
    ]
    .iter()
    .zip(t)
    {
        println!("  {name:<40} {:>8.1}", us(d));
    }

    // What the collector's one writer thread does: SQL and a commit per group.
    let mut store = SqliteStore::open(&dir.join("profile-store.db"))?;
    let mut groups = Vec::new();
    for group in batches.chunks(PROFILE_GROUP) {
        let t0 = Instant::now();
        store.put_encoded(group, 0)?;
        groups.push(t0.elapsed());
    }
    drop(store);
    let (commits, put) = (groups.len(), groups.iter().sum::<Duration>());
    let lat = Percentiles::of(groups);
    println!(
        "  {:<40} {:>8.1}  ({commits} transactions of {PROFILE_GROUP}: mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms)",
        "store put, in groups (SQL + commit)",
        us(put),
        put.as_secs_f64() * 1e3 / commits as f64,
        ms(lat.p50),
        ms(lat.p99),
    );

    let conn = rusqlite::Connection::open(dir.join("profile-sync.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE t (x INTEGER)")?;
    let rounds = 200;
    let t0 = Instant::now();
    for i in 0..rounds {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; INSERT INTO t VALUES ({i}); COMMIT"
        ))?;
    }
    println!(
        "  {:<40} {:>8.2} ms  ({rounds} one-row transactions, WAL, synchronous=FULL)",
        "bare commit (the disk sync)",
        t0.elapsed().as_secs_f64() * 1e3 / f64::from(rounds),
    );
    std::io::stdout().flush()?;
    Ok(())
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

/// CPU µs per batch, or `?`.
fn per_batch(cpu: Option<Duration>, batches: usize) -> String {
    match cpu {
        Some(cpu) if batches > 0 => format!("{:.0}", cpu.as_secs_f64() * 1e6 / batches as f64),
        _ => "?".into(),
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

    #[test]
    fn pool_tags_every_session_and_decodes_as_the_collector_does() {
        let pool = Pool::build(3, "bt").unwrap();
        assert!(!pool.requests.is_empty());
        let mut events = 0;
        for req in &pool.requests {
            let b = decode::decode_body(&req.body, None, 1 << 20, MAX_DECODED).unwrap();
            assert!(b.sid.starts_with("bt-"), "{}", b.sid);
            assert_eq!(b.events.len(), req.events);
            events += req.events;
        }
        assert_eq!(events, pool.events);
    }
}
