//! keyward-daemon: the library behind `keywardd`, also used by the `keyward` CLI for
//! the config file and the keychain.

pub mod broker;
pub mod clock;
pub mod config;
pub mod conns;
pub mod harden;
pub mod keychain;
pub mod logging;
pub mod server;
pub mod session;
pub mod sts;
