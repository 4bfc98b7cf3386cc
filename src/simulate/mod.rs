//! Simulate: paired Monte-Carlo users in headless Chromium. The only module that knows
//! Chromium.
//!
//! * [`driver`] launches Chromium and performs page operations, each with a timeout.
//! * [`keyed`] derives every random draw from `(seed, user, purpose, state, visit)`, so a
//!   user meets the same numbers on both builds (common random numbers).
//! * [`user`] is the simulated user: it walks a fitted model on the live page and reacts to
//!   what it gets.
//! * [`runner`] runs many users at once on isolated browser contexts, pairs them across
//!   builds, and restarts a failed browser.

pub mod blob;
pub mod driver;
pub mod keyed;
pub mod runner;
pub mod user;
