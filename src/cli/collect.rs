//! `understudy collect`: run the HTTP collector until Ctrl-C or SIGTERM.
//!
//! Opens the store and reads the projects file first (so a bad `--db` or `--projects`
//! fails before anything listens), binds, prints where the collector and its script are,
//! serves, and shuts down gracefully: requests in flight are finished and the store is
//! closed. SIGHUP re-reads the projects file at once (it is also polled).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::CollectArgs;
use crate::collect::{self, Access, Limits, Options, Retention, SCRIPT_PATH};
use crate::exit_code::{self, bad_input};
use crate::store::{self, SessionStore};

pub(super) fn run(args: CollectArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(exit_code::SUCCESS)
}

async fn serve(args: CollectArgs) -> anyhow::Result<()> {
    let access = match &args.projects {
        Some(path) => Some(Arc::new(
            Access::load(path, Duration::from_millis(args.projects_poll_ms.max(1)))
                .map_err(bad_input)?,
        )),
        None => None,
    };
    let db = args.db.clone();
    let store = tokio::task::spawn_blocking(move || store::open(&db))
        .await
        .context("opening the session store")??;
    // A second connection for claims, admin requests and retention.
    let admin_store: Option<Box<dyn SessionStore + Send>> =
        if access.is_some() || args.retain_days.is_some() {
            let db = args.db.clone();
            Some(
                tokio::task::spawn_blocking(move || store::open(&db))
                    .await
                    .context("opening the session store")??,
            )
        } else {
            None
        };
    #[cfg(unix)]
    let hangup = access
        .as_ref()
        .map(|a| reload_on_hangup(Arc::clone(a)))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;

    eprintln!("understudy collector listening on http://{addr}");
    eprintln!("  storing sessions in {}", args.db.display());
    match &access {
        Some(access) => {
            let projects = access.projects();
            let names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
            eprintln!(
                "  script: <script src=\"http://{addr}{SCRIPT_PATH}\" data-key=\"pk_…\"></script>"
            );
            eprintln!(
                "  projects from {} ({}): {}; re-read on change and on SIGHUP",
                access.path().display(),
                names.len(),
                names.join(", ")
            );
        }
        None => {
            eprintln!("  script: <script src=\"http://{addr}{SCRIPT_PATH}\"></script>");
            eprintln!(
                "  WARNING: no --projects: this collector is OPEN. Any page may send sessions,"
            );
            eprintln!(
                "  WARNING: no key, origin or rate limit is checked, and the admin endpoints"
            );
            eprintln!("  WARNING: (forget, list, export) are off. For local use only; see `understudy project add`.");
        }
    }
    if let Some(days) = args.retain_days {
        eprintln!("  retention: sessions whose last batch is older than {days} days are deleted now and hourly");
    }
    if !addr.ip().is_loopback() {
        eprintln!(
            "  warning: {} is not a loopback address; anyone who can reach it can {}",
            addr.ip(),
            if access.is_some() {
                "try keys and tokens (serve it behind TLS)"
            } else {
                "send sessions"
            }
        );
    }

    let options = Options {
        limits: Limits::default(),
        access,
        admin_store,
        retain: args.retain_days.map(Retention::days),
    };
    let served = collect::serve_with(listener, store, options, shutdown_signal()).await;
    #[cfg(unix)]
    if let Some(task) = hangup {
        task.abort();
    }
    served.context("collector failed")?;
    eprintln!("collector stopped");
    Ok(())
}

/// Re-reads the projects file on every SIGHUP (rotation without a restart).
#[cfg(unix)]
fn reload_on_hangup(access: Arc<Access>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let a = Arc::clone(&access);
            match tokio::task::spawn_blocking(move || a.reload()).await {
                Ok(Ok(collect::access::Reload::Changed)) => {
                    eprintln!("SIGHUP: projects file reloaded")
                }
                Ok(Ok(collect::access::Reload::Unchanged)) => {
                    eprintln!("SIGHUP: projects file unchanged")
                }
                Ok(Err(e)) => eprintln!(
                    "SIGHUP: projects file not reloaded, the previous projects stay in force: {e}"
                ),
                Err(e) => eprintln!("SIGHUP: reload failed: {e}"),
            }
        }
    }))
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    eprintln!("shutting down: finishing requests in flight");
}
