//! The collector over real HTTP on 127.0.0.1:0 with a real SQLite file: what it stores,
//! what it refuses (status and message), and that it keeps serving after every refusal
//! with nothing partial stored. With projects: keys, origins, rate limits, admin tokens,
//! forgetting a user (bytes gone from every database file), rotation without a restart,
//! and retention.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use understudy::collect::projects::{ProjectsFile, RateLimit};
use understudy::collect::{Access, CollectError, Limits, Options, Retention};
use understudy::event::Batch;
use understudy::store::{SessionStore, SqliteStore};

const T: i64 = 1_733_300_000_000;
const MIB: usize = 1 << 20;

/// A collector running in this process.
struct Server {
    addr: SocketAddr,
    db: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), CollectError>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("collect.db");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let path = db.clone();
        let task = tokio::spawn(async move {
            understudy::collect::serve(listener, &path, async {
                let _ = stopped.await;
            })
            .await
        });
        Server {
            addr,
            db,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    /// Serves `store` (a connection to `db`, in `dir`) with `options` on a loopback port.
    async fn serve(
        dir: tempfile::TempDir,
        db: PathBuf,
        store: SqliteStore,
        options: Options,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(understudy::collect::serve_with(
            listener,
            store,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            db,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    /// An open collector with other limits than the defaults.
    async fn start_limited(limits: Limits) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("collect.db");
        let store = SqliteStore::open(&db).unwrap();
        let options = Options {
            limits,
            ..Options::default()
        };
        Server::serve(dir, db, store, options).await
    }

    /// A collector with a projects file (polled every 50 ms), a second store connection
    /// for admin requests, and optional retention. `seed` runs on the database
    /// before the collector opens it.
    async fn start_with(
        projects: Option<&Path>,
        retain: Option<Retention>,
        seed: impl FnOnce(&Path),
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("collect.db");
        seed(&db);
        let store = SqliteStore::open(&db).unwrap();
        let admin = SqliteStore::open(&db).unwrap();
        let options = Options {
            limits: Limits::default(),
            access: projects.map(|p| Arc::new(Access::load(p, Duration::from_millis(50)).unwrap())),
            admin_store: Some(Box::new(admin)),
            retain,
        };
        Server::serve(dir, db, store, options).await
    }

    /// Posts a batch with an ingest key and extra headers.
    async fn post_key(&self, key: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut all = vec![("Content-Type", "text/plain")];
        all.extend_from_slice(headers);
        request(
            self.addr,
            "POST",
            &format!("/v1/batches?key={key}"),
            &all,
            body,
        )
        .await
    }

    /// An admin request with a bearer token.
    async fn admin(&self, method: &str, path: &str, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        request(self.addr, method, path, &[("Authorization", &auth)], b"").await
    }

    /// `GET /v1/sessions` with an admin token: the project it names and the session ids.
    async fn listed(&self, token: &str) -> (String, Vec<String>) {
        let r = self.admin("GET", "/v1/sessions", token).await;
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        let listing = r.json();
        let ids = listing["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        (listing["project"].as_str().unwrap().to_string(), ids)
    }

    /// Stops the server gracefully and waits for it.
    async fn stop(mut self) -> tempfile::TempDir {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
        self._dir
    }

    async fn post(&self, body: &[u8]) -> Response {
        request(
            self.addr,
            "POST",
            "/v1/batches",
            &[("Content-Type", "text/plain")],
            body,
        )
        .await
    }

    /// Every session stored so far, read through a second connection.
    fn stored(&self) -> Vec<(String, Vec<Batch>)> {
        common::stored_sessions(&self.db)
    }

    /// The server still answers, and nothing has been stored.
    async fn assert_alive_and_empty(&self, case: &str) {
        let health = request(self.addr, "GET", "/healthz", &[], b"").await;
        assert_eq!(health.status, 200, "{case}: server stopped answering");
        assert!(self.stored().is_empty(), "{case}: something was stored");
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Checks that this answer is `status` with an error message containing `message`,
    /// and returns the message.
    fn refusal(&self, case: &str, status: u16, message: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "{case}: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        let error = self.error();
        assert!(
            error.contains(message),
            "{case}: got {error:?}, want it to contain {message:?}"
        );
        error
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an `error` string")
            .to_string()
    }
}

/// One HTTP/1.1 request on a fresh connection. The body is written concurrently with
/// reading the answer, so a server that answers early (413) is seen as it is.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    send(addr, method, path, headers, Payload::Sized(body.to_vec())).await
}

enum Payload {
    Sized(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, no length announced.
    Chunked(Vec<u8>),
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    payload: Payload,
) -> Response {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let bytes = match payload {
        Payload::Sized(body) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            body
        }
        Payload::Chunked(body) => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let mut out = Vec::with_capacity(body.len() + body.len() / 1000);
            for chunk in body.chunks(64 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
    };
    // Keep the write half open until the answer is read: a half-closed request is
    // treated as an aborted one.
    let (done, read_done) = oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        // The server may stop reading and close early; that is not a test failure.
        if wr.write_all(head.as_bytes()).await.is_ok() {
            let _ = wr.write_all(&bytes).await;
        }
        let _ = read_done.await;
        drop(wr);
    });
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after the answer arrived (server closed with our body unread).
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("no answer from the collector: {e}"),
        }
    }
    drop(done);
    writer.abort();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = response.header("content-length") {
        body.truncate(len.parse().unwrap());
    } else if response
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response { body, ..response }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn batch_json(sid: &str, seq: u64, t: i64) -> String {
    format!(
        r#"{{"v":1,"sid":"{sid}","pvid":"p-{sid}","seq":{seq},"sent":{sent},"events":[
            {{"k":"meta","t":{t},"url":"http://shop.test/p/{seq}","load":"navigate","w":1280,"h":800}},
            {{"k":"click","t":{t1},"id":7,"x":10.5,"y":20,"tgt":{{"tag":"button","path":"main>button","ia":true}}}}
        ]}}"#,
        sent = t + 5,
        t1 = t + 1,
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn status_of(r: &Response) -> String {
    r.json()["status"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_the_capture_script_and_health() {
    let server = Server::start().await;
    let r = request(server.addr, "GET", "/capture.js", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/javascript; charset=utf-8")
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(r.body, understudy::capture::SCRIPT.as_bytes());

    let r = request(server.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"status": "ok"}))
    );

    let r = request(server.addr, "GET", "/nope", &[], b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "no such endpoint");
    let r = request(server.addr, "GET", "/v1/batches", &[], b"").await;
    assert_eq!(r.status, 405);
    assert!(r.error().contains("method not allowed"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_plain_and_gzip_batches_and_reads_them_back() {
    let server = Server::start().await;
    let plain = batch_json("s-plain", 0, T);
    let r = server.post(plain.as_bytes()).await;
    assert_eq!((r.status, status_of(&r)), (200, "stored".into()));

    // What capture.js does: gzip with Content-Type text/plain and no Content-Encoding.
    let zipped = batch_json("s-gzip", 0, T + 10);
    let r = server.post(&gzip(zipped.as_bytes())).await;
    assert_eq!((r.status, status_of(&r)), (200, "stored".into()));

    // And with the encoding announced.
    let announced = batch_json("s-gzip", 1, T + 20);
    let r = request(
        server.addr,
        "POST",
        "/v1/batches",
        &[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
        &gzip(announced.as_bytes()),
    )
    .await;
    assert_eq!((r.status, status_of(&r)), (200, "stored".into()));

    let stored = server.stored();
    let expect = |json: &str| serde_json::from_str::<Batch>(json).unwrap();
    assert_eq!(stored[0], ("s-plain".into(), vec![expect(&plain)]));
    assert_eq!(
        stored[1],
        ("s-gzip".into(), vec![expect(&zipped), expect(&announced)])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_batch_is_stored_once() {
    let server = Server::start().await;
    let body = batch_json("s-dup", 4, T);
    assert_eq!(status_of(&server.post(body.as_bytes()).await), "stored");
    let again = server.post(&gzip(body.as_bytes())).await;
    assert_eq!((again.status, status_of(&again)), (200, "duplicate".into()));
    let stored = server.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_order_batches_read_back_in_order() {
    let server = Server::start().await;
    for seq in [3, 0, 2, 1] {
        let r = server
            .post(batch_json("s-ooo", seq, T + seq as i64 * 100).as_bytes())
            .await;
        assert_eq!(r.status, 200);
    }
    let stored = server.stored();
    let seqs: Vec<u64> = stored[0].1.iter().map(|b| b.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_posts_are_all_stored() {
    let server = Server::start().await;
    let addr = server.addr;
    let posts: Vec<_> = (0..64u64)
        .map(|i| {
            let body = gzip(batch_json(&format!("s-{}", i % 8), i / 8, T + i as i64).as_bytes());
            tokio::spawn(async move {
                request(
                    addr,
                    "POST",
                    "/v1/batches",
                    &[("Content-Type", "text/plain")],
                    &body,
                )
                .await
            })
        })
        .collect();
    for post in posts {
        assert_eq!(post.await.unwrap().status, 200);
    }
    let stored = server.stored();
    assert_eq!(stored.len(), 8);
    assert!(stored.iter().all(|(_, b)| b.iter().map(|b| b.seq).eq(0..8)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_bodies_are_refused_clearly_and_nothing_is_stored() {
    let server = Server::start().await;
    let good = batch_json("s-ok", 0, T);
    let deep_events = format!(
        r#"{{"v":1,"sid":"s","pvid":"p","seq":0,"events":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_data = good.replace(
        r#""load":"navigate""#,
        &format!(
            r#""load":"navigate","extra":{}0{}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    let deep_custom = format!(
        r#"{{"v":1,"sid":"s","pvid":"p","seq":0,"events":[{{"k":"custom","t":{T},"name":"x","data":{}0{}}}]}}"#,
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    let gz = gzip(good.as_bytes());
    let mut invalid_utf8 = good.clone().into_bytes();
    let at = good.find("shop").unwrap();
    invalid_utf8[at] = 0xC3;
    invalid_utf8[at + 1] = 0x28;

    // (case, body, extra headers, status, part of the message)
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("empty body", vec![], vec![], 400, "body is empty"),
        (
            "not JSON",
            b"hello".to_vec(),
            vec![],
            400,
            "malformed batch: expected value",
        ),
        (
            "truncated JSON",
            good.as_bytes()[..good.len() / 2].to_vec(),
            vec![],
            400,
            "malformed batch: EOF while parsing",
        ),
        (
            "two documents",
            format!("{good}{good}").into_bytes(),
            vec![],
            400,
            "malformed batch: trailing characters",
        ),
        (
            "wrong type",
            good.replace(r#""seq":0"#, r#""seq":"0""#).into_bytes(),
            vec![],
            400,
            "malformed batch: invalid type: string \"0\", expected u64",
        ),
        (
            "wrong event field type",
            good.replace(r#""w":1280"#, r#""w":"wide""#).into_bytes(),
            vec![],
            400,
            "malformed batch: invalid type: string \"wide\"",
        ),
        (
            "unknown field",
            good.replace(r#""seq":0"#, r#""seq":0,"admin":true"#)
                .into_bytes(),
            vec![],
            400,
            "malformed batch: unknown field `admin`",
        ),
        (
            "unknown event kind",
            good.replace(r#""k":"click""#, r#""k":"teleport""#)
                .into_bytes(),
            vec![],
            400,
            "malformed batch: unknown variant `teleport`",
        ),
        (
            "missing field",
            good.replace(r#""pvid":"p-s-ok","#, "").into_bytes(),
            vec![],
            400,
            "malformed batch: missing field `pvid`",
        ),
        (
            "wrong version",
            good.replace(r#""v":1"#, r#""v":2"#).into_bytes(),
            vec![],
            400,
            "invalid batch: unsupported schema version 2",
        ),
        (
            "bad session id",
            good.replace(r#""sid":"s-ok""#, r#""sid":"../etc""#)
                .into_bytes(),
            vec![],
            400,
            "invalid batch: field `sid` must be",
        ),
        (
            "no events",
            br#"{"v":1,"sid":"s","pvid":"p","seq":0,"events":[]}"#.to_vec(),
            vec![],
            400,
            "invalid batch: batch has no events",
        ),
        (
            "absurd seq",
            good.replace(r#""seq":0"#, r#""seq":1000000001"#)
                .into_bytes(),
            vec![],
            400,
            "seq 1000000001 is implausible",
        ),
        (
            "seq beyond u64",
            good.replace(r#""seq":0"#, r#""seq":99999999999999999999999"#)
                .into_bytes(),
            vec![],
            400,
            "malformed batch",
        ),
        (
            "seconds not ms",
            good.replace(&format!(r#""t":{T}"#), r#""t":1733300000"#)
                .into_bytes(),
            vec![],
            400,
            "event 0 (meta) timestamp 1733300000 is outside the years 2000..2100",
        ),
        (
            "sent in the future",
            good.replace(&format!(r#""sent":{}"#, T + 5), r#""sent":9999999999999"#)
                .into_bytes(),
            vec![],
            400,
            "`sent` timestamp 9999999999999 is outside",
        ),
        (
            "invalid UTF-8",
            invalid_utf8.clone(),
            vec![],
            400,
            "not valid UTF-8 (first invalid byte at offset",
        ),
        (
            "invalid UTF-8 inside gzip",
            gzip(&invalid_utf8),
            vec![],
            400,
            "not valid UTF-8",
        ),
        (
            "binary garbage",
            (0..=255u8).cycle().take(4096).collect(),
            vec![],
            400,
            "not valid UTF-8",
        ),
        (
            "deeply nested events",
            deep_events.into_bytes(),
            vec![],
            400,
            "JSON is nested too deeply (the limit is 4096 levels)",
        ),
        (
            "deeply nested unknown field",
            deep_data.into_bytes(),
            vec![],
            400,
            "JSON is nested too deeply (the limit is 4096 levels)",
        ),
        (
            "deeply nested custom data",
            deep_custom.into_bytes(),
            vec![],
            400,
            "JSON is nested too deeply (the limit is 4096 levels)",
        ),
        (
            "truncated gzip",
            gz[..gz.len() - 9].to_vec(),
            vec![],
            400,
            "gzip body is truncated or corrupt",
        ),
        (
            "gzip header only",
            gz[..10].to_vec(),
            vec![],
            400,
            "gzip body is truncated or corrupt",
        ),
        (
            "gzip with trailing junk",
            [gz.as_slice(), b"junk"].concat(),
            vec![],
            400,
            "gzip body is truncated or corrupt",
        ),
        (
            "gzip announced, plain sent",
            good.clone().into_bytes(),
            vec![("Content-Encoding", "gzip")],
            400,
            "Content-Encoding is gzip but the body is not gzip data",
        ),
        (
            "unknown encoding",
            gz.clone(),
            vec![("Content-Encoding", "br")],
            415,
            "unsupported Content-Encoding `br`",
        ),
    ];
    for (case, body, extra, status, message) in cases {
        let mut headers = vec![
            ("Content-Type", "text/plain"),
            ("Origin", "http://shop.test"),
        ];
        headers.extend(extra);
        let r = request(server.addr, "POST", "/v1/batches", &headers, &body).await;
        let error = r.refusal(case, status, message);
        assert!(
            error.len() <= 520,
            "{case}: message too long ({} bytes)",
            error.len()
        );
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{case}: the page must be able to read the refusal"
        );
        server.assert_alive_and_empty(case).await;
    }

    // And a good batch still goes in afterwards.
    let r = server.post(good.as_bytes()).await;
    assert_eq!((r.status, status_of(&r)), (200, "stored".into()));
    assert_eq!(server.stored().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_refused_with_413() {
    let server = Server::start().await;
    let huge = vec![b' '; 20 * MIB];

    let r = server.post(&huge).await;
    assert_eq!(r.status, 413, "announced 20 MiB");
    assert_eq!(r.error(), "request body is larger than 1048576 bytes");
    server.assert_alive_and_empty("announced 20 MiB").await;

    let r = send(
        server.addr,
        "POST",
        "/v1/batches",
        &[("Content-Type", "text/plain")],
        Payload::Chunked(huge),
    )
    .await;
    assert_eq!(r.status, 413, "chunked 20 MiB");
    assert_eq!(r.error(), "request body is larger than 1048576 bytes");
    server.assert_alive_and_empty("chunked 20 MiB").await;

    // 100 MiB of zeros inflate from about 100 KiB: a gzip bomb.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; MIB];
    for _ in 0..100 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(
        bomb.len() < MIB,
        "the bomb must pass the wire limit ({} bytes)",
        bomb.len()
    );
    let r = server.post(&bomb).await;
    assert_eq!(r.status, 413, "gzip bomb");
    assert_eq!(r.error(), "decompressed body is larger than 8388608 bytes");
    server.assert_alive_and_empty("gzip bomb").await;

    // Still serving.
    let r = server.post(batch_json("s-after", 0, T).as_bytes()).await;
    assert_eq!(r.status, 200);
    server.stop().await;
}

/// Bodies count against a memory budget from the moment they start to arrive: once
/// connections that declared big bodies (and send them slowly) fill it, a post is answered
/// 503 with `Retry-After` at once instead of being buffered too. When those bodies are
/// given up, posts go through again; nothing partial is stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_big_slow_bodies_is_shed_with_503() {
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        max_buffered_bytes: 3 * 64 * 1024,
        ..Limits::default()
    };
    let server = Server::start_limited(limits).await;
    // Four connections declare a 64 KiB body each and send its first bytes only: three
    // fit the budget and wait for the rest, the fourth is refused at once.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(
            b"POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
              Content-Length: 65536\r\n\r\n{\"v\":1,",
        )
        .await
        .unwrap();
        slow.push(s);
    }
    let answers = futures::future::join_all(slow.iter_mut().map(|s| async {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).to_lowercase()),
            _ => None,
        }
    }))
    .await;
    let refused: Vec<&String> = answers.iter().flatten().collect();
    assert_eq!(refused.len(), 1, "one refusal: {answers:?}");
    assert!(refused[0].starts_with("http/1.1 503"), "{}", refused[0]);
    assert!(refused[0].contains("retry-after: 1\r\n"), "{}", refused[0]);
    assert!(refused[0].contains("the collector is receiving too much at once; retry later"));

    // The budget is still full: a small post is refused too, and nothing is stored.
    let r = server.post(batch_json("s-probe", 0, T).as_bytes()).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(
        r.error(),
        "the collector is receiving too much at once; retry later"
    );
    assert!(server.stored().is_empty());

    drop(slow);
    let body = batch_json("s-after", 0, T);
    within_5s("posts go through again", async || {
        server.post(body.as_bytes()).await.status == 200
    })
    .await;
    let sids: Vec<String> = server.stored().into_iter().map(|(sid, _)| sid).collect();
    assert_eq!(sids, ["s-after"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_origin_pages_can_post() {
    let server = Server::start().await;
    let r = request(
        server.addr,
        "OPTIONS",
        "/v1/batches",
        &[
            ("Origin", "http://shop.test:8080"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type,content-encoding",
            ),
        ],
        b"",
    )
    .await;
    assert!(
        r.status == 200 || r.status == 204,
        "preflight status {}",
        r.status
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let methods = r
        .header("access-control-allow-methods")
        .unwrap()
        .to_ascii_uppercase();
    for m in ["GET", "POST", "OPTIONS"] {
        assert!(methods.contains(m), "allow-methods {methods:?} lacks {m}");
    }
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("content-type") && allowed.contains("content-encoding"),
        "{allowed}"
    );

    let r = request(
        server.addr,
        "POST",
        "/v1/batches",
        &[
            ("Origin", "http://shop.test:8080"),
            ("Content-Type", "text/plain"),
        ],
        batch_json("s-cors", 0, T).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    let r = request(
        server.addr,
        "GET",
        "/capture.js",
        &[("Origin", "http://shop.test:8080")],
        b"",
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_stop_keeps_everything_acknowledged() {
    let server = Server::start().await;
    for seq in 0..5 {
        assert_eq!(
            server
                .post(batch_json("s-keep", seq, T + seq as i64).as_bytes())
                .await
                .status,
            200
        );
    }
    let db = server.db.clone();
    let addr = server.addr;
    let dir = server.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still listening after stop"
    );
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.session_batches("s-keep").unwrap().len(), 5);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn store_failure_answers_503_and_keeps_serving() {
    let server = Server::start().await;
    assert_eq!(
        server.post(batch_json("s-1", 0, T).as_bytes()).await.status,
        200
    );

    // Break the database under the collector's feet: a real SQLite failure, no mock.
    let conn = rusqlite::Connection::open(&server.db).unwrap();
    conn.execute_batch("DROP TABLE batches").unwrap();
    drop(conn);

    let r = server.post(batch_json("s-1", 1, T + 1).as_bytes()).await;
    assert_eq!(r.status, 503);
    let error = r.error();
    assert!(
        error.starts_with("the session store is unavailable, retry later: ")
            && error.contains("no such table: batches"),
        "{error}"
    );
    let health = request(server.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(health.status, 200, "the writer survives a failed write");
    let r = server.post(b"not json").await;
    assert_eq!(r.status, 400, "and requests are still answered");
    server.stop().await;
}

/// A projects file with three projects: `shop` (https://shop.test, its first key revoked),
/// `blog` (http://blog.test:8080) and `tiny` (any origin, a batch every 2 s, burst 2).
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    file: ProjectsFile,
    shop_key: String,
    shop_old_key: String,
    shop_token: String,
    blog_key: String,
    blog_token: String,
    tiny_key: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("projects.toml");
    let mut file = ProjectsFile::default();
    let shop = file
        .add_project("shop", &["https://shop.test".into()], None)
        .unwrap();
    let shop_key = file.rotate_key("shop", false).unwrap();
    let blog = file
        .add_project("blog", &["http://blog.test:8080".into()], None)
        .unwrap();
    let tiny = file
        .add_project(
            "tiny",
            &["*".into()],
            Some(RateLimit {
                per_second: 0.5,
                burst: 2,
            }),
        )
        .unwrap();
    file.save(&path).unwrap();
    Fixture {
        _dir: dir,
        path,
        file,
        shop_key,
        shop_old_key: shop.key.unwrap(),
        shop_token: shop.admin_token.unwrap(),
        blog_key: blog.key.unwrap(),
        blog_token: blog.admin_token.unwrap(),
        tiny_key: tiny.key.unwrap(),
    }
}

/// A batch in which the page identified `user`, with a note.
fn identify_json(sid: &str, seq: u64, user: &str, note: &str) -> String {
    format!(
        r#"{{"v":1,"sid":"{sid}","pvid":"p-{sid}","seq":{seq},"events":[
            {{"k":"meta","t":{T},"url":"http://shop.test/account","load":"navigate","w":1280,"h":800}},
            {{"k":"custom","t":{t1},"name":"identify","data":{{"user":"{user}"}}}},
            {{"k":"custom","t":{t2},"name":"note","data":{{"text":"{note}"}}}}
        ]}}"#,
        t1 = T + 1,
        t2 = T + 2,
    )
}

const SHOP: (&str, &str) = ("Origin", "https://shop.test");
const BLOG: (&str, &str) = ("Origin", "http://blog.test:8080");

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_origins_are_checked_before_anything_is_stored() {
    let f = fixture();
    let server = Server::start_with(Some(&f.path), None, |_| {}).await;
    let good = batch_json("s-shop", 0, T);
    let key = format!("?key={}", f.shop_key);

    // (case, query, origin, status, part of the message)
    type Case<'a> = (&'a str, String, Option<&'a str>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("no key", String::new(), Some("https://shop.test"), 401, "missing ingest key: post to /v1/batches?key=pk_"),
        ("empty key", "?key=".into(), Some("https://shop.test"), 401, "missing ingest key"),
        ("key under another name", format!("?k={}", f.shop_key), Some("https://shop.test"), 401, "missing ingest key"),
        ("unknown key", "?key=pk_0123456789abcdef".into(), Some("https://shop.test"), 401, "unknown ingest key"),
        ("huge key", format!("?key={}", "k".repeat(4000)), Some("https://shop.test"), 401, "unknown ingest key"),
        ("admin token as key", format!("?key={}", f.shop_token), Some("https://shop.test"), 401, "unknown ingest key"),
        ("revoked key", format!("?key={}", f.shop_old_key), Some("https://shop.test"), 403, "ingest key revoked: project `shop` has a new key"),
        ("disallowed origin", key.clone(), Some("https://evil.test"), 403, "origin `https://evil.test` may not send sessions to project `shop`; add it to the project's origins"),
        ("look-alike origin", key.clone(), Some("https://shop.test.evil.test"), 403, "origin `https://shop.test.evil.test` may not send"),
        ("http instead of https", key.clone(), Some("http://shop.test"), 403, "origin `http://shop.test` may not send"),
        ("other port", key.clone(), Some("https://shop.test:8443"), 403, "origin `https://shop.test:8443` may not send"),
        ("opaque origin", key.clone(), Some("null"), 403, "origin `null` may not send"),
        ("non-ASCII origin", key.clone(), Some("https://bücher.test"), 403, "origin `https://bücher.test` may not send"),
        ("another project's origin", key.clone(), Some("http://blog.test:8080"), 403, "may not send sessions to project `shop`"),
        ("another project's key", format!("?key={}", f.blog_key), Some("https://shop.test"), 403, "origin `https://shop.test` may not send sessions to project `blog`"),
    ];
    for (case, query, origin, status, message) in cases {
        let mut headers = vec![("Content-Type", "text/plain")];
        headers.extend(origin.map(|o| ("Origin", o)));
        let path = format!("/v1/batches{query}");
        let r = request(server.addr, "POST", &path, &headers, good.as_bytes()).await;
        r.refusal(case, status, message);
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "{case}: only allowed origins get CORS headers"
        );
        server.assert_alive_and_empty(case).await;
    }

    // A refused preflight gets no CORS headers either; an allowed one does.
    let preflight = |query: String, origin: &'static str| {
        let addr = server.addr;
        async move {
            let path = format!("/v1/batches{query}");
            request(
                addr,
                "OPTIONS",
                &path,
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "content-type"),
                ],
                b"",
            )
            .await
        }
    };
    let r = preflight(key.clone(), "https://evil.test").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = preflight(String::new(), "https://shop.test").await;
    assert_eq!(r.status, 401);
    let r = preflight(key.clone(), "https://shop.test").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.test")
    );
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));

    // Admitted, but a hostile body: refused as in the open collector, and the page may
    // read the refusal.
    let r = server.post_key(&f.shop_key, &[SHOP], b"hello").await;
    assert_eq!(r.status, 400);
    assert!(r.error().starts_with("malformed batch"), "{}", r.error());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.test")
    );
    server.assert_alive_and_empty("hostile body").await;

    // The right key from an allowed origin is stored; the answer is readable by that
    // origin only.
    let r = server.post_key(&f.shop_key, &[SHOP], good.as_bytes()).await;
    assert_eq!((r.status, status_of(&r)), (200, "stored".into()));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.test")
    );
    assert!(r.header("vary").unwrap().contains("Origin"));
    // A sender that is not a browser (no Origin) needs the key all the same.
    let r = server
        .post_key(&f.shop_key, &[], batch_json("s-shop", 1, T + 10).as_bytes())
        .await;
    assert_eq!((r.status, status_of(&r)), (200, "stored".into()));
    assert_eq!(r.header("access-control-allow-origin"), None);

    // The session is shop's now: another project's key cannot add to it.
    let r = server
        .post_key(
            &f.blog_key,
            &[BLOG],
            batch_json("s-shop", 2, T + 20).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.error(),
        "session `s-shop` belongs to another project; this key cannot add to it"
    );
    let stored = server.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1.len(), 2, "nothing added by the other project");
    let owner = SqliteStore::open(&server.db)
        .unwrap()
        .session_project("s-shop")
        .unwrap();
    assert_eq!(owner.as_deref(), Some("shop"));
    server.stop().await;
}

/// A forget run by another process next to a running collector (`understudy sessions
/// forget --db`; here a second store connection) deletes a session and its claim. The
/// project's next batch to that session claims it again, in the transaction that stores
/// it: the session stays listed for its project and closed to every other.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_forgotten_by_another_process_is_claimed_again() {
    let f = fixture();
    let server = Server::start_with(Some(&f.path), None, |_| {}).await;
    let ann = identify_json("s-again", 0, "ann", "hi");
    let r = server.post_key(&f.shop_key, &[SHOP], ann.as_bytes()).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    {
        let mut cli = SqliteStore::open(&server.db).unwrap();
        assert_eq!(cli.forget_user("ann", None).unwrap().sessions, 1);
        assert_eq!(cli.session_project("s-again").unwrap(), None);
    }
    let next = batch_json("s-again", 1, T + 50);
    let r = server.post_key(&f.shop_key, &[SHOP], next.as_bytes()).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let owner = SqliteStore::open(&server.db)
        .unwrap()
        .session_project("s-again")
        .unwrap();
    assert_eq!(owner.as_deref(), Some("shop"));
    assert_eq!(
        server.listed(&f.shop_token).await,
        ("shop".to_string(), vec!["s-again".to_string()])
    );

    let intruder = batch_json("s-again", 2, T + 60);
    let r = server
        .post_key(&f.blog_key, &[BLOG], intruder.as_bytes())
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.error(),
        "session `s-again` belongs to another project; this key cannot add to it"
    );
    let r = server
        .admin("GET", "/v1/sessions/s-again", &f.blog_token)
        .await;
    assert_eq!(r.status, 404);
    let stored = server.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1.len(), 1, "only the batch sent after the forget");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_answers_429_with_retry_after() {
    let f = fixture();
    let server = Server::start_with(Some(&f.path), None, |_| {}).await;
    let origin = ("Origin", "https://anywhere.test");
    for seq in 0..2 {
        let body = batch_json("s-tiny", seq, T + seq as i64);
        let r = server
            .post_key(&f.tiny_key, &[origin], body.as_bytes())
            .await;
        assert_eq!(r.status, 200, "within the burst");
    }
    let started = Instant::now();
    let r = server
        .post_key(
            &f.tiny_key,
            &[origin],
            batch_json("s-tiny", 2, T + 2).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(
        r.error(),
        "rate limit of project `tiny` exceeded (0.5 batches/s, burst 2); retry after 2 s"
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://anywhere.test"),
        "the page must see the 429 to back off"
    );
    assert_eq!(
        server.stored()[0].1.len(),
        2,
        "the refused batch is not stored"
    );
    // Other keys have buckets of their own.
    let r = server
        .post_key(&f.shop_key, &[SHOP], batch_json("s-shop", 0, T).as_bytes())
        .await;
    assert_eq!(r.status, 200);
    // After Retry-After the key may send again.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
    let r = server
        .post_key(
            &f.tiny_key,
            &[origin],
            batch_json("s-tiny", 2, T + 2).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints_need_a_token_and_see_only_its_project() {
    let f = fixture();
    let server = Server::start_with(Some(&f.path), None, |_| {}).await;
    for (key, origin, sid, user) in [
        (&f.shop_key, SHOP, "s-shop-ann", "ann"),
        (&f.shop_key, SHOP, "s-shop-bob", "bob"),
        (&f.blog_key, BLOG, "s-blog-ann", "ann"),
    ] {
        let r = server
            .post_key(key, &[origin], identify_json(sid, 0, user, "hi").as_bytes())
            .await;
        assert_eq!(r.status, 200);
    }
    let r = server
        .post_key(
            &f.shop_key,
            &[SHOP],
            batch_json("s-shop-ann", 1, T + 50).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200);

    // (case, method, path, Authorization, status, message)
    let shop_auth = format!("Bearer {}", f.shop_token);
    let key_auth = format!("Bearer {}", f.shop_key);
    let cases = [
        (
            "no token",
            "GET",
            "/v1/sessions",
            None,
            401,
            "missing admin token",
        ),
        (
            "not a bearer",
            "GET",
            "/v1/sessions",
            Some("Basic c2hvcDpzZWNyZXQ="),
            401,
            "missing admin token",
        ),
        (
            "unknown token",
            "GET",
            "/v1/sessions",
            Some("Bearer sk_nope"),
            401,
            "invalid admin token",
        ),
        (
            "ingest key as token",
            "GET",
            "/v1/sessions",
            Some(key_auth.as_str()),
            401,
            "invalid admin token",
        ),
        (
            "forget without token",
            "DELETE",
            "/v1/users/ann",
            None,
            401,
            "missing admin token",
        ),
        (
            "export without token",
            "GET",
            "/v1/sessions/s-shop-ann",
            None,
            401,
            "missing admin token",
        ),
        (
            "another project's session",
            "GET",
            "/v1/sessions/s-blog-ann",
            Some(shop_auth.as_str()),
            404,
            "no session with id `s-blog-ann` in project `shop`",
        ),
        (
            "unknown session",
            "GET",
            "/v1/sessions/s-nope",
            Some(shop_auth.as_str()),
            404,
            "no session with id `s-nope` in project `shop`",
        ),
        (
            "user id too long",
            "DELETE",
            &format!("/v1/users/{}", "u".repeat(600)),
            Some(shop_auth.as_str()),
            400,
            "user id must be 1..=512 bytes",
        ),
    ];
    for (case, method, path, auth, status, message) in cases {
        let mut headers = vec![SHOP];
        headers.extend(auth.map(|a| ("Authorization", a)));
        let r = request(server.addr, method, path, &headers, b"").await;
        assert_eq!(
            r.status,
            status,
            "{case}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.error().contains(message), "{case}: {}", r.error());
        if status == 401 {
            assert!(
                r.header("www-authenticate").unwrap().starts_with("Bearer"),
                "{case}"
            );
        }
        assert_eq!(r.header("access-control-allow-origin"), None, "{case}");
    }
    assert_eq!(
        server.stored().len(),
        3,
        "nothing deleted by refused requests"
    );

    // Listing: only shop's sessions.
    let (project, listed) = server.listed(&f.shop_token).await;
    assert_eq!(project, "shop");
    assert_eq!(listed, ["s-shop-ann", "s-shop-bob"]);

    // Export: NDJSON, the batches as stored.
    let r = server
        .admin("GET", "/v1/sessions/s-shop-ann", &f.shop_token)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(r.body.clone()).unwrap();
    let lines: Vec<Batch> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        SqliteStore::open(&server.db)
            .unwrap()
            .session_batches("s-shop-ann")
            .unwrap()
    );
    assert_eq!(lines.len(), 2);

    // Forget ann with shop's token: shop's ann session goes, blog's stays.
    let r = server.admin("DELETE", "/v1/users/ann", &f.shop_token).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json(),
        serde_json::json!({"user": "ann", "project": "shop", "sessions": 1, "batches": 2, "events": 5})
    );
    let ids: Vec<String> = server.stored().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["s-blog-ann", "s-shop-bob"]);
    // Forgetting again finds nothing; blog's token forgets blog's ann.
    let r = server.admin("DELETE", "/v1/users/ann", &f.shop_token).await;
    assert_eq!(r.json()["sessions"], 0);
    let r = server.admin("DELETE", "/v1/users/ann", &f.blog_token).await;
    assert_eq!(r.json()["sessions"], 1);
    let ids: Vec<String> = server.stored().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["s-shop-bob"]);
    // Percent-encoded user ids arrive decoded.
    let r = server
        .post_key(
            &f.shop_key,
            &[SHOP],
            identify_json("s-shop-eve", 0, "eve smith", "x").as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = server
        .admin("DELETE", "/v1/users/eve%20smith", &f.shop_token)
        .await;
    assert_eq!(r.json()["sessions"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints_are_off_without_projects() {
    let server = Server::start().await;
    assert_eq!(
        server
            .post(identify_json("s-1", 0, "ann", "x").as_bytes())
            .await
            .status,
        200
    );
    for (method, path) in [
        ("DELETE", "/v1/users/ann"),
        ("GET", "/v1/sessions"),
        ("GET", "/v1/sessions/s-1"),
    ] {
        let r = server.admin(method, path, "sk_anything").await;
        assert_eq!(r.status, 403, "{method} {path}");
        assert!(
            r.error()
                .starts_with("admin endpoints are off: this collector runs without --projects"),
            "{}",
            r.error()
        );
    }
    assert_eq!(server.stored().len(), 1);
    server.stop().await;
}

/// Occurrences of `needle` in every file of `dir` (the database, `-wal`, `-shm`).
fn grep_dir(dir: &Path, needle: &[u8]) -> Vec<(String, usize)> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let n = bytes.windows(needle.len()).filter(|w| *w == needle).count();
        hits.push((path.file_name().unwrap().to_string_lossy().into_owned(), n));
    }
    hits.sort();
    hits
}

#[tokio::test(flavor = "multi_thread")]
async fn forgotten_user_leaves_no_bytes_in_any_database_file() {
    let f = fixture();
    let server = Server::start_with(Some(&f.path), None, |_| {}).await;
    let dir = server.db.parent().unwrap().to_path_buf();
    // Other people's sessions around the forgotten one, sharing its pages.
    for i in 0..40 {
        let body = identify_json(
            &format!("s-keep-{i}"),
            0,
            &format!("u{i}"),
            &"k".repeat(200),
        );
        assert_eq!(
            server
                .post_key(&f.shop_key, &[SHOP], body.as_bytes())
                .await
                .status,
            200
        );
    }
    let user = "CANARY-user-8c2f";
    let note = "CANARY-note-41d7 ".repeat(300);
    for seq in 0..3 {
        let body = identify_json("s-canary", seq, user, &note);
        let r = server
            .post_key(&f.shop_key, &[SHOP], &gzip(body.as_bytes()))
            .await;
        assert_eq!(r.status, 200);
    }
    let total = |needle: &[u8]| grep_dir(&dir, needle).iter().map(|(_, n)| n).sum::<usize>();
    assert!(total(user.as_bytes()) > 0, "the canary is on disk before");
    assert!(total(b"CANARY-note") > 0);

    let r = server
        .admin("DELETE", &format!("/v1/users/{user}"), &f.shop_token)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sessions"], 1);
    assert_eq!(r.json()["batches"], 3);

    // While the collector still runs with both connections open: db, -wal, -shm.
    let files = grep_dir(&dir, user.as_bytes());
    assert!(
        files.iter().any(|(name, _)| name.ends_with("-wal")),
        "the WAL is there to be checked: {files:?}"
    );
    for needle in [user.as_bytes(), b"CANARY-note".as_slice()] {
        let hits = grep_dir(&dir, needle);
        assert!(
            hits.iter().all(|(_, n)| *n == 0),
            "{} still on disk: {hits:?}",
            String::from_utf8_lossy(needle)
        );
    }
    assert_eq!(server.stored().len(), 40);
    let r = server
        .post_key(&f.shop_key, &[SHOP], batch_json("s-after", 0, T).as_bytes())
        .await;
    assert_eq!(r.status, 200, "still serving");
    let dir_kept = server.stop().await;
    for needle in [user.as_bytes(), b"CANARY-note".as_slice()] {
        let hits = grep_dir(dir_kept.path(), needle);
        assert!(hits.iter().all(|(_, n)| *n == 0), "after stop: {hits:?}");
    }
}

/// Polls `f` every 20 ms until it is true, for at most 5 s.
async fn within_5s(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_tokens_and_keys_take_effect_without_a_restart() {
    let mut f = fixture();
    let server = Server::start_with(Some(&f.path), None, |_| {}).await;
    let list = async |token: &str| server.admin("GET", "/v1/sessions", token).await.status;
    assert_eq!(list(&f.shop_token).await, 200);

    let new_token = f.file.rotate_token("shop", false).unwrap();
    let new_key = f.file.rotate_key("shop", false).unwrap();
    f.file.save(&f.path).unwrap();
    within_5s("the old token stops working", async || {
        list(&f.shop_token).await == 401
    })
    .await;
    assert_eq!(list(&new_token).await, 200);
    assert_eq!(
        list(&f.blog_token).await,
        200,
        "other projects are untouched"
    );
    let r = server
        .post_key(&f.shop_key, &[SHOP], batch_json("s-1", 0, T).as_bytes())
        .await;
    assert_eq!(r.status, 403);
    assert!(r.error().starts_with("ingest key revoked"), "{}", r.error());
    let r = server
        .post_key(&new_key, &[SHOP], batch_json("s-1", 0, T).as_bytes())
        .await;
    assert_eq!(r.status, 200);

    // A broken edit is not taken: the projects in force stay.
    std::fs::write(&f.path, "[[project]\nname = ").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(list(&new_token).await, 200);
    // Fixed again, with a token kept alongside: both work.
    let extra = f.file.rotate_token("shop", true).unwrap();
    f.file.save(&f.path).unwrap();
    within_5s("the added token works", async || list(&extra).await == 200).await;
    assert_eq!(list(&new_token).await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_sessions_whose_last_batch_is_old() {
    let day: i64 = 86_400_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let seed = |db: &Path| {
        let mut store = SqliteStore::open(db).unwrap();
        let b =
            |sid: &str, seq: u64| serde_json::from_str::<Batch>(&batch_json(sid, seq, T)).unwrap();
        // Received 40 and 31 days ago: past a 30-day limit.
        store.put_batch(&b("s-old", 0), now - 40 * day).unwrap();
        store.put_batch(&b("s-old", 1), now - 31 * day).unwrap();
        // Began 40 days ago but still active yesterday: kept.
        store.put_batch(&b("s-live", 0), now - 40 * day).unwrap();
        store.put_batch(&b("s-live", 1), now - day).unwrap();
        store.put_batch(&b("s-new", 0), now).unwrap();
    };
    let retention = Retention {
        max_age: Duration::from_secs(30 * 86_400),
        every: Duration::from_millis(100),
    };
    let server = Server::start_with(None, Some(retention), seed).await;
    let ids = || -> Vec<String> { server.stored().into_iter().map(|(id, _)| id).collect() };
    within_5s("the old session is pruned at start", async || {
        ids().len() == 2
    })
    .await;
    assert_eq!(ids(), ["s-live", "s-new"]);
    assert_eq!(server.stored()[0].1.len(), 2);
    // New batches keep flowing while retention runs.
    assert_eq!(
        server
            .post(batch_json("s-now", 0, T).as_bytes())
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ids(), ["s-live", "s-new", "s-now"]);
    server.stop().await;
}
