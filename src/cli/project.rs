//! `understudy project add | rotate-key | rotate-token | list`: edit the collector's
//! projects file ([`crate::collect::projects`]).
//!
//! New secrets are printed once, on standard output; the file keeps only their SHA-256.
//! The file is replaced atomically, so a running collector picks the change up on its
//! next poll (or on SIGHUP) and never sees half a file.

use std::path::Path;

use super::ProjectCommand;
use crate::collect::projects::{ProjectsError, ProjectsFile, RateLimit, DEFAULT_RATE};
use crate::exit_code::{self, bad_input};

pub(super) fn run(cmd: ProjectCommand) -> anyhow::Result<i32> {
    match cmd {
        ProjectCommand::Add {
            name,
            origins,
            projects,
            rate,
            burst,
        } => add(&name, &origins, &projects, rate, burst),
        ProjectCommand::RotateKey {
            name,
            projects,
            keep_old,
        } => rotate_key(&name, &projects, keep_old),
        ProjectCommand::RotateToken {
            name,
            projects,
            keep_old,
        } => rotate_token(&name, &projects, keep_old),
        ProjectCommand::List { projects } => list(&projects),
    }?;
    Ok(exit_code::SUCCESS)
}

/// Everything about a projects file is the user's to fix (exit 2), except failing to
/// write it or to draw randomness.
fn classify(err: ProjectsError) -> anyhow::Error {
    match err {
        ProjectsError::Write { .. } | ProjectsError::Random(_) => err.into(),
        other => bad_input(other),
    }
}

fn rate_limit(rate: Option<f64>, burst: Option<u32>) -> anyhow::Result<Option<RateLimit>> {
    let limit = match (rate, burst) {
        (None, None) => return Ok(None),
        (Some(per_second), burst) => RateLimit {
            per_second,
            burst: burst.unwrap_or_else(|| (per_second * 2.0).ceil().clamp(1.0, 1e9) as u32),
        },
        (None, Some(burst)) => RateLimit {
            per_second: DEFAULT_RATE.per_second,
            burst,
        },
    };
    if !(limit.per_second.is_finite() && limit.per_second > 0.0) || limit.burst == 0 {
        return Err(bad_input("--rate must be > 0 and --burst >= 1"));
    }
    Ok(Some(limit))
}

fn add(
    name: &str,
    origins: &[String],
    path: &Path,
    rate: Option<f64>,
    burst: Option<u32>,
) -> anyhow::Result<()> {
    let limit = rate_limit(rate, burst)?;
    let mut file = ProjectsFile::load_or_empty(path).map_err(classify)?;
    let secrets = file.add_project(name, origins, limit).map_err(classify)?;
    file.save(path).map_err(classify)?;
    let key = secrets.key.unwrap_or_default();
    let token = secrets.admin_token.unwrap_or_default();
    eprintln!("added project `{name}` to {}", path.display());
    println!("ingest key (public: it goes in the page's script tag):");
    println!("  {key}");
    println!("  <script src=\"https://COLLECTOR/capture.js\" data-key=\"{key}\"></script>");
    println!("admin token (secret, shown only now: read, export and delete over HTTP):");
    println!("  {token}");
    println!("  curl -H \"Authorization: Bearer {token}\" https://COLLECTOR/v1/sessions");
    Ok(())
}

fn rotate_key(name: &str, path: &Path, keep_old: bool) -> anyhow::Result<()> {
    let mut file = existing(path)?;
    let key = file.rotate_key(name, keep_old).map_err(classify)?;
    file.save(path).map_err(classify)?;
    eprintln!(
        "new ingest key for `{name}` in {}; {}",
        path.display(),
        if keep_old {
            "the old keys keep working"
        } else {
            "the old keys are revoked (403)"
        }
    );
    println!("{key}");
    Ok(())
}

fn rotate_token(name: &str, path: &Path, keep_old: bool) -> anyhow::Result<()> {
    let mut file = existing(path)?;
    let token = file.rotate_token(name, keep_old).map_err(classify)?;
    file.save(path).map_err(classify)?;
    eprintln!(
        "new admin token for `{name}` in {} (shown only now); {}",
        path.display(),
        if keep_old {
            "the old tokens keep working"
        } else {
            "the old tokens no longer work"
        }
    );
    println!("{token}");
    Ok(())
}

fn list(path: &Path) -> anyhow::Result<()> {
    let file = existing(path)?;
    if file.projects.is_empty() {
        eprintln!("no projects in {}", path.display());
    }
    for p in &file.projects {
        let rate = p.rate_limit.unwrap_or(DEFAULT_RATE);
        println!(
            "{}  origins: {}  keys: {} (+{} revoked)  admin tokens: {}  rate: {}/s burst {}",
            p.name,
            p.origins.join(", "),
            p.keys_sha256.len(),
            p.revoked_keys_sha256.len(),
            p.admin_tokens_sha256.len(),
            rate.per_second,
            rate.burst
        );
    }
    Ok(())
}

fn existing(path: &Path) -> anyhow::Result<ProjectsFile> {
    if !path.is_file() {
        return Err(bad_input(format!(
            "no projects file at {} (create one with `understudy project add`)",
            path.display()
        )));
    }
    ProjectsFile::load_or_empty(path).map_err(classify)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_flags_default_sensibly() {
        assert_eq!(rate_limit(None, None).unwrap(), None);
        assert_eq!(
            rate_limit(Some(5.0), None).unwrap(),
            Some(RateLimit {
                per_second: 5.0,
                burst: 10
            })
        );
        assert_eq!(
            rate_limit(None, Some(7)).unwrap().unwrap().per_second,
            DEFAULT_RATE.per_second
        );
        assert!(rate_limit(Some(0.0), None).is_err());
        assert!(rate_limit(Some(1.0), Some(0)).is_err());
    }
}
