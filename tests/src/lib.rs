//! The test world: the sandbox's emulated AWS (moto behind keyward's emulator, which
//! enforces IAM) with fault injection, isolated computers with a private Secret
//! Service, the real AWS CLI and boto3 as clients, and the leak scan.

#![forbid(unsafe_code)]

pub mod cmd;
#[cfg(test)]
mod crate_rules;
pub mod leaks;
pub mod macros;
pub mod proxy;
pub mod world;

pub use keyward_sandbox::totp;
