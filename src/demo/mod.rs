//! The bundled demo: a small shop served on loopback in several builds, and a scripted
//! population of "real" people who use it.
//!
//! * [`shop`] serves the shop: the `baseline`, a harmless `refactor`, and regressions
//!   (`flaky-checkout`, `slow-payment`, `moved-cart`). See [`Build`].
//! * [`population`] runs the scripted people in Chromium through the shop's own
//!   `capture.js` tag and a collector, so they are recorded exactly as real visitors are.
//!   Their policy is written by hand and shares no code with the simulator.
//!
//! Because the population can be run on every build, the demo knows the *true* effect of
//! each candidate and can set it beside the simulator's prediction.

pub mod population;
pub mod shop;

pub use population::{
    run_population, GaveUp, Persona, PopulationConfig, PopulationReport, UserOutcome,
};
pub use shop::{serve_all, serve_build, Build, ShopServer};
