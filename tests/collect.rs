//! The collector over real HTTP on 127.0.0.1:0 with a real SQLite file: what it stores,
//! what it refuses (status and message), and that it keeps serving after every refusal
//! with nothing partial stored.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use understudy::collect::CollectError;
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
        let store = SqliteStore::open(&self.db).unwrap();
        store
            .list_sessions()
            .unwrap()
            .into_iter()
            .map(|s| {
                let batches = store.session_batches(&s.id).unwrap();
                (s.id, batches)
            })
            .collect()
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
        assert_eq!(
            r.status,
            status,
            "{case}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        let error = r.error();
        assert!(
            error.contains(message),
            "{case}: got {error:?}, want it to contain {message:?}"
        );
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
