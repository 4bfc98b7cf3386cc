//! `understudy cook`: recorded sessions → actions, signals and outcomes, as text or JSON.
//!
//! Reads sessions from the store, cooks each with [`crate::cook::cook_session`] and prints
//! them. A bad goal spec, a missing database or an unknown session id is bad input (exit 2).

use std::io::{self, Write};

use anyhow::Context;

use super::CookArgs;
use crate::cook::{cook_session, parse_goal, CookedSession, Goal};
use crate::exit_code::{self, bad_input};
use crate::store::{self, DbSpec, SessionStore, StoreError};

pub(super) fn run(args: CookArgs) -> anyhow::Result<i32> {
    let goals = parse_goals(&args.goals)?;
    let store = open_existing(&args.db)?;
    let ids: Vec<String> = match &args.session {
        Some(id) => vec![id.clone()],
        None => store.list_sessions()?.into_iter().map(|s| s.id).collect(),
    };
    let mut cooked = Vec::with_capacity(ids.len());
    for id in &ids {
        cooked.push(cook_stored(&store, id, &goals)?);
    }
    let mut out = io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &cooked)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        if cooked.is_empty() {
            eprintln!("no sessions in {}", args.db.display());
        }
        cooked
            .iter()
            .try_for_each(|c| out.write_all(c.render_text().as_bytes()))
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the cooked sessions")?,
    }
    Ok(exit_code::SUCCESS)
}

/// Parses goal specs; a bad one is the user's mistake (exit 2).
pub(super) fn parse_goals(specs: &[String]) -> anyhow::Result<Vec<Goal>> {
    specs
        .iter()
        .map(|s| parse_goal(s).map_err(bad_input))
        .collect()
}

/// Opens an existing session database; a missing file is bad input, not a new database.
pub(super) fn open_existing(db: &DbSpec) -> anyhow::Result<Box<dyn SessionStore + Send>> {
    if db.sqlite_path().is_some_and(|p| !p.is_file()) {
        return Err(bad_input(format!(
            "no session database at {}",
            db.display()
        )));
    }
    store::open(db).with_context(|| format!("opening {}", db.display()))
}

/// Reads and cooks one stored session; an unknown id is bad input.
pub(super) fn cook_stored(
    store: &dyn SessionStore,
    id: &str,
    goals: &[Goal],
) -> anyhow::Result<CookedSession> {
    let batches = match store.session_batches(id) {
        Err(err @ StoreError::NotFound(_)) => return Err(bad_input(err)),
        other => other.with_context(|| format!("reading session {id}"))?,
    };
    Ok(cook_session(id, &batches, goals))
}
