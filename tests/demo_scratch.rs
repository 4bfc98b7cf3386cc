use understudy::demo::{run_population, serve_build, Build, PopulationConfig};
use understudy::simulate::driver::{Chromium, DriverConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    let shop = serve_build(Build::Baseline, None).await.unwrap();
    let chromium = Chromium::launch(DriverConfig::default()).await.unwrap();
    let conc: usize = std::env::var("C").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let users: u32 = std::env::var("U").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let cfg = PopulationConfig { users, concurrency: conc, seed: 42, time_scale: 0.05 };
    let r = run_population(&chromium, &shop.url(), &cfg).await.unwrap();
    for u in &r.users {
        let steps: Vec<String> = u.trace.iter().zip(&u.trace_ms).map(|(t, ms)| format!("{t}@{ms}")).collect();
        println!("u{} {} ms: {}", u.user, u.elapsed_ms, steps.join(" "));
    }
    println!("{}", r.summary());
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    println!("self cpu: utime {} stime {} (ticks)", f[11], f[12]);
    chromium.close().await;
}
