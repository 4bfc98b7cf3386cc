//! Property-based fuzzing of the two doors untrusted bytes come in by: the collector's
//! batch decoder ([`decode::decode_body`]) and the NDJSON importer
//! (`understudy sessions import`, the real binary).
//!
//! Inputs: arbitrary bytes; gzip of arbitrary bytes; valid batches (hand-written and the
//! synthetic shop's realistic ones) mutated byte-wise and token-wise, before or after gzip;
//! and random JSON built from the wire format's own field names. Properties:
//! * the decoder never panics, and every refusal maps to a 4xx; the collector's quick path
//!   for small bodies refuses and accepts exactly as it does, or leaves the body to it;
//! * whatever it accepts is a valid, plausible batch that survives a round trip through
//!   JSON and is storable as is (the store does not refuse it afterwards);
//! * the importer never panics (exit 0 or 2, never 101), accepts a file exactly when every
//!   non-blank line is a batch the decoder accepts, and on refusal leaves the database
//!   exactly as it was (nothing partial).
//!
//! Cases per property: `PROPTEST_CASES` (default 256). Longer runs, e.g.
//! `PROPTEST_CASES=20000 cargo test --release --test fuzz`.

mod common;

use std::io::Write as _;
use std::process::Command;
use std::sync::OnceLock;

use proptest::prelude::*;
use understudy::collect::decode::{self, DecodeError};
use understudy::collect::ApiError;
use understudy::event::Batch;
use understudy::store::{SessionStore, SqliteStore};

const MIB: usize = 1 << 20;
/// Limits used for every decode: the collector's defaults, but a small inflated limit so
/// that the "too large" paths are reached by small inputs too.
const MAX_BODY: usize = MIB;
const MAX_DECODED: usize = 64 * 1024;
const T: i64 = 1_733_300_000_000;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Valid batches as JSON text: hand-written ones covering every event kind, and a few of
/// the synthetic shop's (snapshots, mutations, targets).
fn templates() -> &'static [String] {
    static T_: OnceLock<Vec<String>> = OnceLock::new();
    T_.get_or_init(|| {
        let mut out = vec![
            format!(r#"{{"v":1,"sid":"s1","pvid":"p1","seq":0,"events":[{{"k":"vis","t":{T},"hidden":true}}]}}"#),
            format!(
                r#"{{"v":1,"sid":"s-2","pvid":"p_2","seq":7,"sent":{},"events":[
                {{"k":"meta","t":{T},"url":"https://a.example/x","load":"navigate","w":800,"h":600,"dpr":2.5,"touch":true,"script":"1"}},
                {{"k":"custom","t":{T},"name":"identify","data":{{"user":"ann","n":[1,2.5,null,{{"x":"\u00e9\ud83d\ude00"}}]}}}},
                {{"k":"scroll","t":{T},"id":0,"x":0,"y":120.5}},
                {{"k":"resize","t":{T},"w":400,"h":300}}
                ]}}"#,
                T + 5
            ),
        ];
        for (i, session) in understudy::bench::synth::sessions(4, 11).into_iter().enumerate() {
            for b in session.into_iter().skip(i).step_by(2).take(3) {
                out.push(serde_json::to_string(&b).unwrap());
            }
        }
        for t in &out {
            decode::parse_batch(t.as_bytes()).expect("templates are valid");
            assert!(t.len() < MAX_DECODED / 2, "template of {} bytes", t.len());
        }
        out
    })
}

/// Byte strings worth splicing into JSON.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b",",
    b":",
    b"null",
    b"true",
    b"-",
    b"0",
    b"-0",
    b"1e309",
    b"-1",
    b"18446744073709551616",
    b"9223372036854775808",
    b"1.5",
    b"\\u0000",
    b"\\ud800",
    b"\\uDFFF\\uD800",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\x00",
    b"\"k\":\"snap\"",
    b"\"k\":\"nope\"",
    b"\"seq\":",
    b"\"t\":",
    b"\"events\":[]",
    b"\"node\":{\"id\":1,\"nt\":1}",
    b"[[[[[[[[[[[[[[[[",
    b"]]]]]]]]",
    b"{\"a\":{\"a\":{\"a\":",
    b"\"\"",
    b" ",
    b"\n",
    b"\t",
];

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Flip { at, byte }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Insert { at, token }),
        (any::<usize>(), 1usize..256).prop_map(|(at, len)| Edit::Duplicate { at, len }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let n = bytes.len();
        let pos = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
        match *e {
            Edit::Flip { at, byte } if n > 0 => bytes[at % n] = byte,
            Edit::Flip { .. } => {}
            Edit::Delete { at, len } => {
                let a = pos(at);
                bytes.drain(a..(a + len).min(n));
            }
            Edit::Insert { at, token } => {
                let a = pos(at);
                bytes.splice(a..a, TOKENS[token].iter().copied());
            }
            Edit::Duplicate { at, len } => {
                let a = pos(at);
                let part: Vec<u8> = bytes[a..(a + len).min(n)].to_vec();
                bytes.splice(a..a, part);
            }
            Edit::Truncate { at } => bytes.truncate(pos(at)),
        }
    }
}

/// A valid batch mutated: as plain JSON, gzip'd after the edits, or edited after gzip.
fn mutated_body() -> impl Strategy<Value = Vec<u8>> {
    (
        0..templates().len(),
        proptest::collection::vec(edit(), 1..6),
        0u8..3,
    )
        .prop_map(|(t, edits, mode)| {
            let plain = templates()[t].as_bytes().to_vec();
            match mode {
                0 => {
                    let mut b = plain;
                    apply(&mut b, &edits);
                    b
                }
                1 => {
                    let mut b = plain;
                    apply(&mut b, &edits);
                    gzip(&b)
                }
                _ => {
                    let mut b = gzip(&plain);
                    apply(&mut b, &edits);
                    b
                }
            }
        })
}

/// Random JSON whose keys and string values come from the wire format's vocabulary, so
/// that the decoder gets past the first field more often than with random bytes.
fn wire_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    const KEYS: &[&str] = &[
        "v", "sid", "pvid", "seq", "sent", "events", "k", "t", "node", "id", "nt", "tag", "a", "x",
        "c", "url", "load", "w", "h", "hidden", "name", "data", "adds", "rems", "p", "n", "target",
        "kind", "user", "shadow", "frame", "tpl", "excl",
    ];
    const WORDS: &[&str] = &[
        "vis", "meta", "snap", "mut", "click", "input", "custom", "net", "err", "navigate", "s1",
        "p1", "identify", "", "div",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (T - 5..T + 5).prop_map(Value::from),
        (0u64..3).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0..WORDS.len()).prop_map(|i| Value::from(WORDS[i])),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((0..KEYS.len(), inner), 0..8).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (KEYS[k].to_string(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// A JSON batch whose events are random wire-ish JSON.
fn wire_batch() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(wire_json(), 0..4),
        0u64..3,
        any::<bool>(),
    )
        .prop_map(|(events, seq, zipped)| {
            let b = serde_json::json!({"v": 1, "sid": "s1", "pvid": "p1", "seq": seq, "events": events});
            let text = serde_json::to_vec(&b).unwrap();
            if zipped {
                gzip(&text)
            } else {
                text
            }
        })
}

fn encoding() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some("gzip".to_string())),
        1 => Just(Some("identity".to_string())),
        1 => Just(Some("br".to_string())),
        1 => "[ -~]{0,8}".prop_map(Some),
    ]
}

/// A store for "accepted batches are storable"; one per test thread.
fn with_store<R>(f: impl FnOnce(&mut SqliteStore) -> R) -> R {
    thread_local! {
        static STORE: std::cell::RefCell<Option<(tempfile::TempDir, SqliteStore)>> =
            const { std::cell::RefCell::new(None) };
    }
    STORE.with(|s| {
        let mut s = s.borrow_mut();
        let (_, store) = s.get_or_insert_with(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(&dir.path().join("fuzz.db")).unwrap();
            (dir, store)
        });
        f(store)
    })
}

/// Largest JSON text the collector decodes where a request arrives, in these tests: small,
/// so that inputs fall on both sides of it.
const DECODE_HERE: usize = 2048;

/// The decoder's contract on one input; and the collector's quick path for small bodies
/// (`decode_small_body`) either leaves the body to the full decoder or answers as it does.
fn check_decode(body: &[u8], enc: Option<&str>) -> Result<(), TestCaseError> {
    let full = decode::decode_body(body, enc, MAX_BODY, MAX_DECODED);
    match (
        decode::decode_small_body(body, enc, MAX_BODY, MAX_DECODED, DECODE_HERE),
        &full,
    ) {
        (Ok(None), _) => {}
        (Ok(Some(here)), Ok(batch)) => prop_assert_eq!(&here, batch),
        (Err(here), Err(err)) => prop_assert_eq!(here.to_string(), err.to_string()),
        (here, full) => prop_assert!(false, "decoded here: {here:?}; in full: {full:?}"),
    }
    match full {
        Ok(batch) => check_accepted(&batch),
        Err(err) => check_refusal(err),
    }
}

fn check_refusal(err: DecodeError) -> Result<(), TestCaseError> {
    let message = err.to_string();
    let status = ApiError::from(err).status;
    prop_assert!(status.is_client_error(), "{status} for {message}");
    prop_assert!(!message.is_empty());
    Ok(())
}

fn check_accepted(batch: &Batch) -> Result<(), TestCaseError> {
    prop_assert!(batch.validate().is_ok());
    prop_assert!(decode::check_plausible(batch).is_ok());
    let again = understudy::event::to_json(batch).unwrap();
    let back = decode::parse_batch(again.as_bytes());
    prop_assert!(back.is_ok(), "re-encoded batch refused: {:?}", back.err());
    prop_assert_eq!(&back.unwrap(), batch);
    // Storable as is: the collector would not answer 400 after decoding it.
    let put = with_store(|store| store.put_batch(batch, 0));
    prop_assert!(
        put.is_ok(),
        "store refused a decoded batch: {:?}",
        put.err()
    );
    Ok(())
}

proptest! {
    #[test]
    fn decoder_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..4096), enc in encoding()) {
        check_decode(&body, enc.as_deref())?;
    }

    #[test]
    fn decoder_gzip_of_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..4096), enc in encoding()) {
        check_decode(&gzip(&body), enc.as_deref())?;
    }

    #[test]
    fn decoder_mutated_valid_batches(body in mutated_body(), enc in encoding()) {
        check_decode(&body, enc.as_deref())?;
    }

    #[test]
    fn decoder_wire_shaped_json(body in wire_batch()) {
        check_decode(&body, None)?;
    }

    #[test]
    fn decoder_deep_and_large_inputs(depth in 0usize..6000, pad in 0usize..200_000, zipped in any::<bool>()) {
        let deep = format!(
            r#"{{"v":1,"sid":"s1","pvid":"p1","seq":1,"events":[{{"k":"custom","t":{T},"name":"x","data":{{"p":"{}","d":{}1{}}}}}]}}"#,
            "x".repeat(pad), "[".repeat(depth), "]".repeat(depth)
        );
        let body = if zipped { gzip(deep.as_bytes()) } else { deep.into_bytes() };
        check_decode(&body, None)?;
    }
}

/// One line of an NDJSON file under test.
fn ndjson_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0..templates().len()).prop_map(|t| templates()[t].as_bytes().to_vec()),
        3 => mutated_body(),
        1 => wire_batch(),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => Just(Vec::new()),
        1 => Just(b" \t\r".to_vec()),
    ]
}

proptest! {
    // Each case runs the binary twice; keep the default count modest.
    #![proptest_config(ProptestConfig {
        cases: ProptestConfig::default().cases.min(64).max(ProptestConfig::default().cases / 8),
        ..ProptestConfig::default()
    })]

    #[test]
    fn importer_is_all_or_nothing(lines in proptest::collection::vec(ndjson_line(), 0..12), crlf in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("import.db");
        // Something already stored, which a refused import must leave alone.
        let seed_file = dir.path().join("seed.ndjson");
        std::fs::write(&seed_file, format!("{}\n", templates()[0])).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_understudy"))
            .args(["sessions", "import"]).arg(&seed_file).arg("--db").arg(&db)
            .output().unwrap();
        prop_assert!(out.status.success());
        let before = common::stored_sessions(&db);

        let mut file = Vec::new();
        for l in &lines {
            // A line cannot hold a newline; what follows one is a line of its own.
            file.extend_from_slice(l);
            file.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, &file).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_understudy"))
            .args(["sessions", "import"]).arg(&path).arg("--db").arg(&db)
            .output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(!stderr.contains("panicked"), "{stderr}");
        let code = out.status.code();
        prop_assert!(code == Some(0) || code == Some(2), "exit {code:?}: {stderr}");

        // The oracle: the decoder on every non-blank line.
        let mut valid = Vec::new();
        let mut all_ok = true;
        for l in file.split(|&b| b == b'\n') {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if l.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match decode::parse_batch(l) {
                Ok(b) => valid.push(b),
                Err(_) => all_ok = false,
            }
        }
        let expect_ok = all_ok && !valid.is_empty();
        prop_assert_eq!(code == Some(0), expect_ok, "exit {:?}: {}", code, stderr);
        let after = common::stored_sessions(&db);
        if expect_ok {
            // Everything imported, first copy of each (sid, seq) wins.
            let mut want: std::collections::BTreeMap<(String, u64), Batch> = before
                .iter()
                .flat_map(|(_, bs)| bs.iter().map(|b| ((b.sid.clone(), b.seq), b.clone())))
                .collect();
            for b in valid {
                want.entry((b.sid.clone(), b.seq)).or_insert(b);
            }
            let got: std::collections::BTreeMap<(String, u64), Batch> = after
                .iter()
                .flat_map(|(_, bs)| bs.iter().map(|b| ((b.sid.clone(), b.seq), b.clone())))
                .collect();
            prop_assert_eq!(got, want);
        } else {
            prop_assert_eq!(after, before, "a refused import changed the database");
        }
    }
}
