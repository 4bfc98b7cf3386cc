use std::time::Instant;
use understudy::demo::{serve_build, Build};
use understudy::simulate::driver::{Chromium, DriverConfig, TabOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch2() {
    let shop = serve_build(Build::Baseline, None).await.unwrap();
    let chromium = Chromium::launch(DriverConfig::default()).await.unwrap();
    let pages: usize = std::env::var("P").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let t = Instant::now();
    for _ in 0..16 {
        let tab = chromium.open(&TabOptions::default()).await.unwrap();
        for i in 0..pages {
            tab.goto(&format!("{}/product/{}", shop.url(), i % 10 + 1)).await.unwrap();
        }
        tab.close_page().await.unwrap();
        chromium.dispose(tab).await;
    }
    println!("16 cycles with {pages} pages: {:?}", t.elapsed());
    chromium.close().await;
}
