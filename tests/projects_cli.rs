//! `understudy project …` and `understudy collect --projects | --retain-days` as an operator
//! runs them: the built binary, a real projects file, a real collector process over HTTP,
//! SIGHUP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const T: i64 = 1_733_300_000_000;

fn understudy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the understudy binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `project add` and what it printed: (ingest key, admin token).
fn add(projects: &Path, name: &str, origin: &str) -> (String, String) {
    let out = understudy(&[
        "project",
        "add",
        name,
        "--origin",
        origin,
        "--projects",
        path(projects),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let secret = |prefix: &str| {
        stdout
            .split_whitespace()
            .find(|w| w.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} secret in {stdout}"))
            .to_string()
    };
    (secret("pk_"), secret("sk_"))
}

#[test]
fn project_add_prints_secrets_once_and_stores_only_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("projects.toml");
    let (key, token) = add(&projects, "shop", "https://Shop.example:443");
    assert_eq!(key.len(), 3 + 64);
    assert_eq!(token.len(), 3 + 64);
    let file = std::fs::read_to_string(&projects).unwrap();
    assert!(
        !file.contains(&key[3..]) && !file.contains(&token[3..]),
        "{file}"
    );
    assert!(
        file.contains("origins = [\"https://shop.example\"]"),
        "{file}"
    );

    // Same name again, a bad origin, a bad name: exit 2, file untouched.
    for (args, message) in [
        (
            vec!["shop", "--origin", "https://a.example"],
            "a project named `shop` already exists",
        ),
        (
            vec!["blog", "--origin", "https://a.example/path"],
            "must be scheme://host[:port] only",
        ),
        (
            vec!["b log", "--origin", "https://a.example"],
            "project name `b log` must be",
        ),
    ] {
        let mut all = vec!["project", "add"];
        all.extend(args);
        all.extend(["--projects", path(&projects)]);
        let out = understudy(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
        assert_eq!(std::fs::read_to_string(&projects).unwrap(), file);
    }

    let out = understudy(&["project", "list", "--projects", path(&projects)]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "shop  origins: https://shop.example  keys: 1 (+0 revoked)  admin tokens: 1  rate: 1000/s burst 2000\n"
    );
    let out = understudy(&[
        "project",
        "rotate-key",
        "shop",
        "--projects",
        path(&projects),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let new_key = text(&out.stdout).trim().to_string();
    assert!(new_key.starts_with("pk_") && new_key != key);
    let out = understudy(&["project", "list", "--projects", path(&projects)]);
    assert!(text(&out.stdout).contains("keys: 1 (+1 revoked)"));
    let out = understudy(&[
        "project",
        "rotate-token",
        "nope",
        "--projects",
        path(&projects),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no project named `nope`"));
    let missing = dir.path().join("missing.toml");
    let out = understudy(&["project", "list", "--projects", path(&missing)]);
    assert_eq!(out.status.code(), Some(2));
}

/// A collector process; its stderr lines arrive on `lines`. Killed on drop.
struct Collector {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Collector {
    fn start(extra: &[&str], db: &Path) -> Collector {
        let mut child = Command::new(env!("CARGO_BIN_EXE_understudy"))
            .args(["collect", "--listen", "127.0.0.1:0", "--db", path(db)])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the collector");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut c = Collector {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            lines,
            seen: Vec::new(),
        };
        let line = c.wait_line("listening on http://");
        c.addr = line
            .rsplit("http://")
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        c
    }

    /// Waits (at most 10 s) for a stderr line containing `needle`.
    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {needle:?}; stderr so far: {:#?}", self.seen),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; returns (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = text(&raw);
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn batch(sid: &str, seq: u64) -> String {
    format!(
        r#"{{"v":1,"sid":"{sid}","pvid":"p1","seq":{seq},"events":[{{"k":"custom","t":{T},"name":"identify","data":{{"user":"ann"}}}}]}}"#
    )
}

#[test]
fn sighup_rotates_the_admin_token_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("projects.toml");
    let db = dir.path().join("s.db");
    let (key, token) = add(&projects, "shop", "https://shop.example");
    // Polling off (10 min): only SIGHUP can bring the change in.
    let mut c = Collector::start(
        &[
            "--projects",
            path(&projects),
            "--projects-poll-ms",
            "600000",
        ],
        &db,
    );
    c.wait_line("projects from");
    assert!(
        !c.seen.iter().any(|l| l.contains("WARNING")),
        "{:#?}",
        c.seen
    );
    let addr = c.addr;
    let post = |k: &str| {
        http(
            addr,
            "POST",
            &format!("/v1/batches?key={k}"),
            &[("Origin", "https://shop.example")],
            batch("s-1", 0).as_bytes(),
        )
    };
    assert_eq!(post("pk_wrong").0, 401);
    assert_eq!(post(&key).0, 200);
    let list = |t: &str| {
        http(
            addr,
            "GET",
            "/v1/sessions",
            &[("Authorization", &format!("Bearer {t}"))],
            b"",
        )
        .0
    };
    assert_eq!(list(&token), 200);

    let out = understudy(&[
        "project",
        "rotate-token",
        "shop",
        "--projects",
        path(&projects),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let new_token = text(&out.stdout).trim().to_string();
    assert_eq!(list(&token), 200, "no reload yet");
    c.signal("HUP");
    c.wait_line("SIGHUP: projects file reloaded");
    assert_eq!(list(&token), 401, "the old token is gone");
    assert_eq!(list(&new_token), 200);
    let (status, body) = http(
        c.addr,
        "DELETE",
        "/v1/users/ann",
        &[("Authorization", &format!("Bearer {new_token}"))],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sessions\":1"), "{body}");

    // A broken file on SIGHUP: said so, and the projects in force stay.
    std::fs::write(&projects, "not toml [").unwrap();
    c.signal("HUP");
    c.wait_line("SIGHUP: projects file not reloaded, the previous projects stay in force");
    assert_eq!(list(&new_token), 200);
    assert_eq!(c.child.try_wait().unwrap(), None, "still running");
}

#[test]
fn without_projects_the_collector_warns_that_it_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut c = Collector::start(&[], &db);
    c.wait_line("WARNING: no --projects: this collector is OPEN");
    assert!(c.addr.ip().is_loopback());
    let (status, _) = http(
        c.addr,
        "POST",
        "/v1/batches",
        &[],
        batch("s-1", 0).as_bytes(),
    );
    assert_eq!(status, 200, "open: no key needed");

    // A missing or broken projects file stops the collector before it listens: exit 2.
    let out = understudy(&[
        "collect",
        "--listen",
        "127.0.0.1:0",
        "--db",
        path(&db),
        "--projects",
        path(&dir.path().join("missing.toml")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read projects file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn retain_days_prunes_old_sessions_at_start() {
    use understudy::store::{SessionStore, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut store = SqliteStore::open(&db).unwrap();
    for (sid, age_days) in [("s-old", 91), ("s-recent", 10)] {
        let b = serde_json::from_str(&batch(sid, 0)).unwrap();
        store.put_batch(&b, now - age_days * 86_400_000).unwrap();
    }
    drop(store);
    let mut c = Collector::start(&["--retain-days", "90"], &db);
    c.wait_line("retention: sessions whose last batch is older than 90 days");
    let ids = || -> Vec<String> {
        SqliteStore::open(&db)
            .unwrap()
            .list_sessions()
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    let start = Instant::now();
    while ids().len() != 1 {
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", ids());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ids(), ["s-recent"]);
    let (status, _) = http(
        c.addr,
        "POST",
        "/v1/batches",
        &[],
        batch("s-new", 0).as_bytes(),
    );
    assert_eq!(status, 200);
}
