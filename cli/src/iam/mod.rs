//! Everything keyward does in IAM, S3 and KMS, one module per kind of thing. Each
//! function is idempotent or reports exactly what it found; none prompts.

pub mod account;
pub mod app_store;
pub mod apps;
pub mod credentials;
pub mod documents;
pub mod error;
pub mod jit;
pub mod policy;
#[cfg(test)]
pub mod rendered;
pub mod resources;
pub mod roles;
pub mod snapshot;
pub mod users;

pub use error::{
    aws_error, fail, found, gone_ok, is_denied, is_expired_token, is_invalid_principal, AwsError,
};

/// The last four characters of a key id: enough to tell keys apart, never the key.
pub fn key_suffix(id: &str) -> String {
    format!("…{}", &id[id.len().saturating_sub(4)..])
}
