//! Benchmarks and the synthetic session generator they use.
pub mod synth;
