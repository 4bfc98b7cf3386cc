//! `understudy bench click`: the simulator's click against chromiumoxide's.
//!
//! On the demo shop's home page, served on loopback, one tab clicks a target that does not
//! react (a product picture) [`CLICKS`] times each way and reports the median and 90th
//! percentile:
//!
//! * **(a) the anchor**: `Page::find_element` + `Element::click`, chromiumoxide's own way
//!   (several CDP round trips: query, scroll into view, box model, mouse events);
//! * **(b) one `Runtime.evaluate` round trip** (`true`), the floor of anything that asks
//!   the page;
//! * **(c) the simulator's click**: one evaluation resolves the target and its centre
//!   ([`Tab::locate`]), then three `Input.dispatchMouseEvent` calls ([`Tab::click_at`]).
//!
//! It prints the ratio (c)/(a).

use std::time::{Duration, Instant};

use crate::demo::{serve_build, Build};
use crate::simulate::driver::{Chromium, DriverConfig, Tab, TabOptions};

/// Clicks per way (after [`WARMUP`] unmeasured ones).
pub const CLICKS: usize = 60;
/// Unmeasured clicks first, so nothing pays for a cold start.
pub const WARMUP: usize = 5;
/// The target: a picture, which does nothing when clicked, so every click meets the same page.
pub const TARGET: &str = "[data-testid=product-image-1]";

async fn time<F, Fut>(n: usize, mut f: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..WARMUP {
        f().await?;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        f().await?;
        out.push(t0.elapsed());
    }
    out.sort();
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn click_ours(tab: &Tab) -> anyhow::Result<()> {
    let at = tab
        .locate(TARGET)
        .await?
        .filter(|a| a.usable)
        .ok_or_else(|| anyhow::anyhow!("{TARGET} is not on the page"))?;
    tab.click_at(at.x, at.y).await?;
    Ok(())
}

pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shop = serve_build(Build::Baseline, None).await?;
        let chromium = Chromium::launch(DriverConfig::default()).await?;
        let version = chromium.version().await?;
        let tab = chromium
            .open(&TabOptions {
                capture: false,
                ..TabOptions::default()
            })
            .await?;
        tab.goto(&format!("{}/", shop.url())).await?;
        tab.settle(Duration::from_millis(80), Duration::from_secs(5))
            .await?;
        let anchor = time(CLICKS, || async {
            tab.click_with_chromiumoxide(TARGET).await?;
            Ok(())
        })
        .await?;
        let eval = time(CLICKS, || async {
            tab.eval::<bool>("true").await?;
            Ok(())
        })
        .await?;
        let ours = time(CLICKS, || click_ours(&tab)).await?;
        let _ = tab.close_page().await;
        chromium.dispose(tab).await;
        chromium.close().await;
        println!("bench click: {CLICKS} clicks each on {TARGET}, {version}");
        for (name, d) in [
            ("(a) chromiumoxide find_element + Element::click", &anchor),
            ("(b) one Runtime.evaluate round trip", &eval),
            (
                "(c) understudy: locate (1 evaluate) + 3 mouse events",
                &ours,
            ),
        ] {
            println!(
                "  {name:<55} median {:>7.2} ms   p90 {:>7.2} ms",
                ms(quantile(d, 0.5)),
                ms(quantile(d, 0.9))
            );
        }
        println!(
            "  ratio (c)/(a), medians: {:.3}",
            ms(quantile(&ours, 0.5)) / ms(quantile(&anchor, 0.5))
        );
        Ok(())
    })
}
