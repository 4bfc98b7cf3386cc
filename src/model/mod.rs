//! Behaviour models (stub, being written).
