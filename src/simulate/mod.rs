//! Simulate: the only module that knows Chromium.
//!
//! [`driver`] launches Chromium and performs page operations with timeouts. The simulated
//! user, the pairing of users across builds and the runner build on it.

pub mod driver;
