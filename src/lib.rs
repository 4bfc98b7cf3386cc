//! understudy rehearses a deploy with synthetic users learned from real ones.
//!
//! Data moves through the modules in pipeline order:
//!
//! ```text
//! capture.js ─HTTP─▶ collect ─▶ store ─▶ cook ─▶ model ─▶ simulate ─▶ compare ─▶ report
//! (browser)          (axum)   (SQLite) (actions, (Markov) (Chromium) (stats,gate) (JUnit/HTML)
//!                                       signals)
//! ```
//!
//! `cook` and `model` are pure and synchronous: values in, values out, no I/O, no clock and
//! no unseeded randomness. Only `collect` knows HTTP and only `store` knows SQL.

pub mod event;
pub mod capture;
pub mod collect;
pub mod store;
pub mod cook;
pub mod model;
pub mod simulate;
pub mod demo;
pub mod compare;
pub mod scenario;
pub mod report;
pub mod replay;
// Supporting modules.
pub mod bench;
pub mod cli;
pub mod exit_code;
