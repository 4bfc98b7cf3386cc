//! Cook: raw events to actions, signals and outcomes (stub, being written).
