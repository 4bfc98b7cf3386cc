//! `understudy demo`: the whole loop on the bundled shop, with the truth beside the
//! prediction.
//!
//! 1. Serve every build of the demo shop and a collector on loopback.
//! 2. Run the scripted population on the baseline: recorded by capture.js through the
//!    collector, like real visitors.
//! 3. Fit a model from those recordings.
//! 4. Run the same population (same people, same seeds) on every candidate: the *true*
//!    change in conversion.
//! 5. Gate every candidate with simulated users from the model, and print predicted against
//!    true.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use super::gate::{
    decide, fnv1a, now_utc, publish_quiet, results, run_sequential, runner_config, runtime, Keeper,
    LoadedModel, RunMeta, SIMULATED_DB,
};
use super::replay::attach_replays;
use super::{DemoArgs, DemoCommand};
use crate::compare::{
    newcombe_unpaired_interval, tango_interval, Interval, Metric, Pair, PairedTable,
};
use crate::cook::{cook_session, parse_goal};
use crate::demo::{run_population, serve_all, Build, PopulationConfig, PopulationReport};
use crate::exit_code::{GATE_FAILED, SUCCESS};
use crate::model::{fit_and_evaluate, FitOptions};
use crate::scenario::RawScenario;
use crate::simulate::driver::{Chromium, DriverConfig};
use crate::simulate::runner::Runner;
use crate::store::{SessionStore, SqliteStore};

/// The demo's scenario (URLs and model are filled in at run time).
pub const DEMO_SCENARIO: &str = include_str!("../../scenarios/demo.toml");

async fn start_collector(db: &Path) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let db = db.to_path_buf();
    tokio::spawn(async move {
        if let Err(e) = crate::collect::serve(listener, &db, async {
            let _ = rx.await;
        })
        .await
        {
            tracing::error!(error = %e, "demo collector stopped");
        }
    });
    Ok((url, tx))
}

pub(super) fn run(args: DemoArgs) -> anyhow::Result<i32> {
    match args.command {
        Some(DemoCommand::Serve) => serve(),
        None => demo(args),
    }
}

fn serve() -> anyhow::Result<i32> {
    runtime()?.block_on(async {
        let dir = tempfile::tempdir()?;
        let (collector, _stop) = start_collector(&dir.path().join("demo.db")).await?;
        let shops = serve_all(&Build::ALL, Some(collector.clone())).await?;
        println!("collector  {collector}  (sessions in {})", dir.path().join("demo.db").display());
        for s in &shops {
            println!("{:<15} {}  {}", s.build().name(), s.url(), s.build().description());
        }
        println!("\nGate a candidate by hand, e.g.:\n  understudy gate --scenario scenarios/demo.toml --baseline {} --candidate {}",
            shops[0].url(), shops[2].url());
        println!("Ctrl-C stops.");
        tokio::signal::ctrl_c().await?;
        Ok(SUCCESS)
    })
}

struct Row {
    build: Build,
    predicted: f64,
    interval: (f64, f64),
    /// True Δ, its interval, and the people it is over.
    truth: (f64, Option<Interval>, usize),
    /// Width of the paired (Tango) and of an unpaired (Newcombe) interval for the same
    /// sessions.
    widths: Option<(f64, f64)>,
    verdict: String,
    pairs: usize,
    failed: bool,
}

fn demo(args: DemoArgs) -> anyhow::Result<i32> {
    let t0 = Instant::now();
    let out = args.out.clone();
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    let db = out.join("demo-sessions.db");
    let _ = std::fs::remove_file(&db);
    runtime()?.block_on(async move {
        let (collector, stop) = start_collector(&db).await?;
        let shops = serve_all(&Build::ALL, Some(collector.clone())).await?;
        let url_of = |b: Build| {
            shops
                .iter()
                .find(|s| s.build() == b)
                .map(|s| s.url())
                .expect("every build is served")
        };
        let chromium = Chromium::launch(DriverConfig::default()).await?;
        let population = PopulationConfig {
            users: args.population,
            concurrency: args.concurrency,
            seed: args.seed,
            ..PopulationConfig::default()
        };

        // 1. Real people on the baseline, recorded through the collector.
        eprintln!("recording {} people on the baseline…", population.users);
        let base = run_population(&chromium, &url_of(Build::Baseline), &population).await?;
        eprintln!("  {}", base.summary());
        tokio::time::sleep(Duration::from_millis(500)).await; // last beacons
        let _ = stop.send(());

        // 2. Fit the model.
        let scenario_path = PathBuf::from("scenarios/demo.toml");
        let raw = RawScenario::parse(DEMO_SCENARIO, &scenario_path).map_err(|e| anyhow!(e))?;
        let goal_specs = raw.goals.clone();
        let goals = goal_specs
            .iter()
            .map(|g| parse_goal(g).map_err(|e| anyhow!("demo goal {g}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let store = tokio::task::spawn_blocking({
            let db = db.clone();
            move || SqliteStore::open(&db)
        })
        .await??;
        let mut cooked = Vec::new();
        for s in store.list_sessions()? {
            cooked.push(cook_session(&s.id, &store.session_batches(&s.id)?, &goals));
        }
        drop(store);
        let model = fit_and_evaluate(
            &cooked,
            &FitOptions {
                goals: goal_specs.clone(),
                seed: args.seed,
                ..FitOptions::default()
            },
        )
        .map_err(|e| anyhow!("fitting the demo model: {e}"))?;
        let model_path = out.join("demo-shop.json");
        let text = model.to_json();
        std::fs::write(&model_path, &text)?;
        eprintln!(
            "fitted {} states from {} sessions → {}",
            model.states().len(),
            model.provenance.sessions,
            model_path.display()
        );
        let loaded = LoadedModel {
            model: Arc::new(model),
            hash: fnv1a(text.as_bytes()),
            path: model_path.clone(),
        };

        // 3. The truth, and 4. the gate, per candidate.
        let mut rows = Vec::new();
        let mut truths: Vec<(Build, PopulationReport)> = Vec::new();
        let truth_population = PopulationConfig {
            users: args.truth.min(population.users),
            ..population.clone()
        };
        for build in Build::CANDIDATES {
            eprintln!(
                "running the first {} of the same people on {}…",
                truth_population.users,
                build.name()
            );
            let report = run_population(&chromium, &url_of(build), &truth_population).await?;
            eprintln!("  {}", report.summary());
            truths.push((build, report));
        }
        chromium.close().await;

        // One runner for every candidate: the baseline's simulated users walk once and are
        // paired with each candidate in turn (same seed, same model, same draws).
        let base_url = url_of(Build::Baseline);
        let mut runner: Option<Arc<Runner>> = None;
        for (build, truth_report) in truths {
            let url = url_of(build);
            let mut sc = raw
                .clone()
                .with_urls(url::Url::parse(&base_url).ok(), url::Url::parse(&url).ok())
                .resolve(&scenario_path)
                .map_err(|e| anyhow!(e))?;
            sc.model = model_path.clone();
            sc.seed = args.seed;
            sc.concurrency = args.concurrency;
            let runner = match &runner {
                Some(r) => r.clone(),
                None => {
                    let r = Arc::new(
                        Runner::start(
                            runner_config(&sc, None),
                            loaded.model.clone(),
                            sc.goals.clone(),
                        )
                        .await?,
                    );
                    r.remember(&base_url);
                    runner.insert(r).clone()
                }
            };
            let started = now_utc();
            let started_at = Instant::now();
            eprintln!("gating {}…", build.name());
            // The candidate's folder keeps its simulated sessions (both builds) for replays.
            let build_out = out.join(build.name());
            std::fs::create_dir_all(&build_out)
                .with_context(|| format!("cannot create {}", build_out.display()))?;
            let kept = build_out.join(SIMULATED_DB);
            for suffix in ["", "-wal", "-shm"] {
                let mut name = kept.clone().into_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
            let keeper = Keeper::open(&build_out);
            let pairs = run_sequential(&runner, &sc, &base_url, &url, &|_, b, c| {
                keeper.keep(b);
                keeper.keep(c);
            })
            .await?;
            drop(keeper);
            let decision = decide(&sc, &pairs)?;
            let chromium_version = runner.browser_version().to_string();
            let meta = RunMeta::unsharded(&sc, &loaded, chromium_version, started, started_at);
            let mut res = results(&meta, &pairs, &decision)?;
            attach_replays(&mut res, &[kept], &build_out);
            let code = publish_quiet(&res, &build_out)?;
            let conv = res
                .checks
                .iter()
                .find(|c| matches!(c.metric, Metric::Conversion))
                .ok_or_else(|| anyhow!("the demo scenario checks conversion"))?;
            // The paired design against an unpaired comparison of the same sessions, both
            // at the scenario's confidence without multiplicity adjustment.
            let used = &pairs[..decision.used];
            let table = PairedTable::from_pairs(
                &used
                    .iter()
                    .map(|p| Pair::new(p.baseline.converted, p.candidate.converted))
                    .collect::<Vec<_>>(),
            );
            let n = table.n();
            let widths = (
                tango_interval(&table, sc.confidence).map(|i| i.upper - i.lower),
                newcombe_unpaired_interval(
                    (table.both + table.baseline_only, n),
                    (table.both + table.candidate_only, n),
                    sc.confidence,
                )
                .map(|i| i.upper - i.lower),
            );
            let widths = match widths {
                (Ok(p), Ok(u)) => Some((p, u)),
                _ => None,
            };
            rows.push(Row {
                widths,
                build,
                predicted: conv.estimate,
                interval: (conv.interval.lower, conv.interval.upper),
                truth: paired_truth(&base, &truth_report, sc.confidence),
                verdict: format!("{:?}", res.outcome.verdict).to_lowercase(),
                pairs: decision.used,
                failed: code == GATE_FAILED,
            });
        }

        if let Some(r) = runner.and_then(|r| Arc::try_unwrap(r).ok()) {
            r.shutdown().await;
        }
        println!(
            "\nunderstudy demo — seed {}, {} people recorded on the baseline, {:.0} s\n",
            args.seed,
            population.users,
            t0.elapsed().as_secs_f64()
        );
        println!(
            "{:<15} {:>26} {:>28} {:>13} {:>6} {:>15}  as expected",
            "candidate",
            "predicted Δconv [95%]",
            "true Δconv [95%] (people)",
            "verdict",
            "pairs",
            "width paired/unp"
        );
        let pp = |v: f64| format!("{:+.1}", 100.0 * v);
        let mut all_good = true;
        for r in &rows {
            let expected = r.failed == r.build.is_regression();
            let (truth, truth_ci, people) = &r.truth;
            let covers = r.interval.0 <= *truth && *truth <= r.interval.1;
            all_good &= expected;
            let truth_ci = truth_ci
                .map(|i| format!("[{}, {}]", pp(i.lower), pp(i.upper)))
                .unwrap_or_default();
            let widths = r
                .widths
                .map(|(p, u)| format!("{:.1}/{:.1} pp", 100.0 * p, 100.0 * u))
                .unwrap_or_default();
            println!(
                "{:<15} {:>26} {:>28} {:>13} {:>6} {:>15}  {}{}",
                r.build.name(),
                format!(
                    "{} pp [{}, {}]",
                    pp(r.predicted),
                    pp(r.interval.0),
                    pp(r.interval.1)
                ),
                format!("{} pp {truth_ci} ({people})", pp(*truth)),
                r.verdict,
                r.pairs,
                widths,
                if expected { "yes" } else { "NO" },
                if covers {
                    ""
                } else {
                    " (true Δ outside the predicted interval)"
                }
            );
        }
        println!(
            "\nThe true Δ is the same people on both builds, so it has sampling noise of its own. \
             Every candidate is paired with one\nset of simulated baseline users (walked once), \
             so the candidates' verdicts share that baseline sample."
        );
        println!(
            "\nreports: {}/<candidate>/ (report/index.html, junit.xml, summary.md, results.json)",
            out.display()
        );
        Ok(if all_good { SUCCESS } else { GATE_FAILED })
    })
}

/// True Δ conversion: the same people on the candidate minus on the baseline (people
/// whose visit failed on either side left out), with Tango's paired interval for the
/// sampling noise of a population this size.
fn paired_truth(
    base: &PopulationReport,
    cand: &PopulationReport,
    confidence: f64,
) -> (f64, Option<Interval>, usize) {
    let pairs: Vec<Pair<bool>> = cand
        .users
        .iter()
        .filter(|c| c.error.is_none())
        .filter_map(|c| {
            base.users
                .iter()
                .find(|b| b.user == c.user && b.error.is_none())
                .map(|b| Pair::new(b.converted, c.converted))
        })
        .collect();
    let t = PairedTable::from_pairs(&pairs);
    let n = pairs.len();
    let delta = t.delta().unwrap_or(0.0);
    (delta, tango_interval(&t, confidence).ok(), n)
}
