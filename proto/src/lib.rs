//! keyward-proto: what the CLI, the credential_process helper and the daemon agree on.
//!
//! This crate has no tokio, no AWS SDK and no clap: the credential_process fast path
//! links only this.

#![forbid(unsafe_code)]

pub mod client;
pub mod credential_process;
pub mod notify;
pub mod paths;
pub mod prompt;
pub mod spawn;
pub mod tty;
pub mod user_config;
mod wire;

pub use wire::*;

/// Bumped by hand whenever a request or response shape changes.
pub const PROTOCOL_VERSION: u32 = 4;

/// Header that carries [`PROTOCOL_VERSION`] on every request.
pub const PROTOCOL_HEADER: &str = "keyward-protocol";

/// Largest request body the daemon accepts.
pub const MAX_BODY: usize = 64 * 1024;

/// Credentials with less than this left are never handed out: the AWS CLI and boto3
/// call credential_process again at once when Expiration is 15 minutes or less away.
pub const MIN_REMAINING_SECS: u64 = 15 * 60;
