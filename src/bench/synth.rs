//! Synthetic sessions (stub, being written).
