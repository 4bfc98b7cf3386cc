//! Benchmarks and the synthetic session generator they use.
pub mod capture;
pub mod click;
pub mod collect;
pub mod fit;
pub mod synth;
