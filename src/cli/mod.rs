//! The command line: clap definitions, and one handler file per command family.
//!
//! Handlers take parsed arguments, call into the pipeline modules, print, and return
//! `anyhow::Result`. [`main`] maps the result to a named exit code ([`crate::exit_code`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::store::DbSpec;

mod bench;
mod collect;
mod cook;
mod demo;
mod fit;
mod gate;
mod project;
mod replay;
mod sessions;

/// Rehearse a deploy with synthetic users learned from real ones.
#[derive(Debug, Parser)]
#[command(name = "understudy", version, about, max_term_width = 100)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector: serve capture.js and store the sessions it sends.
    Collect(CollectArgs),
    /// List, export and import recorded sessions; forget a user; prune old sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Create projects (ingest key, allowed origins, admin token) and rotate their secrets.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Turn recorded sessions into actions, signals and outcomes.
    Cook(CookArgs),
    /// Write a self-contained HTML player for one recorded session.
    Replay(ReplayArgs),
    /// Fit a Markov behaviour model from recorded sessions.
    Fit(FitArgs),
    /// Inspect a fitted model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run simulated users from a model against one build.
    Simulate(SimulateArgs),
    /// Run paired simulated users against a baseline and a candidate build, and gate.
    Gate(GateArgs),
    /// Combine shard blobs from `gate --shard` into one verdict and one set of reports.
    Merge(MergeArgs),
    /// The whole loop on the bundled demo shop: record, fit, gate every candidate, and
    /// compare the prediction with the truth.
    Demo(DemoArgs),
    /// Print the capture script, for sites that bundle it themselves.
    CaptureScript,
    /// Benchmarks that print figures side by side with their anchors.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Address to listen on. Loopback unless you say otherwise.
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub listen: SocketAddr,
    /// Session database: a SQLite file (created if missing) or a postgres:// URL (the
    /// schema is created or upgraded on start; several collectors may share one).
    #[arg(long)]
    pub db: DbSpec,
    /// Projects file (TOML, from `understudy project add`): ingest keys, allowed origins,
    /// admin tokens and rate limits. Re-read when it changes and on SIGHUP. Without it the
    /// collector is open to any page and its admin endpoints are off (local use only).
    #[arg(long, value_name = "FILE")]
    pub projects: Option<PathBuf>,
    /// Delete sessions whose last batch arrived more than N days ago, at start and hourly.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub retain_days: Option<u32>,
    /// How often to look at the projects file for changes, in ms (tests turn it down or off).
    #[arg(long, hide = true, default_value_t = 2000, value_name = "MS")]
    pub projects_poll_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Add a project: prints its ingest key (public, for the script tag) and an admin
    /// token (secret, shown once). The file keeps only their SHA-256.
    Add {
        /// Project name, [A-Za-z0-9_-].
        name: String,
        /// An origin whose pages may send sessions, e.g. https://shop.example; "*" for any.
        /// Repeatable.
        #[arg(long = "origin", required = true, value_name = "ORIGIN")]
        origins: Vec<String>,
        /// Projects file (created if missing).
        #[arg(long, value_name = "FILE")]
        projects: PathBuf,
        /// Batches per second allowed per key (default 1000).
        #[arg(long, value_name = "N")]
        rate: Option<f64>,
        /// Batches allowed in a burst per key (default twice the rate).
        #[arg(long, value_name = "N")]
        burst: Option<u32>,
    },
    /// Mint a new ingest key; the old one is revoked (403) unless --keep-old.
    RotateKey {
        name: String,
        #[arg(long, value_name = "FILE")]
        projects: PathBuf,
        /// Keep the old key working too (switch pages over, then rotate again).
        #[arg(long)]
        keep_old: bool,
    },
    /// Mint a new admin token; the old ones stop working unless --keep-old.
    RotateToken {
        name: String,
        #[arg(long, value_name = "FILE")]
        projects: PathBuf,
        #[arg(long)]
        keep_old: bool,
    },
    /// List the projects (names, origins, how many keys and tokens; never secrets).
    List {
        #[arg(long, value_name = "FILE")]
        projects: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List stored sessions.
    List {
        /// Session database: a SQLite file or a postgres:// URL.
        #[arg(long)]
        db: DbSpec,
        /// One JSON object per session, as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Write one session's batches as NDJSON (one batch per line).
    Export {
        /// Session id.
        id: String,
        /// Session database: a SQLite file or a postgres:// URL.
        #[arg(long)]
        db: DbSpec,
        /// Output file; standard output when omitted.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Import NDJSON batches exported from another machine (all or nothing).
    Import {
        /// NDJSON file, as written by `sessions export`.
        file: PathBuf,
        /// Session database: a SQLite file or a postgres:// URL.
        #[arg(long)]
        db: DbSpec,
    },
    /// Delete every session in which a user was identified (`understudy('identify', id)`),
    /// overwriting the deleted bytes.
    Forget {
        /// The id the page passed to `understudy('identify', id)`.
        #[arg(long)]
        user: String,
        /// Session database: a SQLite file or a postgres:// URL.
        #[arg(long)]
        db: DbSpec,
        /// Only sessions of this project.
        #[arg(long)]
        project: Option<String>,
    },
    /// Delete sessions whose last batch arrived more than N days ago.
    Prune {
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        older_than_days: u32,
        /// Session database: a SQLite file or a postgres:// URL.
        #[arg(long)]
        db: DbSpec,
    },
}

#[derive(Debug, Args)]
pub struct CookArgs {
    /// Session database: a SQLite file or a postgres:// URL.
    #[arg(long)]
    pub db: DbSpec,
    /// Only this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A goal, `[NAME=]url:/route/*`, `[NAME=]element:SELECTOR` or
    /// `[NAME=]request:METHOD /path/*`. Repeatable.
    #[arg(long = "goal", value_name = "SPEC")]
    pub goals: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Session id (see `sessions list`).
    pub session: String,
    /// Session database the session is stored in: a SQLite file or a postgres:// URL.
    #[arg(long)]
    pub db: DbSpec,
    /// Where to write the player (one HTML file, no network needed; opens from file://).
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// Session database: a SQLite file or a postgres:// URL.
    #[arg(long)]
    pub db: DbSpec,
    /// Where to write the model (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// A goal (see `cook --help`). Repeatable.
    #[arg(long = "goal", value_name = "SPEC")]
    pub goals: Vec<String>,
    /// Markov order: 1, or 2 with back-off to 1.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub order: u8,
    /// Fraction of sessions, latest by start time, held out for evaluation.
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Seed for the Monte-Carlo estimate of model-implied conversion.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Fitted model (from `understudy fit`).
    #[arg(long)]
    pub model: PathBuf,
    /// The build to visit.
    #[arg(long)]
    pub url: String,
    /// Simulated users.
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder for outcomes.json and the recorded sessions (simulated.db).
    #[arg(long, default_value = "understudy-sim")]
    pub out: PathBuf,
    /// Tabs at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Factor on fitted think times (page waits stay real).
    #[arg(long, default_value_t = 0.2)]
    pub time_scale: f64,
    /// Goals (see `cook --help`); the model's own goals when omitted.
    #[arg(long = "goal", value_name = "SPEC")]
    pub goals: Vec<String>,
    /// Use a remote Chromium (CDP endpoint, `ws://…` or `http://host:9222`).
    #[arg(long)]
    pub browser_ws: Option<String>,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// Scenario file (TOML).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Baseline URL (overrides the scenario's).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Candidate URL (overrides the scenario's).
    #[arg(long)]
    pub candidate: Option<String>,
    /// Folder for junit.xml, report/index.html, summary.md, results.json.
    #[arg(long, default_value = "understudy-out")]
    pub out: PathBuf,
    /// Run only shard i of n (from 0) and write `run.blob` for `understudy merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// An inconclusive error-level check fails the run.
    #[arg(long)]
    pub fail_on_inconclusive: bool,
    /// Use a remote Chromium (CDP endpoint, `ws://…` or `http://host:9222`).
    #[arg(long)]
    pub browser_ws: Option<String>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The `run.blob` of every shard.
    #[arg(required = true)]
    pub blobs: Vec<PathBuf>,
    /// Folder for the reports.
    #[arg(long, default_value = "understudy-out")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
    /// Folder for the model and each candidate's reports (`DIR/<candidate>/`).
    #[arg(long, default_value = "understudy-demo")]
    pub out: PathBuf,
    /// Scripted people recorded on the baseline, to fit the model from.
    #[arg(long, default_value_t = 50)]
    pub population: u32,
    /// How many of those people are also run on each candidate for the true Δ.
    #[arg(long, default_value_t = 30)]
    pub truth: u32,
    /// Tabs at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Serve every build of the demo shop (and a collector) and print their URLs.
    Serve,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print a readable summary: top paths, states, and where users leave.
    Show {
        file: PathBuf,
        /// How many rows per section.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Collector ingest on loopback, against raw rusqlite inserts of the same rows.
    Collect {
        /// The collector's session database, as `collect --db`: a SQLite file or a
        /// postgres:// URL. Default: a fresh SQLite file per row.
        #[arg(long, value_name = "DB")]
        db: Option<String>,
        /// Concurrent connections; one row each.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
        connections: Vec<usize>,
        /// Seconds of load per row (a row also ends when its pool of batches runs out).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Synthetic sessions in each row's pool of batches (about 6 batches each).
        #[arg(long, default_value_t = 6000)]
        sessions: usize,
        /// First print where one batch's time goes (decode, checks, encoding, SQL, sync).
        #[arg(long)]
        profile: bool,
    },
    /// Fit speed, against parsing the same events.
    Fit {
        /// Synthetic sessions to fit.
        #[arg(long, default_value_t = 2000)]
        sessions: usize,
    },
    /// The simulator's click (one evaluate + mouse events) against chromiumoxide's
    /// `Element::click`, in real Chromium on the demo shop.
    Click,
    /// capture.js against rrweb's recorder in the same Chromium: rrweb's six mutation
    /// workloads and a 100 000-node snapshot (time to emit, longest task, gzipped bytes).
    /// `scripts/bench-capture` installs rrweb and terser and runs this.
    Capture {
        /// rrweb's recorder as a UMD bundle (`@rrweb/record/dist/record.umd.min.cjs` or
        /// `rrweb/dist/rrweb.umd.min.cjs`); without it only capture.js and no recorder run.
        #[arg(long)]
        rrweb: Option<PathBuf>,
        /// capture.js minified (e.g. by terser), for the script-size line.
        #[arg(long)]
        capture_min: Option<PathBuf>,
        /// Runs per workload and recorder (medians are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Only these workloads (repeatable), e.g. `--only snapshot-100k`.
        #[arg(long)]
        only: Vec<String>,
        /// A run ends after this long without a recorder emission (ms).
        #[arg(long, default_value_t = 300)]
        quiet_ms: u64,
        /// Write a CPU profile per workload and recorder (one extra run each) into this
        /// folder and print where the recorders spent their time.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Write each recorder's recording of its last run per workload into this folder
        /// (`WORKLOAD-RECORDER.ndjson`: one batch, or one rrweb event, per line).
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Options for rrweb's `record()` besides `emit`, as a JSON object, e.g.
        /// '{"maskTextSelector":"*","maskAllInputs":true}' to mask text as capture.js does.
        #[arg(long)]
        rrweb_options: Option<String>,
        /// Instead: record a continuously mutating page with capture.js for SECS seconds,
        /// printing the JS heap after a forced GC every 10 s.
        #[arg(long, value_name = "SECS")]
        soak: Option<u64>,
    },
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            crate::exit_code::for_error(&err)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,chromiumoxide=error",
        1 => "info,chromiumoxide=error",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Collect(args) => collect::run(args),
        Command::Sessions(cmd) => sessions::run(cmd),
        Command::Project(cmd) => project::run(cmd),
        Command::Cook(args) => cook::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Fit(args) => fit::run(args),
        Command::Model(ModelCommand::Show { file, top }) => fit::show(&file, top),
        Command::Simulate(args) => gate::simulate(args),
        Command::Gate(args) => gate::gate(args),
        Command::Merge(args) => gate::merge(args),
        Command::Demo(args) => demo::run(args),
        Command::CaptureScript => {
            print!("{}", crate::capture::SCRIPT);
            Ok(crate::exit_code::SUCCESS)
        }
        Command::Bench(cmd) => bench::run(cmd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_listens_on_loopback_unless_told_otherwise() {
        let cli = Cli::try_parse_from(["understudy", "collect", "--db", "s.db"]).unwrap();
        let Command::Collect(args) = cli.command else {
            panic!("not collect");
        };
        assert!(args.listen.ip().is_loopback(), "{}", args.listen);
        assert_eq!(args.listen.to_string(), "127.0.0.1:4318");
        assert!(args.projects.is_none() && args.retain_days.is_none());
    }
}
