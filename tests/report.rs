//! The report formats as a CI system and a reviewer see them: insta snapshots of
//! `summary.md`, `junit.xml` and `results.json` for the fixed example runs, `junit.xml`
//! parsed back with quick-xml, the HTML checked for its landmarks, for self-containment and
//! for escaping hostile strings, and the CI templates parsed as YAML.

use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use serde::Deserialize as _;
use understudy::report::{
    annotations, example, from_json, render_html, render_junit, render_summary, to_json,
    write_all_with, Example, RunResults,
};

const EXAMPLES: [(&str, Example); 4] = [
    ("pass", Example::Pass),
    ("fail", Example::Fail),
    ("inconclusive", Example::Inconclusive),
    ("infrastructure", Example::InfrastructureError),
];

#[test]
fn summary_snapshots() {
    for (name, kind) in EXAMPLES {
        insta::assert_snapshot!(format!("summary_{name}"), render_summary(&example(kind)));
    }
}

#[test]
fn junit_snapshots() {
    for (name, kind) in EXAMPLES {
        insta::assert_snapshot!(
            format!("junit_{name}"),
            render_junit(&example(kind)).unwrap()
        );
    }
}

#[test]
fn results_json_snapshots() {
    for (name, kind) in EXAMPLES {
        let r = example(kind);
        let json = to_json(&r).unwrap();
        assert_eq!(from_json(&json).unwrap(), r, "{name} round-trips");
        insta::assert_snapshot!(format!("results_{name}"), json);
    }
}

/// Counts of what a JUnit file holds, read with a real XML parser.
#[derive(Debug, Default, PartialEq, Eq)]
struct JunitCounts {
    suites: usize,
    testcases: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    /// The `tests`, `failures`, `errors` attributes of the (single) testsuite.
    suite_attrs: (usize, usize, usize),
    names: Vec<String>,
}

fn parse_junit(xml: &str) -> JunitCounts {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut c = JunitCounts::default();
    let attr = |e: &quick_xml::events::BytesStart, key: &[u8]| -> Option<String> {
        e.attributes()
            .map(|a| a.expect("well-formed attribute"))
            .find(|a| a.key.as_ref() == key)
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .expect("escaped value")
                    .into_owned()
            })
    };
    loop {
        match reader.read_event().expect("junit.xml is well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testsuite" => {
                    c.suites += 1;
                    let n = |k: &[u8]| attr(&e, k).unwrap().parse::<usize>().unwrap();
                    c.suite_attrs = (n(b"tests"), n(b"failures"), n(b"errors"));
                }
                b"testcase" => {
                    c.testcases += 1;
                    c.names.push(attr(&e, b"name").unwrap());
                }
                b"failure" => c.failures += 1,
                b"error" => c.errors += 1,
                b"skipped" => c.skipped += 1,
                _ => {}
            },
            _ => {}
        }
    }
    c
}

#[test]
fn junit_parses_with_one_testcase_per_check() {
    let expect = |kind, testcases, failures, errors, skipped| {
        let r = example(kind);
        let c = parse_junit(&render_junit(&r).unwrap());
        assert_eq!(c.suites, 1, "{kind:?}");
        assert_eq!(
            (c.testcases, c.failures, c.errors, c.skipped),
            (testcases, failures, errors, skipped),
            "{kind:?}: {c:?}"
        );
        assert_eq!(c.suite_attrs, (testcases, failures, errors), "{kind:?}");
        c
    };
    let pass = expect(Example::Pass, 4, 0, 0, 1);
    assert_eq!(
        pass.names,
        ["conversion", "rage_click", "js_error", "dead_click"]
    );
    expect(Example::Fail, 4, 1, 0, 1);
    expect(Example::Inconclusive, 2, 0, 0, 0);
    let infra = expect(Example::InfrastructureError, 5, 0, 1, 1);
    assert_eq!(infra.names.last().unwrap(), "infrastructure");

    // --fail-on-inconclusive turns the inconclusive error-level check into a failure.
    let mut r = example(Example::Inconclusive);
    r.fail_on_inconclusive = true;
    let c = parse_junit(&render_junit(&r).unwrap());
    assert_eq!((c.failures, c.errors), (1, 0));
}

/// A run whose outside-supplied strings try to break out of every format.
fn hostile() -> RunResults {
    let mut r = example(Example::Fail);
    r.scenario = "| @everyone `rm -rf` <b>bold</b>".into();
    let evil = "</script><script>alert(1)</script>";
    r.funnel_steps[1] = evil.into();
    for s in [r.baseline.as_mut(), r.candidate.as_mut()]
        .into_iter()
        .flatten()
    {
        s.funnel.as_mut().unwrap().steps[1].name = evil.into();
    }
    r.sessions[0].session_id = "<img src=x onerror=alert(1)>".into();
    r.sessions[1].replay = Some("javascript:alert(1)".into());
    r.infrastructure_errors = vec![format!("route {evil} ]]> failed | @here\n::error::x")];
    r.chromium_version = "\"><svg onload=alert(1)>".into();
    r
}

#[test]
fn html_has_its_landmarks_and_nothing_external() {
    for (name, kind) in EXAMPLES {
        let r = example(kind);
        let html = render_html(&r).unwrap();
        assert!(html.contains("id=\"verdict\""), "{name}");
        assert!(html.contains("id=\"charts\""), "{name}");
        assert!(html.contains(r.status().word()), "{name}");
        assert!(html.contains("<svg"), "{name}");
        for scheme in ["http://", "https://"] {
            for (at, _) in html.match_indices(scheme) {
                let rest = &html[at..];
                assert!(
                    rest.starts_with(&r.baseline_url) || rest.starts_with(&r.candidate_url),
                    "{name}: external reference at {}",
                    &rest[..rest.len().min(60)]
                );
            }
        }
        for needle in ["src=", "<link", "@import", "url(", "<iframe", "xmlns"] {
            assert!(!html.contains(needle), "{name}: {needle}");
        }
        assert_eq!(
            html.matches("<script").count(),
            1,
            "{name}: only the JSON data block"
        );
        assert!(html.contains("<script id=\"results\" type=\"application/json\">"));
    }
}

#[test]
fn html_escapes_hostile_strings() {
    let r = hostile();
    let html = render_html(&r).unwrap();
    assert_eq!(
        html.matches("<script").count(),
        1,
        "injected script element"
    );
    assert_eq!(html.matches("</script>").count(), 1, "script closed early");
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>bold"));
    assert!(!html.contains("<svg onload"));
    assert!(!html.contains("href=\"javascript:"));
    assert!(html.contains("&lt;&#x2F;script&gt;") || html.contains("&lt;/script&gt;"));
    // The embedded JSON still holds the exact strings.
    let start =
        html.find("type=\"application/json\">").unwrap() + "type=\"application/json\">".len();
    let end = html[start..].find("</script>").unwrap() + start;
    assert_eq!(from_json(&html[start..end]).unwrap(), r);
}

#[test]
fn markdown_escapes_hostile_strings() {
    let md = render_summary(&hostile());
    assert!(!md.contains("@everyone") && !md.contains("@here"), "{md}");
    assert!(md.contains("&#64;everyone"));
    assert!(
        !md.contains("<script") && !md.contains("<img") && !md.contains("<b>"),
        "{md}"
    );
    assert!(md.contains("\\| &#64;everyone \\`rm -rf\\`"), "{md}");
    // A newline in an error cannot start a new Markdown line.
    assert!(!md.lines().any(|l| l.starts_with("::error")));
    // Every table row still has its 8 cells (9 unescaped pipes).
    for line in md.lines().filter(|l| l.starts_with("| conversion")) {
        let pipes = line.replace("\\|", "").matches('|').count();
        assert_eq!(pipes, 9, "{line}");
    }
}

#[test]
fn junit_survives_hostile_strings() {
    let r = hostile();
    let xml = render_junit(&r).unwrap();
    let c = parse_junit(&xml);
    assert_eq!((c.testcases, c.errors), (5, 1));
    assert!(xml.contains("]]]]><![CDATA[>"), "CDATA terminator split");
    let lines = annotations(&r);
    assert!(lines.iter().all(|l| !l.contains('\n')), "{lines:?}");
}

#[test]
fn write_all_lays_out_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("understudy-out");
    let w = write_all_with(&example(Example::Fail), &out, None).unwrap();
    let names: Vec<PathBuf> = [&w.junit, &w.html, &w.summary, &w.json]
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_path_buf())
        .collect();
    assert_eq!(
        names,
        [
            Path::new("junit.xml"),
            Path::new("report/index.html"),
            Path::new("summary.md"),
            Path::new("results.json")
        ]
    );
    assert_eq!(w.step_summary, None);
}

fn template(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ci-templates")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// All YAML documents of a file.
fn yaml_docs(text: &str) -> Vec<serde_norway::Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| serde_norway::Value::deserialize(doc).expect("valid YAML"))
        .collect()
}

/// Every string scalar in a YAML value, depth first.
fn strings(v: &serde_norway::Value, out: &mut Vec<String>) {
    match v {
        serde_norway::Value::String(s) => out.push(s.clone()),
        serde_norway::Value::Sequence(items) => items.iter().for_each(|i| strings(i, out)),
        serde_norway::Value::Mapping(m) => m.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        serde_norway::Value::Tagged(t) => strings(&t.value, out),
        _ => {}
    }
}

#[test]
fn ci_templates_parse_and_run_the_gate() {
    // GitHub Actions: a pull_request workflow whose steps run the gate, shard and merge.
    let gh = &yaml_docs(&template("github-actions.yml"))[0];
    assert!(gh["on"].get("pull_request").is_some());
    let jobs = &gh["jobs"];
    let runs = |job: &str| -> String {
        jobs[job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(runs("gate").contains("understudy gate"));
    assert!(runs("shard").contains("--shard ${{ matrix.shard }}/4"));
    assert!(runs("shard").contains("--out ../shard-${{ matrix.shard }}"));
    assert!(runs("merge").contains("understudy merge shard-*/run.blob --out understudy-out"));
    let uploads: Vec<&serde_norway::Value> = jobs["gate"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0]["if"].as_str(), Some("${{ !cancelled() }}"));
    assert_eq!(
        jobs["shard"]["strategy"]["matrix"]["shard"]
            .as_sequence()
            .unwrap()
            .len(),
        4
    );

    // GitLab: the gate with a JUnit report kept always, and a 1-based → 0-based shard index.
    let gl = &yaml_docs(&template("gitlab-ci.yml"))[0];
    let script = |job: &str| -> String {
        let mut out = Vec::new();
        strings(&gl[job]["script"], &mut out);
        out.join("\n")
    };
    assert!(script("understudy-gate").contains("understudy gate"));
    assert_eq!(
        gl["understudy-gate"]["artifacts"]["reports"]["junit"].as_str(),
        Some("understudy-out/junit.xml")
    );
    assert_eq!(
        gl["understudy-gate"]["artifacts"]["when"].as_str(),
        Some("always")
    );
    assert_eq!(gl["understudy-shard"]["parallel"].as_u64(), Some(4));
    assert!(script("understudy-shard").contains("SHARD=$((CI_NODE_INDEX - 1))"));
    assert!(script("understudy-shard").contains("--shard \"$SHARD/$CI_NODE_TOTAL\""));
    assert!(script("understudy-merge").contains("understudy merge shard-*/run.blob"));

    // Kubernetes: an Indexed Job whose pods run `understudy gate --shard $(JOB_COMPLETION_INDEX)/N`.
    let docs = yaml_docs(&template("k8s-indexed-job.yaml"));
    let job = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Job"))
        .expect("a Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    let container = &spec["template"]["spec"]["containers"][0];
    let mut argv = Vec::new();
    strings(&container["command"], &mut argv);
    strings(&container["args"], &mut argv);
    let argv = argv.join(" ");
    assert!(argv.starts_with("understudy gate "), "{argv}");
    assert!(
        argv.contains(&format!("--shard $(JOB_COMPLETION_INDEX)/{n}")),
        "{argv}"
    );
    assert!(template("k8s-indexed-job.yaml").contains("understudy merge"));
}

/// The HTML report as a reviewer sees it: rendered by real Chromium from the file CI
/// uploads, with its verdict, its three charts drawn at a real size, one forest row per
/// check, and no script errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_in_chromium_with_verdict_and_charts() {
    use understudy::simulate::driver::{Chromium, DriverConfig, TabOptions};
    let chromium = Chromium::launch(DriverConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in [("fail", Example::Fail), ("pass", Example::Pass)] {
        let r = example(kind);
        let out = dir.path().join(name);
        let w = write_all_with(&r, &out, None).unwrap();
        let tab = chromium
            .open(&TabOptions {
                capture: false,
                ..TabOptions::default()
            })
            .await
            .unwrap();
        tab.goto(&format!("file://{}", w.html.display()))
            .await
            .unwrap();
        #[derive(serde::Deserialize, Debug)]
        struct Seen {
            status: String,
            heading: String,
            charts: Vec<(String, f64, f64)>,
            marks: usize,
            checks: usize,
            seed: bool,
            errors: u32,
        }
        let seen: Seen = tab
            .eval(&format!(
                "(() => {{
                  const v = document.getElementById('verdict');
                  const charts = [...document.querySelectorAll('#charts figure')].map(f => {{
                    const s = f.querySelector('svg'); const b = s ? s.getBoundingClientRect() : {{width: 0, height: 0}};
                    return [f.id, b.width, b.height]; }});
                  return {{ status: v ? v.dataset.status : '', heading: v ? v.querySelector('h1').textContent : '',
                    charts, marks: document.querySelectorAll('#chart-checks svg g.row').length,
                    checks: document.querySelectorAll('#checks tr.check').length,
                    seed: document.body.textContent.includes('{seed}'),
                    errors: (window.__usProbe && window.__usProbe.errors) || 0 }}; }})()",
                seed = r.seed
            ))
            .await
            .unwrap()
            .expect("the page answers");
        assert_eq!(seen.status, r.status().class(), "{name}: {seen:?}");
        assert_eq!(seen.heading, r.status().word(), "{name}: {seen:?}");
        let ids: Vec<&str> = seen.charts.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            ids,
            ["chart-conversion", "chart-checks", "chart-funnel"],
            "{name}"
        );
        assert!(
            seen.charts.iter().all(|c| c.1 > 100.0 && c.2 > 40.0),
            "{name}: every chart is drawn at a readable size: {seen:?}"
        );
        assert_eq!(seen.marks, r.checks.len(), "{name}: a forest row per check");
        assert_eq!(seen.checks, r.checks.len(), "{name}");
        assert!(seen.seed, "{name}: the seed is on the page");
        assert_eq!(seen.errors, 0, "{name}: no script errors");
        let _ = tab.close_page().await;
        chromium.dispose(tab).await;
    }
    chromium.close().await;
}
