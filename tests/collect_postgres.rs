//! Two `understudy collect` processes on one PostgreSQL database, under load: every batch
//! either acknowledged is stored exactly once, even when the same batch is posted to both
//! at the same moment.
//!
//! Needs a server: `UNDERSTUDY_TEST_POSTGRES` (see `scripts/test-postgres`).

mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use understudy::bench::synth;
use understudy::event::Batch;
use understudy::store::{self, DbSpec};

/// How long the load runs at most.
const LOAD_FOR: Duration = Duration::from_secs(5);
/// Client threads posting at once.
const CLIENTS: usize = 8;
/// Every this many batches, one is posted to both collectors at once.
const DUPLICATE_EVERY: usize = 4;

/// A collector process, killed on drop.
struct Collector {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts collectors on `db` all at once (so their migrations race) and waits until each
/// answers `/healthz`.
fn start_collectors(db: &str, n: usize) -> Vec<Collector> {
    let collectors: Vec<Collector> = (0..n)
        .map(|_| {
            let addr = free_addr();
            let child = Command::new(env!("CARGO_BIN_EXE_understudy"))
                .args(["collect", "--listen", &addr.to_string(), "--db", db])
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn understudy collect");
            Collector { child, addr }
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(20);
    for c in &collectors {
        loop {
            if let Ok((200, _)) = request(c.addr, "GET", "/healthz", &[], false) {
                break;
            }
            assert!(
                Instant::now() < until,
                "collector on {} did not start",
                c.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    collectors
}

/// One HTTP/1.1 request on a fresh connection; returns the status and body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    gzip: bool,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let encoding = if gzip {
        "Content-Encoding: gzip\r\n"
    } else {
        ""
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\n{encoding}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {text}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Ok((status, body))
}

/// What one post got back.
#[derive(Debug)]
struct Answer {
    key: (String, u64),
    status: u16,
    body: String,
}

fn post(addr: SocketAddr, batch: &Batch, gzip: bool) -> Answer {
    let json = serde_json::to_vec(batch).unwrap();
    let body = if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&json).unwrap();
        gz.finish().unwrap()
    } else {
        json
    };
    let (status, body) = request(addr, "POST", "/v1/batches", &body, gzip)
        .unwrap_or_else(|e| (0, format!("transport error: {e}")));
    Answer {
        key: (batch.sid.clone(), batch.seq),
        status,
        body,
    }
}

#[test]
fn two_collectors_on_one_postgres_lose_and_duplicate_nothing() {
    let db = pg::TestDb::new();
    let collectors = start_collectors(&db.url, 2);
    let addrs = [collectors[0].addr, collectors[1].addr];

    // Realistic sessions, posted in a shuffled order (so batches also arrive out of order).
    let mut all: Vec<Batch> = synth::sessions(400, 11).into_iter().flatten().collect();
    all.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
    let sent: BTreeMap<(String, u64), &Batch> =
        all.iter().map(|b| ((b.sid.clone(), b.seq), b)).collect();
    assert_eq!(sent.len(), all.len(), "the generator repeats no (sid, seq)");

    let next = AtomicUsize::new(0);
    let answers = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let mut mine = Vec::new();
                while started.elapsed() < LOAD_FOR {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = all.get(i) else { break };
                    let gzip = i % 3 == 0;
                    if i % DUPLICATE_EVERY == 0 {
                        // The same batch to both collectors at the same moment.
                        let (a, b) = std::thread::scope(|s| {
                            let a = s.spawn(|| post(addrs[0], batch, gzip));
                            let b = s.spawn(|| post(addrs[1], batch, !gzip));
                            (a.join().unwrap(), b.join().unwrap())
                        });
                        mine.push(a);
                        mine.push(b);
                    } else {
                        mine.push(post(addrs[i % 2], batch, gzip));
                    }
                }
                answers.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = started.elapsed();
    let answers = answers.into_inner().unwrap();

    let failed: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} posts failed, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    // Per batch: exactly one of its acknowledgements says it was stored.
    let mut acks: BTreeMap<&(String, u64), (usize, usize)> = BTreeMap::new();
    for a in &answers {
        let entry = acks.entry(&a.key).or_default();
        if a.body.contains(r#""status":"stored""#) {
            entry.0 += 1;
        } else {
            assert!(a.body.contains(r#""status":"duplicate""#), "{a:?}");
            entry.1 += 1;
        }
    }
    let duplicates_sent = answers.len() - acks.len();
    assert!(
        acks.len() >= 300 && duplicates_sent >= 50,
        "too little load to mean anything: {} batches, {duplicates_sent} duplicates in {elapsed:?}",
        acks.len()
    );
    for (key, (stored, duplicate)) in &acks {
        assert_eq!(
            *stored, 1,
            "{key:?} acknowledged as stored {stored} times ({duplicate} duplicates)"
        );
    }
    drop(collectors);

    // The database holds exactly the acknowledged batches, each as it was sent.
    let store = store::open(&DbSpec::Postgres(db.url.clone())).unwrap();
    let mut stored: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut per_session: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (sid, _) in acks.keys() {
        per_session.entry(sid.clone()).or_default();
    }
    for (sid, (batches, events)) in per_session.iter_mut() {
        for b in store.session_batches(sid).unwrap() {
            let key = (b.sid.clone(), b.seq);
            assert_eq!(sent[&key], &b, "stored batch differs from the one sent");
            assert!(stored.insert(key), "{sid} {} read twice", b.seq);
            *batches += 1;
            *events += b.events.len() as u64;
        }
    }
    let acked: BTreeSet<(String, u64)> = acks.keys().map(|k| (*k).clone()).collect();
    assert_eq!(
        stored, acked,
        "stored batches are exactly the acknowledged ones"
    );
    // And every session summary counts each batch once.
    let summaries = store.list_sessions().unwrap();
    assert_eq!(summaries.len(), per_session.len());
    for s in &summaries {
        assert_eq!(
            (s.batches, s.events),
            per_session[&s.id],
            "summary of {}",
            s.id
        );
    }
    eprintln!(
        "two collectors: {} batches acknowledged ({} posts, {duplicates_sent} duplicate posts) in {elapsed:.1?}",
        acks.len(),
        answers.len()
    );
}
