//! `understudy simulate`, `understudy gate` and `understudy merge`: run simulated users, decide,
//! and write the reports.
//!
//! The decision is one function ([`decide`]) over paired outcomes in user order, so an
//! unsharded run and merged shards reach the same verdict on the same pairs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Context};

use super::replay::attach_replays;
use super::{GateArgs, MergeArgs, SimulateArgs};
use crate::compare::Pair;
use crate::compare::{
    evaluate, overall, sequential_decision, summarize_build, GateOutcome, PairedData,
    SequentialDecision, SequentialStatus, SessionOutcome, StopReason,
};
use crate::exit_code::{bad_input, GATE_FAILED, SUCCESS};
use crate::model::Model;
use crate::report::{self, Build, RunResults, SessionRef, ShardInfo};
use crate::scenario::{RawScenario, Scenario};
use crate::simulate::blob::{self, RunBlob, BLOB_FORMAT, BLOB_VERSION};
use crate::simulate::driver::{DriverConfig, DriverError};
use crate::simulate::runner::{PairOutcome, Recorded, Runner, RunnerConfig, SimOutcome};
use crate::simulate::user::UserConfig;
use crate::store::{SessionStore, SqliteStore};

/// File name of a shard's blob inside its `--out` folder.
pub const BLOB_FILE: &str = "run.blob";
/// Simulated sessions are kept here (inside `--out`) for replay.
pub const SIMULATED_DB: &str = "simulated.db";

/// A loaded model and what identifies it.
pub(crate) struct LoadedModel {
    pub model: Arc<Model>,
    pub hash: String,
    pub path: PathBuf,
}

/// FNV-1a 64 over the file's bytes: a stable identity for reports and blobs.
pub(crate) fn fnv1a(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

pub(crate) fn load_model(path: &Path) -> anyhow::Result<LoadedModel> {
    let bytes = std::fs::read(path)
        .map_err(|e| bad_input(format!("cannot read model {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| bad_input(format!("model {} is not UTF-8", path.display())))?;
    let model =
        Model::from_json(&text).map_err(|e| bad_input(format!("model {}: {e}", path.display())))?;
    Ok(LoadedModel {
        model: Arc::new(model),
        hash: fnv1a(&bytes),
        path: path.to_path_buf(),
    })
}

fn infra(e: DriverError) -> anyhow::Error {
    anyhow!(e)
}

/// A progress bar on a terminal, nothing elsewhere.
fn progress(total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(what.to_string());
    Some(bar)
}

/// Keeps simulated sessions in a SQLite file for replay; best effort.
pub(super) struct Keeper {
    store: Option<Mutex<SqliteStore>>,
}

impl Keeper {
    pub(super) fn open(out: &Path) -> Keeper {
        let store = SqliteStore::open(&out.join(SIMULATED_DB))
            .map_err(|e| tracing::warn!(error = %e, "not keeping simulated sessions"))
            .ok()
            .map(Mutex::new);
        Keeper { store }
    }

    pub(super) fn keep(&self, r: &Recorded) {
        if let Some(store) = &self.store {
            if let Err(e) = store.lock().unwrap().put_batches(&r.session.batches, 0) {
                tracing::warn!(error = %e, "could not keep a simulated session");
            }
        }
    }
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// What the statistics decided on a prefix of the pairs.
pub(crate) struct Decision {
    /// Pairs the verdict rests on (a prefix of the pairs in user order).
    pub used: usize,
    pub sequential: Option<SequentialStatus>,
    pub checks: Vec<crate::compare::CheckResult>,
    pub outcome: GateOutcome,
}

fn paired(pairs: &[PairOutcome]) -> PairedData {
    let sessions: Vec<Pair<SessionOutcome>> = pairs
        .iter()
        .map(|p| Pair {
            baseline: p.baseline.session_outcome(),
            candidate: p.candidate.session_outcome(),
        })
        .collect();
    PairedData::from_sessions(&sessions)
}

/// The sequential status at a look of `n` pairs.
pub(crate) fn look(sc: &Scenario, pairs: &[PairOutcome]) -> anyhow::Result<SequentialStatus> {
    sequential_decision(&sc.checks, &paired(pairs), &sc.sequential_plan())
        .map_err(|e| bad_input(format!("cannot evaluate the scenario's checks: {e}")))
}

/// Decides over pairs in user order: looks at `min`, `min + k`, … and stops at the first
/// look that decides (or uses all pairs). The same pairs always give the same decision.
pub(crate) fn decide(sc: &Scenario, pairs: &[PairOutcome]) -> anyhow::Result<Decision> {
    let plan = sc.sequential_plan();
    let mut used = pairs.len();
    let mut status = None;
    let mut n = plan.min_pairs;
    while n <= pairs.len() {
        let s = look(sc, &pairs[..n])?;
        let stop = matches!(s.decision, SequentialDecision::Stop(_));
        status = Some(s);
        if stop {
            used = n;
            break;
        }
        n += plan.check_every.max(1);
    }
    let data = paired(&pairs[..used]);
    let mut checks = evaluate(&sc.checks, &data, &sc.gate_config())
        .map_err(|e| bad_input(format!("cannot evaluate the checks on {used} pairs: {e}")))?;
    // Stopped early by the confidence sequence: its verdicts are the gate's (the fixed-sample
    // intervals stay in the report). At `max` pairs, the fixed-sample test decides.
    let outcome = match &status {
        Some(s)
            if s.pairs == used
                && matches!(
                    s.decision,
                    SequentialDecision::Stop(StopReason::Decided | StopReason::ErrorCheckFailed)
                ) =>
        {
            for c in &mut checks {
                if let Some(seq) = s.checks.iter().find(|q| q.metric == c.metric) {
                    c.verdict = seq.verdict;
                    c.explanation = format!("{} (sequential: {})", c.explanation, seq.explanation);
                }
            }
            GateOutcome::from_verdicts(
                s.checks.iter().map(|c| (c.level, c.verdict)),
                sc.fail_on_inconclusive,
            )
        }
        _ => overall(&checks, sc.fail_on_inconclusive),
    };
    Ok(Decision {
        used,
        sequential: status,
        checks,
        outcome,
    })
}

fn session_refs(pairs: &[PairOutcome], keep: usize) -> Vec<SessionRef> {
    let mut refs: Vec<(f64, SessionRef)> = Vec::new();
    for p in pairs {
        for (build, o) in [
            (Build::Baseline, &p.baseline),
            (Build::Candidate, &p.candidate),
        ] {
            let frustration: f64 = o.signals.values().sum();
            let score = frustration + if o.converted { 0.0 } else { 0.5 };
            refs.push((
                score,
                SessionRef {
                    user: p.user as usize,
                    build,
                    session_id: o.sid.clone(),
                    converted: o.converted,
                    signals: o
                        .signals
                        .iter()
                        .map(|(k, v)| (k.clone(), *v as u32))
                        .collect(),
                    replay: None,
                },
            ));
        }
    }
    refs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.user.cmp(&b.1.user)));
    refs.into_iter().take(keep).map(|(_, r)| r).collect()
}

/// Runs pairs in blocks, from `pairs.min` every `pairs.check_every`, looking after each
/// block, until the sequential test stops or `pairs.max` is reached. Users run in index
/// order, so [`decide`] over the result reproduces the stop.
/// Below this burn-in, interim looks get a warning (`reference/models_stats.md` §3.5
/// recommends 100-200 pairs).
const EARLY_LOOK_WARNING: usize = 100;

pub(crate) async fn run_sequential(
    runner: &Arc<Runner>,
    sc: &Scenario,
    baseline: &str,
    candidate: &str,
    on_done: &(dyn Fn(&PairOutcome, &Recorded, &Recorded) + Sync),
) -> anyhow::Result<Vec<PairOutcome>> {
    let plan = sc.sequential_plan();
    let max = plan.max_pairs;
    if plan.min_pairs < EARLY_LOOK_WARNING && plan.max_pairs > plan.min_pairs {
        tracing::warn!(
            min_pairs = plan.min_pairs,
            "interim looks before {EARLY_LOOK_WARNING} pairs lean on a normal approximation \
             (the confidence sequence's plug-in variance); a longer burn-in is safer"
        );
    }
    let mut pairs: Vec<PairOutcome> = Vec::new();
    let mut next = plan.min_pairs.min(max);
    loop {
        let block: Vec<u64> = (pairs.len() as u64..next as u64).collect();
        let mut done = runner
            .run_pairs(&block, baseline, candidate, on_done)
            .await
            .map_err(infra)?;
        pairs.append(&mut done);
        if pairs.len() >= max || matches!(look(sc, &pairs)?.decision, SequentialDecision::Stop(_)) {
            return Ok(pairs);
        }
        next = (pairs.len() + plan.check_every.max(1)).min(max);
    }
}

/// Everything a report needs besides the decision.
pub(crate) struct RunMeta {
    pub scenario: Scenario,
    pub model_path: String,
    pub model_hash: String,
    pub chromium_version: String,
    pub shard: Option<ShardInfo>,
    pub started: String,
    pub started_at: Instant,
    pub infrastructure_errors: Vec<String>,
}

impl RunMeta {
    /// An unsharded run of `sc` with a loaded model, started at `started` (UTC text) and
    /// `started_at` (for the duration), with no infrastructure errors so far.
    pub fn unsharded(
        sc: &Scenario,
        loaded: &LoadedModel,
        chromium_version: String,
        started: String,
        started_at: Instant,
    ) -> RunMeta {
        RunMeta {
            scenario: sc.clone(),
            model_path: loaded.path.display().to_string(),
            model_hash: loaded.hash.clone(),
            chromium_version,
            shard: None,
            started,
            started_at,
            infrastructure_errors: Vec::new(),
        }
    }
}

pub(crate) fn results(
    meta: &RunMeta,
    pairs: &[PairOutcome],
    d: &Decision,
) -> anyhow::Result<RunResults> {
    let sc = &meta.scenario;
    let used = &pairs[..d.used];
    let funnel = funnel_names(sc);
    let summary = |side: fn(&PairOutcome) -> &SimOutcome| -> Option<crate::compare::BuildSummary> {
        let outcomes: Vec<SessionOutcome> =
            used.iter().map(|p| side(p).session_outcome()).collect();
        summarize_build(&outcomes, &funnel, sc.confidence).ok()
    };
    Ok(RunResults {
        format: report::FormatTag,
        version: report::RESULTS_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        chromium_version: meta.chromium_version.clone(),
        seed: sc.seed,
        model_path: meta.model_path.clone(),
        model_hash: meta.model_hash.clone(),
        scenario: sc.name.clone(),
        baseline_url: sc.baseline.to_string(),
        candidate_url: sc.candidate.to_string(),
        shard: meta.shard,
        pairs: d.used,
        confidence: sc.confidence,
        fail_on_inconclusive: sc.fail_on_inconclusive,
        baseline: summary(|p| &p.baseline),
        candidate: summary(|p| &p.candidate),
        checks: d.checks.clone(),
        outcome: d.outcome,
        sequential: d.sequential.clone(),
        funnel_steps: funnel,
        started: meta.started.clone(),
        finished: now_utc(),
        duration_ms: meta.started_at.elapsed().as_millis() as u64,
        sessions: session_refs(used, 12),
        infrastructure_errors: meta.infrastructure_errors.clone(),
    })
}

fn funnel_names(sc: &Scenario) -> Vec<String> {
    sc.funnel.clone()
}

pub(crate) fn now_utc() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    crate::cook::format_epoch_ms(ms)
}

/// Writes every report; returns the exit code of the verdict.
pub(crate) fn publish_quiet(results: &RunResults, out: &Path) -> anyhow::Result<i32> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    report::write_all(results, out)
        .with_context(|| format!("failed to write reports to {}", out.display()))?;
    Ok(match results.status() {
        report::RunStatus::InfrastructureError => crate::exit_code::INFRA,
        _ if results.outcome.fails_run() => GATE_FAILED,
        _ => SUCCESS,
    })
}

/// Writes every report and prints the summary; returns the exit code of the verdict.
pub(crate) fn publish(results: &RunResults, out: &Path) -> anyhow::Result<i32> {
    let code = publish_quiet(results, out)?;
    print!("{}", report::render_summary(results));
    if std::env::var_os("GITHUB_ACTIONS").is_some() {
        for line in report::annotations(results) {
            println!("{line}");
        }
    }
    eprintln!("reports: {}", out.display());
    Ok(code)
}

fn parse_shard(s: &str) -> anyhow::Result<(u32, u32)> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| bad_input(format!("--shard `{s}`: expected i/n, e.g. 0/4")))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| bad_input(format!("--shard `{s}`: `{i}` is not a number")))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| bad_input(format!("--shard `{s}`: `{n}` is not a number")))?;
    if n == 0 || i >= n {
        return Err(bad_input(format!(
            "--shard `{s}`: need 0 <= i < n (shards are numbered from 0)"
        )));
    }
    Ok((i, n))
}

fn parse_url(s: &Option<String>, flag: &str) -> anyhow::Result<Option<url::Url>> {
    s.as_deref()
        .map(|u| url::Url::parse(u).map_err(|e| bad_input(format!("{flag} `{u}`: {e}"))))
        .transpose()
}

pub(crate) fn runner_config(sc: &Scenario, browser_ws: Option<String>) -> RunnerConfig {
    RunnerConfig {
        concurrency: sc.concurrency,
        driver: DriverConfig {
            remote: browser_ws,
            ..DriverConfig::default()
        },
        user: UserConfig {
            time_scale: sc.time_scale,
            max_steps: sc.max_steps,
            ..UserConfig::default()
        },
        seed: sc.seed,
        max_restarts: 2,
        funnel: funnel_names(sc),
    }
}

/// `understudy gate`.
pub(super) fn gate(args: GateArgs) -> anyhow::Result<i32> {
    let started_at = Instant::now();
    let started = now_utc();
    let mut sc = Scenario::load(
        &args.scenario,
        parse_url(&args.baseline, "--baseline")?,
        parse_url(&args.candidate, "--candidate")?,
    )
    .map_err(bad_input)?;
    if args.fail_on_inconclusive {
        sc.fail_on_inconclusive = true;
    }
    let scenario_toml = std::fs::read_to_string(&args.scenario)
        .with_context(|| format!("cannot read {}", args.scenario.display()))?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let loaded = load_model(&sc.model)?;
    let out = args.out.clone();
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    let rt = runtime()?;
    rt.block_on(async move {
        let config = runner_config(&sc, args.browser_ws.clone());
        let goals = sc.goals.clone();
        let runner = Arc::new(
            Runner::start(config, loaded.model.clone(), goals)
                .await
                .map_err(infra)?,
        );
        let (baseline, candidate) = (sc.baseline.to_string(), sc.candidate.to_string());
        for (what, url) in [("baseline", &baseline), ("candidate", &candidate)] {
            if let Err(e) = runner.check_reachable(url).await {
                if let Ok(r) = Arc::try_unwrap(runner) {
                    r.shutdown().await;
                }
                return Err(anyhow!("the {what} build is unreachable: {e}"));
            }
        }
        let keeper = Keeper::open(&out);
        let chromium_version = runner.browser_version().to_string();
        let max = sc.pairs.max;
        let users: Vec<u64> = match shard {
            Some((i, n)) => blob::shard_users(max, i, n),
            None => (0..max as u64).collect(),
        };
        let bar = progress(users.len() as u64, "pairs");
        let on_done = |_: &PairOutcome, b: &Recorded, c: &Recorded| {
            keeper.keep(b);
            keeper.keep(c);
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        };
        if let Some((i, n)) = shard {
            // A shard runs all its users; the merge decides.
            let pairs = runner
                .run_pairs(&users, &baseline, &candidate, &on_done)
                .await
                .map_err(infra)?;
            let blob = RunBlob {
                format: BLOB_FORMAT.to_string(),
                version: BLOB_VERSION,
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
                chromium_version,
                scenario: sc.name.clone(),
                scenario_toml,
                scenario_path: args.scenario.display().to_string(),
                seed: sc.seed,
                model_path: loaded.path.display().to_string(),
                model_hash: loaded.hash.clone(),
                baseline_url: baseline.clone(),
                candidate_url: candidate.clone(),
                shard: i,
                shards: n,
                max_pairs: max,
                pairs,
            };
            let path = out.join(BLOB_FILE);
            std::fs::write(&path, blob.to_json())
                .with_context(|| format!("cannot write {}", path.display()))?;
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            eprintln!(
                "shard {i}/{n}: {} pairs written to {} (run `understudy merge` on all shards)",
                blob.pairs.len(),
                path.display()
            );
            if let Ok(r) = Arc::try_unwrap(runner) {
                r.shutdown().await;
            }
            return Ok(SUCCESS);
        }
        // Unsharded: run in blocks and stop as soon as the sequential test decides.
        let pairs = run_sequential(&runner, &sc, &baseline, &candidate, &on_done).await?;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let decision = decide(&sc, &pairs)?;
        let meta = RunMeta::unsharded(&sc, &loaded, chromium_version, started, started_at);
        let mut results = results(&meta, &pairs, &decision)?;
        write_outcomes(&out, &pairs)?;
        if let Ok(r) = Arc::try_unwrap(runner) {
            r.shutdown().await;
        }
        drop(keeper);
        attach_replays(&mut results, &[out.join(SIMULATED_DB)], &out);
        publish(&results, &out)
    })
}

fn write_outcomes(out: &Path, pairs: &[PairOutcome]) -> anyhow::Result<()> {
    let path = out.join("pairs.json");
    std::fs::write(&path, serde_json::to_string(pairs)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `understudy merge`.
pub(super) fn merge(args: MergeArgs) -> anyhow::Result<i32> {
    let started_at = Instant::now();
    let mut blobs = Vec::new();
    for path in &args.blobs {
        let meta = std::fs::metadata(path)
            .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
        if meta.len() > blob::MAX_BLOB_BYTES {
            return Err(bad_input(format!(
                "{} is {} bytes; a run blob is at most {}",
                path.display(),
                meta.len(),
                blob::MAX_BLOB_BYTES
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
        blobs.push(
            RunBlob::from_json(&text).map_err(|e| bad_input(format!("{}: {e}", path.display())))?,
        );
    }
    let (first, pairs) = blob::merge(blobs).map_err(bad_input)?;
    let path = PathBuf::from(&first.scenario_path);
    let sc = RawScenario::parse(&first.scenario_toml, &path)
        .and_then(|raw| {
            raw.with_urls(
                url::Url::parse(&first.baseline_url).ok(),
                url::Url::parse(&first.candidate_url).ok(),
            )
            .resolve(&path)
        })
        .map_err(bad_input)?;
    let decision = decide(&sc, &pairs)?;
    let meta = RunMeta {
        scenario: sc,
        model_path: first.model_path.clone(),
        model_hash: first.model_hash.clone(),
        chromium_version: first.chromium_version.clone(),
        shard: None,
        started: now_utc(),
        started_at,
        infrastructure_errors: Vec::new(),
    };
    let mut results = results(&meta, &pairs, &decision)?;
    std::fs::create_dir_all(&args.out)?;
    write_outcomes(&args.out, &pairs)?;
    // Each shard kept its sessions beside its blob.
    let kept: Vec<PathBuf> = args
        .blobs
        .iter()
        .map(|b| match b.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join(SIMULATED_DB),
            _ => PathBuf::from(SIMULATED_DB),
        })
        .collect();
    attach_replays(&mut results, &kept, &args.out);
    publish(&results, &args.out)
}

/// `understudy simulate`: users on one build, no gate.
pub(super) fn simulate(args: SimulateArgs) -> anyhow::Result<i32> {
    let loaded = load_model(&args.model)?;
    let goals = args
        .goals
        .iter()
        .map(|g| crate::cook::parse_goal(g).map_err(|e| bad_input(format!("--goal `{g}`: {e}"))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let goals = if goals.is_empty() {
        loaded
            .model
            .provenance
            .goals
            .iter()
            .filter_map(|g| crate::cook::parse_goal(g).ok())
            .collect()
    } else {
        goals
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let config = RunnerConfig {
        concurrency: args.concurrency,
        driver: DriverConfig {
            remote: args.browser_ws.clone(),
            ..DriverConfig::default()
        },
        user: UserConfig {
            time_scale: args.time_scale,
            ..UserConfig::default()
        },
        seed: args.seed,
        max_restarts: 2,
        funnel: Vec::new(),
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let runner = Arc::new(
            Runner::start(config, loaded.model.clone(), goals)
                .await
                .map_err(infra)?,
        );
        if let Err(e) = runner.check_reachable(&args.url).await {
            if let Ok(r) = Arc::try_unwrap(runner) {
                r.shutdown().await;
            }
            return Err(anyhow!("{} is unreachable: {e}", args.url));
        }
        let keeper = Keeper::open(&args.out);
        let users: Vec<u64> = (0..args.users as u64).collect();
        let bar = progress(users.len() as u64, "users");
        let t0 = Instant::now();
        let outcomes = runner
            .run_single(&users, &args.url, &|r| {
                keeper.keep(r);
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            })
            .await
            .map_err(infra)?;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let wall = t0.elapsed().as_secs_f64();
        let path = args.out.join("outcomes.json");
        std::fs::write(&path, serde_json::to_string_pretty(&outcomes)?)?;
        let n = outcomes.len().max(1) as f64;
        let converted = outcomes.iter().filter(|o| o.converted).count();
        let actions: usize = outcomes.iter().map(|o| o.browser_actions).sum();
        let steps: usize = outcomes.iter().map(|o| o.steps).sum();
        println!(
            "simulated {} users on {} (seed {}): {} converted ({:.1}%)",
            outcomes.len(),
            args.url,
            args.seed,
            converted,
            100.0 * converted as f64 / n
        );
        let mut signals: std::collections::BTreeMap<&str, f64> = Default::default();
        for o in &outcomes {
            for (k, v) in &o.signals {
                *signals.entry(k.as_str()).or_default() += v;
            }
        }
        for (k, v) in signals {
            println!("  {k:<18} {:.3} per session", v / n);
        }
        println!(
            "  {:.1} users/min, {:.1} ms per model step, {:.1} ms per browser action ({} steps, {} actions, {:.1} s)",
            outcomes.len() as f64 / wall * 60.0,
            wall * 1000.0 * runner_concurrency(args.concurrency) / steps.max(1) as f64,
            wall * 1000.0 * runner_concurrency(args.concurrency) / actions.max(1) as f64,
            steps,
            actions,
            wall
        );
        println!("  sessions: {}", args.out.join(SIMULATED_DB).display());
        if let Ok(r) = Arc::try_unwrap(runner) {
            r.shutdown().await;
        }
        Ok(SUCCESS)
    })
}

fn runner_concurrency(c: usize) -> f64 {
    c.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_are_checked() {
        assert_eq!(parse_shard("0/4").unwrap(), (0, 4));
        assert_eq!(parse_shard("3/4").unwrap(), (3, 4));
        for bad in ["4/4", "1/0", "x/2", "2", "-1/3"] {
            let e = parse_shard(bad).unwrap_err();
            assert_eq!(
                crate::exit_code::for_error(&e),
                crate::exit_code::USAGE,
                "{bad}"
            );
        }
    }

    #[test]
    fn model_hash_is_stable() {
        assert_eq!(fnv1a(b""), "fnv1a64:cbf29ce484222325");
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
