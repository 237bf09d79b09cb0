//! Everything keyward does in IAM, S3 and KMS, one module per kind of thing. Each
//! function is idempotent or reports exactly what it found; none prompts.

pub mod account;
pub mod app_store;
pub mod apps;
pub mod credentials;
pub mod documents;
pub mod jit;
pub mod policy;
#[cfg(test)]
pub mod rendered;
pub mod resources;
pub mod roles;
pub mod snapshot;
pub mod users;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

/// "Code: message" of an SDK error, for humans.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or("no message")
            )
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
            "could not reach AWS (network)".to_owned()
        }
        SdkError::DispatchFailure(_) => {
            "no usable AWS credentials, or AWS could not be reached".to_owned()
        }
        other => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        ),
    }
}

pub fn code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// `"<what> failed: <code>: <message>"`.
pub fn fail<E, R>(what: &str, err: &SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    anyhow::anyhow!("{what} failed: {}", describe(err))
}

/// A deletion's result, where "already gone" is success (idempotent deletes).
pub fn gone_ok<T, E, R>(result: Result<T, SdkError<E, R>>, what: &str) -> anyhow::Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(fail(what, &e)),
    }
}

/// Whether an SDK error says the thing is not there.
pub fn not_found<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(
        code(err),
        Some("NoSuchEntity" | "NotFoundException" | "NoSuchBucket" | "NoSuchBucketPolicy")
    )
}

/// The last four characters of a key id: enough to tell keys apart, never the key.
pub fn key_suffix(id: &str) -> String {
    format!("…{}", &id[id.len().saturating_sub(4)..])
}
