//! The daemon's integration tests, in one binary: the in-process daemon over a real
//! Unix socket with a fake STS (`common`), its lifecycle and typed protocol, hostile
//! input, and the clients' checks of the daemon they talk to. Plain `cargo test`: no
//! moto, no D-Bus.

mod common;
mod hostile;
mod lifecycle;
mod local_trust;
