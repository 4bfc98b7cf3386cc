//! `understudy replay`: one stored session → one self-contained HTML player; and the replays
//! the gate's report links to. Both go through [`write_replay`], so a replay from the command
//! line and one from a gate run are the same file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::ReplayArgs;
use crate::event::Batch;
use crate::exit_code::{self, bad_input};
use crate::replay::{render_player, ReplayError};
use crate::report::{RunResults, HTML_PATH};
use crate::store::{self, DbSpec, SessionStore, SqliteStore, StoreError};

/// Folder of the replays, relative to the HTML report's folder (`<out>/report/`).
pub(crate) const REPLAY_DIR: &str = "replays";

pub(super) fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    let store = open_db(&args.db)?;
    let written = write_replay(&store, &args.session, &args.out, None)?;
    eprintln!(
        "wrote the replay of session {} ({} page views, {} events) to {}",
        args.session,
        written.pages,
        written.events,
        args.out.display()
    );
    Ok(exit_code::SUCCESS)
}

/// Opens an existing session database. A missing file, or one that is not a session
/// database, is the user's mistake (exit code 2).
fn open_db(db: &DbSpec) -> anyhow::Result<Box<dyn SessionStore + Send>> {
    if db.sqlite_path().is_some_and(|p| !p.is_file()) {
        return Err(bad_input(format!(
            "no session database at {}",
            db.display()
        )));
    }
    store::open(db).map_err(|e| match e {
        StoreError::Open { .. } | StoreError::NewerSchema { .. } => bad_input(e),
        other => anyhow::Error::new(other).context(format!("opening {}", db.display())),
    })
}

/// What [`write_replay`] wrote.
#[derive(Debug)]
pub(super) struct Written {
    pub pages: usize,
    pub events: usize,
}

/// Reads one session and writes its player to `out`, whole or not at all. An unknown session
/// or one with nothing to rebuild is bad input.
pub(super) fn write_replay(
    store: &impl SessionStore,
    sid: &str,
    out: &Path,
    caption: Option<&str>,
) -> anyhow::Result<Written> {
    let batches: Vec<Batch> = match store.session_batches(sid) {
        Err(err @ StoreError::NotFound(_)) => return Err(bad_input(err)),
        other => other.with_context(|| format!("reading session {sid}"))?,
    };
    let html = render_player(sid, &batches, caption).map_err(|e| match e {
        ReplayError::Empty(_) | ReplayError::NoSnapshot(_) => bad_input(e),
        other => anyhow::Error::new(other),
    })?;
    write_atomically(out, html.as_bytes())?;
    let mut pvids: Vec<&str> = batches.iter().map(|b| b.pvid.as_str()).collect();
    pvids.sort_unstable();
    pvids.dedup();
    Ok(Written {
        pages: pvids.len(),
        events: batches.iter().map(|b| b.events.len()).sum(),
    })
}

/// Writes beside the target and renames, so a failure leaves no half file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    // Readable like any other report file (the umask applies), not the temp file's 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| bad_input(format!("cannot write {}: {e}", path.display())))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes a replay for every session the report shows, from the first of `dbs` that holds
/// it, into `<out>/report/replays/<sid>.html`, and links it (`SessionRef::replay`). Best
/// effort: a session that cannot be replayed keeps no link, with a warning.
pub(crate) fn attach_replays(results: &mut RunResults, dbs: &[PathBuf], out: &Path) {
    if results.sessions.is_empty() {
        return;
    }
    let stores: Vec<SqliteStore> = dbs
        .iter()
        .filter(|db| db.is_file())
        .filter_map(|db| {
            SqliteStore::open(db)
                .map_err(|e| tracing::warn!(error = %e, "cannot read kept sessions for replays"))
                .ok()
        })
        .collect();
    if stores.is_empty() {
        return;
    }
    let report_dir = out
        .join(HTML_PATH)
        .parent()
        .map_or_else(|| out.to_path_buf(), Path::to_path_buf);
    let dir = report_dir.join(REPLAY_DIR);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(error = %e, dir = %dir.display(), "cannot write replays");
        return;
    }
    for s in &mut results.sessions {
        if !safe_file_stem(&s.session_id) {
            continue;
        }
        let Some(store) = stores
            .iter()
            .find(|st| st.session_batches(&s.session_id).is_ok())
        else {
            tracing::warn!(session = %s.session_id, "no kept recording to replay");
            continue;
        };
        let file = format!("{}.html", s.session_id);
        let caption = format!(
            "user {} on the {} build · {}",
            s.user,
            s.build,
            if s.converted {
                "converted"
            } else {
                "did not convert"
            }
        );
        match write_replay(store, &s.session_id, &dir.join(&file), Some(&caption)) {
            Ok(_) => s.replay = Some(format!("{REPLAY_DIR}/{file}")),
            Err(e) => tracing::warn!(session = %s.session_id, error = %e, "no replay"),
        }
    }
}

/// Session ids become file names: only `[A-Za-z0-9_-]`, as the wire format allows.
fn safe_file_stem(sid: &str) -> bool {
    !sid.is_empty()
        && sid.len() <= crate::event::MAX_ID_LEN
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{example, Example};

    fn stored(dir: &Path, sid: &str, with_snapshot: bool) -> PathBuf {
        let db = dir.join("kept.db");
        let mut store = SqliteStore::open(&db).unwrap();
        let snap = if with_snapshot {
            r#",{"k":"snap","t":2,"node":{"id":1,"nt":9,"c":[{"id":2,"nt":1,"tag":"html"}]}}"#
        } else {
            ""
        };
        let b: Batch = serde_json::from_str(&format!(
            r#"{{"v":1,"sid":"{sid}","pvid":"p1","seq":0,"events":[
              {{"k":"meta","t":1,"url":"http://a/","load":"navigate","w":800,"h":600}}{snap}]}}"#
        ))
        .unwrap();
        store.put_batch(&b, 0).unwrap();
        db
    }

    #[test]
    fn unknown_sessions_and_databases_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let db = stored(dir.path(), "s-1", true);
        let store = open_db(&db.as_path().into()).unwrap();
        let out = dir.path().join("r.html");
        let e = write_replay(&store, "nope", &out, None).unwrap_err();
        assert_eq!(exit_code::for_error(&e), exit_code::USAGE);
        assert!(e.to_string().contains("no session with id `nope`"), "{e}");
        assert!(!out.exists());

        let e = open_db(&dir.path().join("missing.db").into())
            .err()
            .expect("no database there");
        assert_eq!(exit_code::for_error(&e), exit_code::USAGE);
        assert!(e.to_string().contains("no session database at"), "{e}");
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
        let e = open_db(&junk.as_path().into())
            .err()
            .expect("not a database");
        assert_eq!(exit_code::for_error(&e), exit_code::USAGE, "{e}");

        let written = write_replay(&store, "s-1", &out, None).unwrap();
        assert_eq!((written.pages, written.events), (1, 2));
        assert!(std::fs::read_to_string(&out)
            .unwrap()
            .contains("id=\"replay-frame\""));
    }

    #[test]
    fn a_session_without_snapshot_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_db(&stored(dir.path(), "s-2", false).into()).unwrap();
        let e = write_replay(&store, "s-2", &dir.path().join("r.html"), None).unwrap_err();
        assert_eq!(exit_code::for_error(&e), exit_code::USAGE);
        assert!(e.to_string().contains("no DOM snapshot"), "{e}");
    }

    #[test]
    fn the_report_links_the_replays_it_could_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut results = example(Example::Fail);
        for s in &mut results.sessions {
            s.replay = None;
        }
        let sid = results.sessions[0].session_id.clone();
        let db = stored(dir.path(), &sid, true);
        let out = dir.path().join("out");
        attach_replays(&mut results, &[dir.path().join("absent.db"), db], &out);
        let linked: Vec<_> = results
            .sessions
            .iter()
            .filter_map(|s| s.replay.clone())
            .collect();
        assert_eq!(linked, [format!("replays/{sid}.html")]);
        assert!(out
            .join("report/replays")
            .join(format!("{sid}.html"))
            .is_file());
    }
}
