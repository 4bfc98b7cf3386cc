//! Durability: a real `understudy collect` process is killed with SIGKILL 20 times at
//! random moments while several clients post batches to it, and restarted each time on
//! the same SQLite file. Every batch that got a `200` must be in the store exactly once
//! at the end: 0 lost, 0 duplicated.
//!
//! Clients send batches of their own sessions, in `seq` order, each as soon as the last
//! one is answered (gzip'd, like capture.js). A batch that gets no answer (the collector
//! died with it in flight) may or may not have been stored; the client sends it again
//! after the restart, and the collector must answer `stored` or `duplicate` without
//! storing it twice. The seed of the kill moments is printed, and `CRASH_SEED` replays it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use understudy::event::Batch;
use understudy::store::{SessionStore, SqliteStore};

/// Kills under load.
const KILLS: usize = 20;
/// Concurrent clients.
const CLIENTS: usize = 6;
/// Sessions each client interleaves.
const SESSIONS_PER_CLIENT: usize = 4;
/// The whole test, kills and final retries, must fit in this.
const BUDGET: Duration = Duration::from_secs(90);
/// 2024-12-04, epoch ms.
const T0: i64 = 1_733_300_000_000;

/// Batch `seq` of session `sid` (client `c`): deterministic, so the store's copy can be
/// compared with it. Sizes vary from a few hundred bytes to ~20 KB so that some groups
/// spill over many pages.
fn batch(c: usize, s: usize, seq: u64) -> Batch {
    let sid = format!("crash-c{c}-s{s}");
    let t = T0 + seq as i64 * 1_000;
    let pad_len = ((seq as usize * 7_919 + c * 104_729 + s * 31) % 20) * 1_000;
    let pad: String = std::iter::repeat_n("abcdefghij", pad_len / 10).collect();
    let mut events = Vec::new();
    if seq % 8 == 0 {
        events.push(serde_json::json!({
            "k": "meta", "t": t, "url": format!("https://shop.example/p/{seq}"),
            "load": "navigate", "w": 1280, "h": 800,
        }));
    }
    events.push(serde_json::json!({"k": "vis", "t": t + 1, "hidden": false}));
    events.push(serde_json::json!({
        "k": "custom", "t": t + 2, "name": "crash",
        "data": {"c": c, "s": s, "seq": seq, "pad": pad},
    }));
    serde_json::from_value(serde_json::json!({
        "v": 1, "sid": sid, "pvid": format!("p{}", seq / 8), "seq": seq, "sent": t + 3,
        "events": events,
    }))
    .expect("a valid batch")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// How one post ended.
enum Answer {
    /// `200`: stored now, or already stored.
    Acked,
    /// No answer, or the store is unavailable: try again later.
    Unknown(String),
    /// A refusal: the test fails.
    Refused(String),
}

/// One `POST /v1/batches` on a fresh connection.
fn post(addr: SocketAddr, body: &[u8]) -> Answer {
    let attempt = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        let head = format!(
            "POST /v1/batches HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    };
    match attempt() {
        Err(e) => Answer::Unknown(e.to_string()),
        Ok(a) if a.starts_with("HTTP/1.1 200") => {
            if a.contains("\"stored\"") || a.contains("\"duplicate\"") {
                Answer::Acked
            } else {
                Answer::Refused(a)
            }
        }
        Ok(a) if a.starts_with("HTTP/1.1 503") || a.is_empty() => Answer::Unknown(a),
        Ok(a) => Answer::Refused(a),
    }
}

/// What the clients saw.
#[derive(Default)]
struct Ledger {
    /// (sid, seq) of every batch acknowledged with a 200.
    acked: BTreeSet<(String, u64)>,
    /// Posts that got no answer (or a 503) and were sent again.
    unanswered: usize,
    /// What a few of them got instead.
    unanswered_samples: BTreeSet<String>,
    /// Refusals, which fail the test.
    refused: Vec<String>,
}

/// Sends client `c`'s sessions until `stop`, keeping unanswered batches for a retry.
fn client(
    c: usize,
    addr: Arc<Mutex<SocketAddr>>,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
    acks: Arc<AtomicUsize>,
) -> BTreeMap<String, u64> {
    // Next seq per session, and batches to send again.
    let mut next = [0u64; SESSIONS_PER_CLIENT];
    let mut retry: Vec<(usize, u64)> = Vec::new();
    let mut turn = 0;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        if stopping && retry.is_empty() {
            break;
        }
        let (s, seq) = match retry.pop() {
            Some(r) => r,
            None if stopping => unreachable!(),
            None => {
                let s = turn % SESSIONS_PER_CLIENT;
                turn += 1;
                next[s] += 1;
                (s, next[s] - 1)
            }
        };
        let b = batch(c, s, seq);
        let body = gzip(serde_json::to_string(&b).unwrap().as_bytes());
        let target = *addr.lock().unwrap();
        match post(target, &body) {
            Answer::Acked => {
                ledger.lock().unwrap().acked.insert((b.sid, seq));
                acks.fetch_add(1, Ordering::AcqRel);
            }
            Answer::Unknown(why) => {
                let mut ledger = ledger.lock().unwrap();
                ledger.unanswered += 1;
                if ledger.unanswered_samples.len() < 4 {
                    let why: String = why.lines().next().unwrap_or("").chars().take(60).collect();
                    ledger.unanswered_samples.insert(why);
                }
                drop(ledger);
                retry.push((s, seq));
                std::thread::sleep(Duration::from_millis(10));
            }
            Answer::Refused(a) => {
                ledger.lock().unwrap().refused.push(a);
                break;
            }
        }
    }
    (0..SESSIONS_PER_CLIENT)
        .map(|s| (format!("crash-c{c}-s{s}"), next[s]))
        .collect()
}

/// Starts `understudy collect` on `addr` (or another free port if `addr` is taken) and
/// waits until it accepts connections.
fn start_collector(db: &Path, addr: &Mutex<SocketAddr>) -> Child {
    for attempt in 0..20 {
        let listen = *addr.lock().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_understudy"))
            .args(["collect", "--listen", &listen.to_string(), "--db"])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the collector");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
                return child;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        // The port may have been taken meanwhile: move to another one.
        if attempt > 0 {
            *addr.lock().unwrap() = free_addr();
        }
    }
    panic!("the collector does not start");
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn kill_9_under_load_loses_and_duplicates_nothing_acknowledged() {
    let started = Instant::now();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (CRASH_SEED={seed} replays the kill moments)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let addr = Arc::new(Mutex::new(free_addr()));
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let acks = Arc::new(AtomicUsize::new(0));

    let mut collector = start_collector(&db, &addr);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, stop, ledger, acks) = (
                Arc::clone(&addr),
                Arc::clone(&stop),
                Arc::clone(&ledger),
                Arc::clone(&acks),
            );
            std::thread::spawn(move || client(c, addr, stop, ledger, acks))
        })
        .collect();

    let mut acks_at_kill = Vec::new();
    for _ in 0..KILLS {
        // Under load: wait for acknowledgements from this incarnation, then a random moment.
        let before = acks.load(Ordering::Acquire);
        let waiting = Instant::now();
        while acks.load(Ordering::Acquire) < before + 5 {
            assert!(
                waiting.elapsed() < Duration::from_secs(20),
                "no batch acknowledged within 20 s after a restart"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..600_000)));
        collector.kill().expect("SIGKILL the collector");
        collector.wait().unwrap();
        acks_at_kill.push(acks.load(Ordering::Acquire) - before);
        collector = start_collector(&db, &addr);
    }

    // Let the clients send their unanswered batches again, then stop.
    stop.store(true, Ordering::Release);
    let mut sent = BTreeMap::new();
    for c in clients {
        sent.extend(c.join().expect("client thread"));
    }
    collector.kill().unwrap();
    collector.wait().unwrap();
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(ledger.refused.is_empty(), "refused: {:?}", ledger.refused);

    // Check the store, opened afresh after the last kill.
    let store = SqliteStore::open(&db).unwrap();
    let summaries: BTreeMap<String, _> = store
        .list_sessions()
        .unwrap()
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let (mut lost, mut duplicated, mut wrong, mut stored_total) = (0, 0, 0, 0);
    for (sid, &n) in &sent {
        let (c, s) = parse_sid(sid);
        let stored = store.session_batches(sid).unwrap_or_default();
        let seqs: Vec<u64> = stored.iter().map(|b| b.seq).collect();
        let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
        duplicated += seqs.len() - distinct.len();
        stored_total += seqs.len();
        for seq in 0..n {
            if ledger.acked.contains(&(sid.clone(), seq)) && !distinct.contains(&seq) {
                lost += 1;
            }
        }
        for b in &stored {
            if *b != batch(c, s, b.seq) {
                wrong += 1;
            }
        }
        // The summary counts every stored batch once.
        if let Some(summary) = summaries.get(sid) {
            assert_eq!(summary.batches as usize, seqs.len(), "summary of {sid}");
            let events: usize = stored.iter().map(|b| b.events.len()).sum();
            assert_eq!(summary.events as usize, events, "summary of {sid}");
        }
    }
    let acked = ledger.acked.len();
    eprintln!(
        "crash test: {KILLS} kills ({:?} acknowledgements between start and kill), {acked} batches \
         acknowledged, {} posts unanswered and sent again, {stored_total} stored; lost {lost}, \
         duplicated {duplicated}, differing {wrong}; {:.1} s; unanswered because: {:?}",
        acks_at_kill,
        ledger.unanswered,
        started.elapsed().as_secs_f64(),
        ledger.unanswered_samples,
    );
    assert_eq!(lost, 0, "acknowledged batches lost");
    assert_eq!(duplicated, 0, "batches stored twice");
    assert_eq!(wrong, 0, "stored batches differ from what was sent");
    // Every batch was retried until acknowledged, so the store holds exactly those.
    assert_eq!(
        stored_total, acked,
        "stored batches that were never acknowledged"
    );
    assert!(ledger.unanswered > 0, "no kill caught a request in flight");
    assert!(
        started.elapsed() < BUDGET,
        "the crash test took {:?}",
        started.elapsed()
    );
}

fn parse_sid(sid: &str) -> (usize, usize) {
    let rest = sid.strip_prefix("crash-c").unwrap();
    let (c, s) = rest.split_once("-s").unwrap();
    (c.parse().unwrap(), s.parse().unwrap())
}
