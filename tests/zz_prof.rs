// scratch profiler, not committed
mod common;
use chromiumoxide::cdp::js_protocol::profiler::{StartParams, StopParams, EnableParams, SetSamplingIntervalParams};
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prof() {
    let only = std::env::var("PROF_ONLY").unwrap_or_default();
    let pages = understudy::bench::capture::workload_pages();
    let chromium = common::Chromium::launch().await;
    for (name, html) in pages {
        if !only.is_empty() && name != only { continue; }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.html");
        std::fs::write(&path, &html).unwrap();
        let page = chromium.isolated_page().await;
        let cfg = std::env::var("PROF_CFG").unwrap_or("{ flushMs: 0 }".into());
        let init = format!("window.understudyConfig = {cfg}; window.__n = 0; window.__understudyEmit = function (s) {{ window.__n += s.length; window.__te = performance.now(); }};");
        page.execute(AddScriptToEvaluateOnNewDocumentParams::builder().source(init).build().unwrap()).await.unwrap();
        page.execute(AddScriptToEvaluateOnNewDocumentParams::builder().source(understudy::capture::SCRIPT).build().unwrap()).await.unwrap();
        page.goto(format!("file://{}", path.display())).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        page.execute(EnableParams::default()).await.unwrap();
        page.execute(SetSamplingIntervalParams::new(100)).await.unwrap();
        page.execute(StartParams::default()).await.unwrap();
        let t: f64 = page.evaluate("new Promise(r => { const t0 = performance.now(); workload(); setTimeout(() => setTimeout(() => r(window.__te - t0), 300), 0); })").await.unwrap().into_value().unwrap();
        let prof = page.execute(StopParams::default()).await.unwrap().result.profile;
        let mut self_ms: HashMap<String, f64> = HashMap::new();
        let total: i64 = prof.time_deltas.as_ref().map(|d| d.iter().sum()).unwrap_or(0);
        let samples = prof.samples.clone().unwrap_or_default();
        let per = if samples.is_empty() { 0.0 } else { total as f64 / 1000.0 / samples.len() as f64 };
        let mut hits: HashMap<i64, usize> = HashMap::new();
        for s in &samples { *hits.entry(*s).or_default() += 1; }
        for n in &prof.nodes {
            let h = *hits.get(&n.id).unwrap_or(&0) as f64 * per;
            let key = format!("{} :{}", n.call_frame.function_name, n.call_frame.line_number);
            *self_ms.entry(key).or_default() += h;
        }
        let mut v: Vec<_> = self_ms.into_iter().filter(|(k, _)| !k.starts_with("(idle)")).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!("== {name}: emit {t:.1} ms");
        for (k, ms) in v.iter().take(14) { println!("   {ms:7.1} ms  {k}"); }
        common::close_tab(page).await;
    }
    chromium.close().await;
}
