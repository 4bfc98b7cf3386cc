//! A browser must not outlive the test (or the run) that launched it. When a test panics,
//! its `Chromium` is dropped during unwinding without `close()`; chromiumoxide then kills
//! only the process it spawned, which for Debian's `chromium-headless-shell` is a shell
//! script around the real browser, so the browser and its renderers used to live on,
//! reparented to init. Both the test harness's `Chromium` and the simulator's must kill the
//! whole process tree when dropped.

mod common;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use understudy::simulate::driver::{
    process_tree, Chromium as DriverChromium, DriverConfig, TabOptions,
};

/// The command line of `pid`, NULs as spaces ("" once gone).
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x"))
}

/// The process tree under `root` once it holds a renderer (the page loaded), so the test
/// covers the processes that were found orphaned.
async fn tree_with_renderer(root: u32) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let tree = process_tree(root);
        if tree.iter().any(|&p| cmdline(p).contains("--type=renderer")) {
            return tree;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no renderer under pid {root}: {:?}",
            tree.iter().map(|&p| (p, cmdline(p))).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Drops `owned` while unwinding from a panic, as a failing test does.
fn drop_in_a_panic<T>(owned: T) {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(move || {
        let _owned = owned;
        panic!("deliberate panic: a browser test fails while its browser is open");
    }));
    assert!(outcome.is_err());
}

/// Waits (at most 5 s) until none of `pids` is alive.
async fn assert_all_gone(pids: &[u32]) {
    let start = Instant::now();
    loop {
        let left: Vec<(u32, String)> = pids
            .iter()
            .filter(|&&p| alive(p))
            .map(|&p| (p, cmdline(p)))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "browser processes outlived their owner: {left:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_chromium_dropped_in_a_panic_kills_its_process_tree() {
    let mut chromium = common::Chromium::launch().await;
    let page = chromium.isolated_page().await;
    page.goto("data:text/html,<p>still here?</p>")
        .await
        .unwrap();
    let root = chromium
        .browser
        .get_mut_child()
        .and_then(|c| c.as_mut_inner().id())
        .expect("a launched browser has a pid");
    let tree = tree_with_renderer(root).await;
    eprintln!(
        "browser tree before the panic: {:#?}",
        tree.iter().map(|&p| (p, cmdline(p))).collect::<Vec<_>>()
    );
    drop(page);
    drop_in_a_panic(chromium);
    assert_all_gone(&tree).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_chromium_dropped_in_a_panic_kills_its_process_tree() {
    let chromium = DriverChromium::launch(DriverConfig::default())
        .await
        .expect("launch chromium");
    let tab = chromium.open(&TabOptions::default()).await.unwrap();
    tab.goto("data:text/html,<p>still here?</p>").await.unwrap();
    let root = chromium.pid().expect("a launched browser has a pid");
    let tree = tree_with_renderer(root).await;
    // The launch flags reach Chromium as written (chromiumoxide adds its own `--`).
    let lines: Vec<String> = tree.iter().map(|&p| cmdline(p)).collect();
    assert!(
        lines.iter().all(|l| !l.contains(" ----")),
        "a flag reached Chromium with four dashes: {lines:#?}"
    );
    for flag in understudy::simulate::driver::CHROMIUM_FLAGS {
        assert!(
            lines.iter().any(|l| l.split(' ').any(|w| w == *flag)),
            "{flag} is not on any command line: {lines:#?}"
        );
    }
    drop(tab);
    drop_in_a_panic(chromium);
    assert_all_gone(&tree).await;
}
