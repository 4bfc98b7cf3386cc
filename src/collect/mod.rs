//! The HTTP collector (stub, being written).
