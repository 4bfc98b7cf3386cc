use understudy::demo::{run_population, serve_build, Build, PopulationConfig};
use understudy::simulate::driver::{Chromium, DriverConfig};

fn cpu() -> (f64, f64) {
    // (self, reaped children) CPU seconds
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<f64> = stat.rsplit(')').next().unwrap().split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    ((f[11] + f[12]) / 100.0, (f[13] + f[14]) / 100.0)
}

fn chromium_cpu() -> f64 {
    // all chromium processes that descend from us: sum utime+stime from /proc
    let me = std::process::id();
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        if !stat.contains("(chromium)") { continue; }
        // walk up
        let mut p = pid; let mut mine = false;
        for _ in 0..5 {
            let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { break };
            let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
            let pp: u32 = f[1].parse().unwrap_or(0);
            if pp == me { mine = true; break; }
            p = pp;
        }
        if mine {
            let f: Vec<f64> = stat.rsplit(')').next().unwrap().split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
            total += (f[11] + f[12] + f[13] + f[14]) / 100.0;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    let capture = std::env::var("CAP").is_ok();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let curl = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let dbp = db.clone();
    let task = tokio::spawn(async move { understudy::collect::serve(listener, &dbp, async { let _ = rx.await; }).await.unwrap(); });
    let shop = serve_build(Build::Baseline, capture.then(|| curl.clone())).await.unwrap();
    let chromium = Chromium::launch(DriverConfig::default()).await.unwrap();
    let conc: usize = std::env::var("C").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let users: u32 = std::env::var("U").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let c0 = cpu(); let b0 = chromium_cpu();
    let cfg = PopulationConfig { users, concurrency: conc, seed: 42, time_scale: 0.05 };
    let r = run_population(&chromium, &shop.url(), &cfg).await.unwrap();
    let c1 = cpu(); let b1 = chromium_cpu();
    println!("{} | capture={capture} test-process cpu {:.1}s, chromium cpu {:.1}s (live procs), per user {:.2}s", r.summary(), c1.0 - c0.0, b1 - b0, ((c1.0 - c0.0) + (b1 - b0)) / users as f64);
    chromium.close().await;
    let _ = tx.send(()); task.await.unwrap();
}
