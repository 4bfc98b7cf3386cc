//! Untrusted bytes → a validated [`Batch`], or a clear reason why not.
//!
//! Used for every request body the collector receives and for every line of a
//! `sessions import` file, so both paths accept exactly the same batches. It knows no
//! HTTP: the caller hands over the body bytes and the `Content-Encoding` value, if any.
//!
//! Every step is bounded: gzip is inflated through a reader capped at
//! [`Limits::max_decoded_bytes`](super::Limits) (a gzip bomb stops there), and JSON
//! nesting is capped at [`MAX_DEPTH`] before parsing. Nothing here panics on any input.

use std::borrow::Cow;
use std::io::Read;

use flate2::bufread::MultiGzDecoder;

use crate::event::{Batch, BatchError};

/// The largest `seq` accepted; a page would need to send a batch a second for 30 years.
pub const MAX_SEQ: u64 = 1_000_000_000;
/// Earliest plausible timestamp: 2000-01-01T00:00:00Z in epoch milliseconds.
pub const MIN_T: i64 = 946_684_800_000;
/// Latest plausible timestamp (exclusive): 2100-01-01T00:00:00Z in epoch milliseconds.
pub const MAX_T: i64 = 4_102_444_800_000;
/// Deepest JSON nesting accepted ([`crate::event::MAX_JSON_DEPTH`]).
pub const MAX_DEPTH: usize = crate::event::MAX_JSON_DEPTH;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a body or line is not an acceptable batch. The messages are meant for the sender.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body on the wire is over the limit.
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The body inflates to more than the limit.
    #[error("decompressed body is larger than {limit} bytes")]
    DecodedTooLarge { limit: usize },
    /// A `Content-Encoding` other than gzip.
    #[error("unsupported Content-Encoding `{0}`; send gzip or no encoding")]
    UnsupportedEncoding(String),
    /// `Content-Encoding: gzip` on a body without the gzip magic bytes.
    #[error("Content-Encoding is gzip but the body is not gzip data")]
    NotGzip,
    /// The gzip stream is cut short or damaged.
    #[error("gzip body is truncated or corrupt: {0}")]
    Gzip(std::io::Error),
    /// Nothing (or only whitespace) was sent.
    #[error("body is empty; expected one JSON batch")]
    Empty,
    /// The (decompressed) bytes are not UTF-8 text.
    #[error("not valid UTF-8 (first invalid byte at offset {offset})")]
    Utf8 { offset: usize },
    /// JSON nested deeper than [`MAX_DEPTH`].
    #[error("JSON is nested too deeply (the limit is {MAX_DEPTH} levels)")]
    TooDeep,
    /// Not JSON, or JSON of the wrong shape (types, unknown fields, missing fields).
    #[error("malformed batch: {0}")]
    Json(serde_json::Error),
    /// Well-formed but against the wire format's rules.
    #[error("invalid batch: {0}")]
    Invalid(#[from] BatchError),
    /// A sequence number no real page produces.
    #[error("invalid batch: seq {0} is implausible (the limit is {MAX_SEQ})")]
    ImplausibleSeq(u64),
    /// A timestamp outside 2000..2100, e.g. seconds or microseconds instead of ms.
    #[error("invalid batch: {what} timestamp {t} is outside the years 2000..2100 (epoch milliseconds expected)")]
    ImplausibleTime { what: String, t: i64 },
}

impl DecodeError {
    /// Whether the input was rejected for its size alone (HTTP 413).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            DecodeError::BodyTooLarge { .. } | DecodeError::DecodedTooLarge { .. }
        )
    }
}

/// Decodes one request body: gzip (detected by magic bytes, or announced by
/// `content_encoding`) or plain JSON, then [`parse_batch`].
pub fn decode_body(
    body: &[u8],
    content_encoding: Option<&str>,
    max_body_bytes: usize,
    max_decoded_bytes: usize,
) -> Result<Batch, DecodeError> {
    parse_batch(&inflate(
        body,
        content_encoding,
        max_body_bytes,
        max_decoded_bytes,
    )?)
}

/// Like [`decode_body`], for bodies whose JSON text is at most `small` bytes; `Ok(None)`
/// for a bigger one, which nothing here has refused yet. Decoding a small body costs tens
/// of microseconds, so the collector does it where the request is, and hands only big
/// bodies to a blocking thread ([`decode_body`]). A gzip body's claimed size is not
/// trusted: inflating stops at `small`.
pub fn decode_small_body(
    body: &[u8],
    content_encoding: Option<&str>,
    max_body_bytes: usize,
    max_decoded_bytes: usize,
    small: usize,
) -> Result<Option<Batch>, DecodeError> {
    if body.len() > small.min(max_body_bytes) {
        return if body.len() > max_body_bytes {
            Err(DecodeError::BodyTooLarge {
                limit: max_body_bytes,
            })
        } else {
            Ok(None)
        };
    }
    let limit = small.min(max_decoded_bytes);
    match inflate(body, content_encoding, max_body_bytes, limit) {
        Ok(json) => parse_batch(&json).map(Some),
        Err(DecodeError::DecodedTooLarge { .. }) if limit < max_decoded_bytes => Ok(None),
        Err(e) => Err(e),
    }
}

/// The JSON text of a body: inflated if it is gzip, at most `max_decoded_bytes` of it.
fn inflate<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    max_body_bytes: usize,
    max_decoded_bytes: usize,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    if body.len() > max_body_bytes {
        return Err(DecodeError::BodyTooLarge {
            limit: max_body_bytes,
        });
    }
    let looks_gzip = body.starts_with(&GZIP_MAGIC);
    let gzip = match content_encoding.map(str::trim) {
        None | Some("") => looks_gzip,
        Some(e) if e.eq_ignore_ascii_case("identity") => looks_gzip,
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
            if !looks_gzip {
                return Err(DecodeError::NotGzip);
            }
            true
        }
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(DecodeError::UnsupportedEncoding(shown));
        }
    };
    if gzip {
        Ok(Cow::Owned(gunzip(body, max_decoded_bytes)?))
    } else if body.len() > max_decoded_bytes {
        Err(DecodeError::DecodedTooLarge {
            limit: max_decoded_bytes,
        })
    } else {
        Ok(Cow::Borrowed(body))
    }
}

/// Inflates a gzip stream (one or more members), refusing to produce more than `limit`
/// bytes. Memory use is bounded by `limit` whatever the input claims.
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    MultiGzDecoder::new(data)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(DecodeError::Gzip)?;
    if out.len() > limit {
        return Err(DecodeError::DecodedTooLarge { limit });
    }
    Ok(out)
}

/// Parses one JSON batch and checks it: UTF-8, shape (unknown fields refused),
/// [`Batch::validate`], and plausibility of `seq` and every timestamp.
pub fn parse_batch(json: &[u8]) -> Result<Batch, DecodeError> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let text = std::str::from_utf8(json).map_err(|e| DecodeError::Utf8 {
        offset: e.valid_up_to(),
    })?;
    let batch: Batch = crate::event::from_json(text).map_err(|e| match e {
        crate::event::JsonError::TooDeep => DecodeError::TooDeep,
        crate::event::JsonError::Json(e) => DecodeError::Json(e),
    })?;
    batch.validate()?;
    check_plausible(&batch)?;
    Ok(batch)
}

/// Refuses values that no real page sends: a huge `seq`, or timestamps that are not
/// epoch milliseconds between 2000 and 2100.
pub fn check_plausible(batch: &Batch) -> Result<(), DecodeError> {
    if batch.seq > MAX_SEQ {
        return Err(DecodeError::ImplausibleSeq(batch.seq));
    }
    let plausible = |t: i64| (MIN_T..MAX_T).contains(&t);
    if let Some(t) = batch.sent.filter(|t| !plausible(*t)) {
        return Err(DecodeError::ImplausibleTime {
            what: "`sent`".into(),
            t,
        });
    }
    for (i, event) in batch.events.iter().enumerate() {
        let t = event.t();
        if !plausible(t) {
            return Err(DecodeError::ImplausibleTime {
                what: format!("event {i} ({})", event.kind()),
                t,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const T: i64 = 1_733_300_000_000;
    const MIB: usize = 1 << 20;

    fn json(seq: u64, t: i64) -> String {
        format!(
            r#"{{"v":1,"sid":"s1","pvid":"p1","seq":{seq},"events":[{{"k":"vis","t":{t},"hidden":true}}]}}"#
        )
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn decode(body: &[u8], enc: Option<&str>) -> Result<Batch, DecodeError> {
        decode_body(body, enc, MIB, 8 * MIB)
    }

    #[test]
    fn plain_and_gzip_bodies_decode_the_same() {
        let plain = json(3, T);
        let a = decode(plain.as_bytes(), None).unwrap();
        let b = decode(&gzip(plain.as_bytes()), None).unwrap();
        let c = decode(&gzip(plain.as_bytes()), Some("gzip")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.seq, 3);
    }

    #[test]
    fn size_limits_hold_before_and_after_inflating() {
        let big = vec![b' '; MIB + 1];
        assert!(matches!(
            decode(&big, None),
            Err(DecodeError::BodyTooLarge { .. })
        ));
        let bomb = gzip(&vec![0u8; 9 * MIB]);
        assert!(bomb.len() < MIB);
        let err = decode(&bomb, None).unwrap_err();
        assert!(err.is_too_large(), "{err}");
    }

    #[test]
    fn small_bodies_decode_here_and_big_ones_are_left_for_later() {
        let small = 4096;
        let plain = json(3, T);
        let gz = gzip(plain.as_bytes());
        for body in [plain.as_bytes(), &gz[..]] {
            let here = decode_small_body(body, None, MIB, 8 * MIB, small).unwrap();
            assert_eq!(here.unwrap(), decode(body, None).unwrap());
        }
        // Refusals are the same as the full decoder's, whoever decodes.
        for (body, enc) in [
            (&b"{\"v\":1"[..], None),
            (&gz[..gz.len() - 6], None),
            (plain.as_bytes(), Some("gzip")),
            (plain.as_bytes(), Some("br")),
        ] {
            let here = decode_small_body(body, enc, MIB, 8 * MIB, small).unwrap_err();
            assert_eq!(here.to_string(), decode(body, enc).unwrap_err().to_string());
        }
        // Too big to decode here: a long plain body, and a short gzip one that inflates
        // past `small` (its size field is not asked).
        let long = format!(
            r#"{{"v":1,"sid":"s1","pvid":"p1","seq":0,"events":[{{"k":"custom","t":{T},"name":"{}"}}]}}"#,
            "n".repeat(small)
        );
        let long_gz = gzip(long.as_bytes());
        assert!(long_gz.len() < small);
        for body in [long.as_bytes(), &long_gz[..]] {
            assert!(decode_small_body(body, None, MIB, 8 * MIB, small)
                .unwrap()
                .is_none());
            assert!(decode(body, None).is_ok());
        }
        // A bomb is left for later too, where the real limit refuses it; over the body
        // limit is refused at once.
        let bomb = gzip(&vec![0u8; 9 * MIB]);
        assert!(decode_small_body(&bomb, None, MIB, 8 * MIB, small)
            .unwrap()
            .is_none());
        assert!(decode(&bomb, None).unwrap_err().is_too_large());
        let err = decode_small_body(&vec![b' '; MIB + 1], None, MIB, 8 * MIB, 2 * MIB).unwrap_err();
        assert!(matches!(err, DecodeError::BodyTooLarge { .. }), "{err}");
        // A decoded limit under `small` is the real limit.
        let err = decode_small_body(&long_gz, None, MIB, 100, small).unwrap_err();
        assert!(
            matches!(err, DecodeError::DecodedTooLarge { limit: 100 }),
            "{err}"
        );
    }

    #[test]
    fn encodings_are_checked() {
        let plain = json(0, T);
        assert!(matches!(
            decode(plain.as_bytes(), Some("gzip")),
            Err(DecodeError::NotGzip)
        ));
        assert!(matches!(
            decode(plain.as_bytes(), Some("br")),
            Err(DecodeError::UnsupportedEncoding(e)) if e == "br"
        ));
        assert!(decode(plain.as_bytes(), Some("identity")).is_ok());
        let gz = gzip(plain.as_bytes());
        assert!(matches!(
            decode(&gz[..gz.len() - 6], None),
            Err(DecodeError::Gzip(_))
        ));
        let mut trailing = gz.clone();
        trailing.extend_from_slice(b"junk");
        assert!(matches!(decode(&trailing, None), Err(DecodeError::Gzip(_))));
    }

    #[test]
    fn text_shape_and_rules_are_checked() {
        assert!(matches!(decode(b"", None), Err(DecodeError::Empty)));
        assert!(matches!(decode(b" \n", None), Err(DecodeError::Empty)));
        assert!(matches!(
            decode(b"{\"v\":\xff}", None),
            Err(DecodeError::Utf8 { offset: 5 })
        ));
        let deep = format!(
            r#"{{"v":1,"sid":"s","pvid":"p","seq":0,"events":[{{"k":"custom","t":{T},"name":"x","data":{}1{}}}]}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(matches!(
            decode(deep.as_bytes(), None),
            Err(DecodeError::TooDeep)
        ));
        let unknown = json(0, T).replace("\"seq\"", "\"extra\":1,\"seq\"");
        let err = decode(unknown.as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("unknown field `extra`"), "{err}");
        let version = json(0, T).replace("\"v\":1", "\"v\":2");
        assert!(matches!(
            decode(version.as_bytes(), None),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(json(MAX_SEQ + 1, T).as_bytes(), None),
            Err(DecodeError::ImplausibleSeq(_))
        ));
        // Seconds instead of milliseconds.
        let err = decode(json(0, T / 1000).as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("event 0 (vis) timestamp"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(body in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = decode(&body, None);
            let _ = decode(&body, Some("gzip"));
        }

        #[test]
        fn any_gzip_payload_decodes_or_fails_cleanly(body in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = decode(&gzip(&body), None);
        }

        #[test]
        fn mangled_valid_bodies_fail_cleanly(
            cut in 0usize..200,
            flip in 0usize..200,
            byte in proptest::num::u8::ANY,
            zipped in proptest::bool::ANY,
        ) {
            let plain = json(7, T).into_bytes();
            let mut body = if zipped { gzip(&plain) } else { plain };
            if !body.is_empty() {
                let i = flip % body.len();
                body[i] = byte;
            }
            body.truncate(body.len().saturating_sub(cut % 8));
            let _ = decode(&body, None);
        }
    }
}
