//! `understudy fit` and `understudy model show`: the only places model files are read or
//! written (the model module itself does no I/O).
//!
//! `fit` reads every stored session, cooks it with the goals, fits on all of them, evaluates
//! on a held-out split by time (see [`crate::model::eval`]), stamps the write time and writes
//! the model atomically (temporary file + rename). `model show` reads a model file and
//! prints [`crate::model::show::render`]. A malformed model file, a bad goal spec or option,
//! or a store with nothing to fit on is bad input (exit 2).

use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::cook::{cook_stored, open_existing, parse_goals};
use super::FitArgs;
use crate::exit_code::{self, bad_input};
use crate::model::{fit_and_evaluate, show, FitOptions, Model};
use crate::store::SessionStore;

pub(super) fn run(args: FitArgs) -> anyhow::Result<i32> {
    if !(0.0..1.0).contains(&args.holdout) {
        return Err(bad_input(format!(
            "--holdout must be a fraction in [0, 1), not {}",
            args.holdout
        )));
    }
    let goals = parse_goals(&args.goals)?;
    let store = open_existing(&args.db)?;
    let summaries = store.list_sessions()?;
    let mut cooked = Vec::with_capacity(summaries.len());
    for s in &summaries {
        cooked.push(cook_stored(&store, &s.id, &goals)?);
    }
    let opts = FitOptions {
        order: args.order,
        holdout: args.holdout,
        seed: args.seed,
        goals: args.goals.clone(),
        ..FitOptions::default()
    };
    let mut model = fit_and_evaluate(&cooked, &opts).map_err(|e| {
        bad_input(format!(
            "cannot fit on the sessions in {}: {e}",
            args.db.display()
        ))
    })?;
    model.written_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64);
    let text = model.to_json();
    save(&args.out, &text)?;

    let p = &model.provenance;
    let mut out = String::new();
    out.push_str(&format!(
        "fitted on {} sessions, {} events, {} actions ({} sessions skipped without actions): {} states, order {}\n",
        p.sessions,
        p.events,
        p.actions,
        p.skipped_sessions,
        model.states().len(),
        model.order()
    ));
    out.push_str(&show::evaluation_text(model.evaluation.as_ref()));
    out.push_str(&format!(
        "wrote {} ({} bytes)\n",
        args.out.display(),
        text.len()
    ));
    print(&out)?;
    Ok(exit_code::SUCCESS)
}

pub(super) fn show(file: &Path, top: usize) -> anyhow::Result<i32> {
    let model = load(file)?;
    print(&show::render(&model, top))?;
    Ok(exit_code::SUCCESS)
}

/// Reads and validates a model file; anything wrong with its content is bad input.
pub fn load(file: &Path) -> anyhow::Result<Model> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad_input(format!("no model file at {}", file.display())))
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(bad_input(format!(
                "{} is not a model file: not UTF-8 text",
                file.display()
            )))
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    Model::from_json(&text).map_err(|e| bad_input(format!("{}: {e}", file.display())))
}

/// Writes beside the target and renames, so a failed write never leaves half a model.
fn save(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    // Temporary files are private (0600); a model is an ordinary, shareable file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting permissions of {}", path.display()))?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}
