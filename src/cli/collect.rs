//! `understudy collect`: run the HTTP collector until Ctrl-C or SIGTERM.
//!
//! Opens the store first (so a bad `--db` fails before anything listens), binds, prints
//! where the collector and its script are, serves, and shuts down gracefully: requests in
//! flight are finished and the store is closed.

use anyhow::Context;

use super::CollectArgs;
use crate::collect::{self, Limits, SCRIPT_PATH};
use crate::exit_code;
use crate::store::SqliteStore;

pub(super) fn run(args: CollectArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(exit_code::SUCCESS)
}

async fn serve(args: CollectArgs) -> anyhow::Result<()> {
    let db = args.db.clone();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&db))
        .await
        .context("opening the session store")??;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;

    eprintln!("understudy collector listening on http://{addr}");
    eprintln!("  script: <script src=\"http://{addr}{SCRIPT_PATH}\"></script>");
    eprintln!("  storing sessions in {}", args.db.display());
    if !addr.ip().is_loopback() {
        eprintln!(
            "  warning: {} is not a loopback address; anyone who can reach it can send sessions",
            addr.ip()
        );
    }

    collect::serve_store(listener, store, Limits::default(), shutdown_signal())
        .await
        .context("collector failed")?;
    eprintln!("collector stopped");
    Ok(())
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
