//! A failed AWS call as a value: which operation, AWS's error code and message. The
//! CLI decides on the code (denied, gone, expired) through the helpers here, never by
//! reading error text. It keeps only strings AWS sent back (code, message), never the
//! request, so no credential can end up in it.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

/// Codes that say the thing is not there (IAM, KMS, S3).
const GONE: &[&str] = &[
    "NoSuchEntity",
    "NotFoundException",
    "NoSuchBucket",
    NO_BUCKET_POLICY,
];
/// S3's answer for a bucket that has no policy (it is one of [`GONE`]).
const NO_BUCKET_POLICY: &str = "NoSuchBucketPolicy";
/// IAM and S3 say `AccessDenied`, KMS `AccessDeniedException`.
const DENIED: &[&str] = &["AccessDenied", "AccessDeniedException"];
/// STS and IAM say `ExpiredToken`; JSON protocols (KMS) `ExpiredTokenException`.
const EXPIRED: &[&str] = &["ExpiredToken", "ExpiredTokenException"];
/// S3 and KMS reject a policy naming a principal IAM does not know (yet) with these.
const MALFORMED_POLICY: &[&str] = &["MalformedPolicy", "MalformedPolicyDocumentException"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown}")]
pub struct AwsError {
    operation: String,
    code: Option<String>,
    message: Option<String>,
    /// "Code: message", or what went wrong on the way to AWS.
    detail: String,
    /// The whole text; `"<operation> failed: <detail>"` unless reworded.
    shown: String,
}

impl AwsError {
    /// `what` names the call (`iam:GetUser`), maybe with its subject.
    pub fn new<E, R>(what: &str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let (code, message) = match err {
            SdkError::ServiceError(se) => (
                se.err().code().map(str::to_owned),
                se.err().message().map(str::to_owned),
            ),
            _ => (None, None),
        };
        Self::from_parts(what, code, message, describe(err))
    }

    fn from_parts(
        what: &str,
        code: Option<String>,
        message: Option<String>,
        detail: String,
    ) -> Self {
        Self {
            shown: format!("{what} failed: {detail}"),
            operation: what.to_owned(),
            code,
            message,
            detail,
        }
    }

    /// The same error told another way: `say` gets the detail ("Code: message").
    #[must_use]
    pub fn reworded(mut self, say: impl FnOnce(&str) -> String) -> Self {
        self.shown = say(&self.detail);
        self
    }

    pub fn operation(&self) -> &str {
        &self.operation
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// "Code: message", for humans.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    fn code_in(&self, codes: &[&str]) -> bool {
        self.code().is_some_and(|c| codes.contains(&c))
    }

    pub fn is_denied(&self) -> bool {
        self.code_in(DENIED)
    }

    /// The user, role, policy, key, bucket or bucket policy is not there.
    pub fn is_gone(&self) -> bool {
        self.code_in(GONE)
    }

    /// The bucket is there but has no policy.
    pub fn is_no_bucket_policy(&self) -> bool {
        self.code() == Some(NO_BUCKET_POLICY)
    }

    pub fn is_expired_token(&self) -> bool {
        self.code_in(EXPIRED)
    }

    /// A resource policy names a principal IAM does not know (yet: IAM is eventually
    /// consistent). The code alone means any malformed policy; the message tells.
    pub fn is_invalid_principal(&self) -> bool {
        self.code_in(MALFORMED_POLICY)
            && self
                .message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("invalid principal"))
    }
}

/// "Code: message" of an SDK error, for humans.
fn describe<E, R>(err: &SdkError<E, R>) -> String
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

/// `"<what> failed: <code>: <message>"`, as an [`AwsError`] inside an anyhow error.
pub fn fail<E, R>(what: &str, err: &SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    AwsError::new(what, err).into()
}

/// A call's answer, `None` when AWS says the thing is not there.
pub fn found<T, E, R>(result: Result<T, SdkError<E, R>>, what: &str) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) => {
            let e = AwsError::new(what, &e);
            if e.is_gone() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// An idempotent delete's result: "already gone" is success. `Ok(false)` says it
/// was gone already.
pub fn gone_ok<T, E, R>(result: Result<T, SdkError<E, R>>, what: &str) -> anyhow::Result<bool>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    Ok(found(result, what)?.is_some())
}

/// The AWS error anywhere in `e`'s chain.
pub fn aws_error(e: &anyhow::Error) -> Option<&AwsError> {
    e.chain().find_map(|c| c.downcast_ref::<AwsError>())
}

pub fn is_denied(e: &anyhow::Error) -> bool {
    aws_error(e).is_some_and(AwsError::is_denied)
}

pub fn is_expired_token(e: &anyhow::Error) -> bool {
    aws_error(e).is_some_and(AwsError::is_expired_token)
}

pub fn is_invalid_principal(e: &anyhow::Error) -> bool {
    aws_error(e).is_some_and(AwsError::is_invalid_principal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    fn err(code: &str, message: &str) -> AwsError {
        AwsError::from_parts(
            "iam:GetUser",
            Some(code.into()),
            Some(message.into()),
            format!("{code}: {message}"),
        )
    }

    #[test]
    fn reads_as_before_and_is_found_through_context() {
        let e = err("AccessDenied", "no");
        assert_eq!(e.to_string(), "iam:GetUser failed: AccessDenied: no");
        let any = anyhow::Error::from(e).context("reading machines");
        assert_eq!(
            format!("{any:#}"),
            "reading machines: iam:GetUser failed: AccessDenied: no"
        );
        assert!(is_denied(&any));
        assert!(!aws_error(&any).is_some_and(AwsError::is_gone));
        assert_eq!(
            aws_error(&any).map(AwsError::operation),
            Some("iam:GetUser")
        );
        let plain: anyhow::Result<()> = Err(anyhow::anyhow!("AccessDenied in words only"));
        assert!(!is_denied(&plain.context("x").unwrap_err()));
    }

    #[test]
    fn codes_are_classified() {
        for c in GONE {
            assert!(err(c, "m").is_gone(), "{c}");
        }
        assert!(err("NoSuchBucketPolicy", "m").is_no_bucket_policy());
        assert!(!err("NoSuchBucket", "m").is_no_bucket_policy());
        assert!(err("AccessDeniedException", "m").is_denied());
        assert!(err("ExpiredToken", "m").is_expired_token());
        assert!(err("ExpiredTokenException", "m").is_expired_token());
        assert!(err("MalformedPolicy", "Invalid principal in policy").is_invalid_principal());
        assert!(err(
            "MalformedPolicyDocumentException",
            "Policy contains a statement with one or more invalid principals."
        )
        .is_invalid_principal());
        assert!(!err("MalformedPolicy", "Policy has invalid action").is_invalid_principal());
        assert!(!err("Throttling", "Invalid principal").is_invalid_principal());
    }

    #[test]
    fn reworded_keeps_the_code() {
        let e = err("ExpiredToken", "old").reworded(|d| format!("cannot read the thing: {d}"));
        assert_eq!(e.to_string(), "cannot read the thing: ExpiredToken: old");
        assert!(e.is_expired_token());
        assert_eq!(e.detail(), "ExpiredToken: old");
    }
}
