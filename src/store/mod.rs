//! Session storage (stub, being written).
