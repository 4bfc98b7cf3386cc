//! `understudy sessions list | export | import | forget | prune`: look at, move, restore
//! and delete recorded sessions.
//!
//! The exchange format is NDJSON: one [`Batch`] per line, in `seq` order, exactly the
//! wire format. Import checks every line with the collector's own decoder
//! ([`crate::collect::decode::parse_batch`]) before anything is written, then stores all
//! lines in one transaction: a file is imported whole or not at all.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use super::SessionsCommand;
use crate::collect::decode::parse_batch;
use crate::collect::Limits;
use crate::event::Batch;
use crate::exit_code::{self, bad_input};
use crate::store::{self, DbSpec, SessionStore, SessionSummary, StoreError};

pub(super) fn run(cmd: SessionsCommand) -> anyhow::Result<i32> {
    match cmd {
        SessionsCommand::List { db, json } => list(&db, json),
        SessionsCommand::Export { id, db, out } => export(&id, &db, out.as_deref()),
        SessionsCommand::Import { file, db } => import(&file, &db),
        SessionsCommand::Forget { user, db, project } => forget(&user, &db, project.as_deref()),
        SessionsCommand::Prune {
            older_than_days,
            db,
        } => prune(older_than_days, &db),
    }?;
    Ok(exit_code::SUCCESS)
}

/// Opens an existing database; a missing file is the user's mistake, not a new database.
fn open_existing(db: &DbSpec) -> anyhow::Result<Box<dyn SessionStore + Send>> {
    if db.sqlite_path().is_some_and(|p| !p.is_file()) {
        return Err(bad_input(format!(
            "no session database at {}",
            db.display()
        )));
    }
    Ok(store::open(db)?)
}

/// Deletes every session that identified `user`; secure_delete and a WAL checkpoint
/// leave none of its bytes in the database files.
fn forget(user: &str, db: &DbSpec, project: Option<&str>) -> anyhow::Result<()> {
    if user.is_empty() {
        return Err(bad_input("--user must not be empty"));
    }
    let report = open_existing(db)?
        .forget_user(user, project)
        .with_context(|| format!("forgetting user {user:?} in {}", db.display()))?;
    println!(
        "forgot user {}: deleted {} sessions ({} batches, {} events){}",
        printable(user, 64),
        report.sessions,
        report.batches,
        report.events,
        project.map_or(String::new(), |p| format!(" of project {p}"))
    );
    Ok(())
}

/// Deletes sessions whose last batch arrived more than `days` days ago.
fn prune(days: u32, db: &DbSpec) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let cutoff = now - i64::from(days) * 86_400_000;
    let report = open_existing(db)?
        .prune_sessions(cutoff)
        .with_context(|| format!("pruning {}", db.display()))?;
    println!(
        "deleted {} sessions ({} batches, {} events) whose last batch arrived before {}",
        report.sessions,
        report.batches,
        report.events,
        iso8601_utc(cutoff)
    );
    Ok(())
}

fn list(db: &DbSpec, json: bool) -> anyhow::Result<()> {
    let sessions = open_existing(db)?.list_sessions()?;
    let mut out = io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut out, &sessions)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else if sessions.is_empty() {
        eprintln!("no sessions in {}", db.display());
        Ok(())
    } else {
        out.write_all(render_table(&sessions).as_bytes())
    };
    ignore_broken_pipe(written.and_then(|()| out.flush())).context("writing the listing")
}

fn export(id: &str, db: &DbSpec, out: Option<&Path>) -> anyhow::Result<()> {
    let batches = match open_existing(db)?.session_batches(id) {
        Err(err @ StoreError::NotFound(_)) => return Err(bad_input(err)),
        other => other?,
    };
    let events: usize = batches.iter().map(|b| b.events.len()).sum();
    match out {
        Some(path) => {
            // Write beside the target and rename, so a failed export leaves no half file.
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| bad_input(format!("cannot write {}: {e}", path.display())))?;
            write_ndjson(&mut BufWriter::new(tmp.as_file_mut()), &batches)
                .with_context(|| format!("writing {}", path.display()))?;
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "exported {} batches ({events} events) of session {id} to {}",
                batches.len(),
                path.display()
            );
        }
        None => {
            let mut stdout = BufWriter::new(io::stdout().lock());
            ignore_broken_pipe(write_ndjson(&mut stdout, &batches))
                .context("writing to standard output")?;
            eprintln!(
                "exported {} batches ({events} events) of session {id}",
                batches.len()
            );
        }
    }
    Ok(())
}

fn write_ndjson(out: &mut impl Write, batches: &[Batch]) -> io::Result<()> {
    for batch in batches {
        out.write_all(crate::event::to_json(batch)?.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn ignore_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn import(file: &Path, db: &DbSpec) -> anyhow::Result<()> {
    let shown = file.display();
    let reader = File::open(file)
        .map(BufReader::new)
        .map_err(|e| bad_input(format!("cannot read {shown}: {e}")))?;
    let batches = read_ndjson(reader, Limits::default().max_decoded_bytes)
        .map_err(|e| bad_input(format!("cannot import {shown}: {e}")))?;
    if batches.is_empty() {
        return Err(bad_input(format!(
            "cannot import {shown}: it contains no batches"
        )));
    }
    let mut sids: Vec<&str> = batches.iter().map(|b| b.sid.as_str()).collect();
    sids.sort_unstable();
    sids.dedup();

    let mut store = store::open(db)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let report = store
        .put_batches(&batches, now)
        .with_context(|| format!("importing {shown} into {}", db.display()))?;
    println!(
        "read {} batches of {} sessions from {shown}: imported {}, skipped {} duplicates",
        batches.len(),
        sids.len(),
        report.stored,
        report.duplicates
    );
    Ok(())
}

/// Why an NDJSON file cannot be imported.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("line {line}: longer than {max} bytes")]
    TooLong { line: usize, max: usize },
    #[error("line {line}: {reason}")]
    Bad { line: usize, reason: String },
    #[error("read failed after line {line}: {source}")]
    Io {
        line: usize,
        #[source]
        source: io::Error,
    },
}

/// Reads and checks every batch of an NDJSON stream; blank lines are skipped. Stops at
/// the first bad line. Never holds more than `max_line` bytes of one line.
fn read_ndjson(mut reader: impl BufRead, max_line: usize) -> Result<Vec<Batch>, ReadError> {
    let mut batches = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        line += 1;
        match read_line_bounded(&mut reader, &mut buf, max_line) {
            Ok(Line::Eof) => return Ok(batches),
            Ok(Line::TooLong) => {
                return Err(ReadError::TooLong {
                    line,
                    max: max_line,
                })
            }
            Ok(Line::Read) => {}
            Err(source) => {
                return Err(ReadError::Io {
                    line: line - 1,
                    source,
                })
            }
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let batch = parse_batch(&buf).map_err(|e| ReadError::Bad {
            line,
            reason: e.to_string(),
        })?;
        batches.push(batch);
    }
}

enum Line {
    Read,
    TooLong,
    Eof,
}

/// Reads one line without its `\n` into `buf`, refusing lines over `max` bytes.
fn read_line_bounded(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if any { Line::Read } else { Line::Eof });
        }
        any = true;
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if buf.len() + take > max {
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Line::Read);
        }
    }
}

/// Renders the listing as an aligned text table.
fn render_table(sessions: &[SessionSummary]) -> String {
    let header = [
        "ID",
        "START (UTC)",
        "DURATION",
        "PAGES",
        "EVENTS",
        "FIRST URL",
        "USER",
    ];
    let rows: Vec<[String; 7]> = sessions
        .iter()
        .map(|s| {
            [
                printable(&s.id, 128),
                iso8601_utc(s.started_at),
                duration(s.ended_at.saturating_sub(s.started_at)),
                s.pages.to_string(),
                s.events.to_string(),
                s.first_url
                    .as_deref()
                    .map_or("-".into(), |u| printable(u, 60)),
                s.user.as_deref().map_or("-".into(), |u| printable(u, 32)),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let right_aligned = [false, false, true, true, true, false, false];
    let mut out = String::new();
    let mut push_row = |cells: &[&str]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i > 0 {
                line.push_str("  ");
            }
            if right_aligned[i] {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < cells.len() {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(&header);
    for row in &rows {
        push_row(&row.each_ref().map(String::as_str));
    }
    out
}

/// Makes an untrusted string safe for a terminal: control characters become `?`, and it is
/// cut to `max` characters with an ellipsis.
fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.pop();
        out.push('…');
    }
    out
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats a duration in ms compactly: `850ms`, `42s`, `12m05s`, `3h02m`.
fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations_format() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc(1_733_300_000_123), "2024-12-04T08:13:20Z");
        assert_eq!(iso8601_utc(4_102_444_799_999), "2099-12-31T23:59:59Z");
        assert_eq!(iso8601_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(725_000), "12m05s");
        assert_eq!(duration(10_920_000), "3h02m");
    }

    #[test]
    fn untrusted_text_is_made_printable() {
        assert_eq!(printable("a\u{1b}[31mb", 10), "a?[31mb");
        assert_eq!(printable("abcdef", 4), "abc…");
        assert_eq!(printable("abcd", 4), "abcd");
    }

    #[test]
    fn lines_are_bounded_and_blank_lines_skipped() {
        let ok = r#"{"v":1,"sid":"s1","pvid":"p1","seq":0,"events":[{"k":"vis","t":1733300000000,"hidden":true}]}"#;
        let text = format!("\n{ok}\r\n  \n{}\n", ok.replace("\"seq\":0", "\"seq\":1"));
        let got = read_ndjson(io::Cursor::new(text), 1 << 20).unwrap();
        assert_eq!(got.iter().map(|b| b.seq).collect::<Vec<_>>(), [0, 1]);

        let err = read_ndjson(io::Cursor::new(format!("{ok}\n{ok}x\n")), 1 << 20).unwrap_err();
        assert!(
            err.to_string().starts_with("line 2: malformed batch"),
            "{err}"
        );

        let long = format!("{ok}\n{}\n", " ".repeat(300));
        let err =
            read_ndjson(BufReader::with_capacity(16, io::Cursor::new(long)), 200).unwrap_err();
        assert_eq!(err.to_string(), "line 2: longer than 200 bytes");

        // A last line without a newline still counts.
        assert_eq!(read_ndjson(io::Cursor::new(ok), 1 << 20).unwrap().len(), 1);
    }

    #[test]
    fn table_aligns_columns() {
        let s = SessionSummary {
            id: "s-1".into(),
            started_at: 1_733_300_000_000,
            ended_at: 1_733_300_065_000,
            batches: 2,
            events: 120,
            pages: 3,
            first_url: Some("http://shop.test/".into()),
            user: None,
        };
        let table = render_table(&[s]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ID   START (UTC)           DURATION  PAGES  EVENTS"));
        assert!(
            lines[1].starts_with(
                "s-1  2024-12-04T08:13:20Z     1m05s      3     120  http://shop.test/  -"
            ),
            "{table}"
        );
    }
}
