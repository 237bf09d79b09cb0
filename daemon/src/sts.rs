//! STS calls: GetSessionToken with MFA, and AssumeRole (chained from a session, or
//! directly with the long-term key and MFA). Endpoints come from the standard
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_STS` variables.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::session::{AccessKey, Session, SessionKind};

pub const DEFAULT_REGION: &str = "us-east-1";

/// Why an STS call failed, sorted by what the caller should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StsError {
    #[error("STS rejected the MFA code: {0}")]
    InvalidMfa(String),
    /// InvalidClientTokenId: the long-term key does not exist any more.
    #[error("STS does not know this access key (InvalidClientTokenId): {0}")]
    KeyInvalid(String),
    #[error("STS denied the request: {0}")]
    AccessDenied(String),
    /// Throttling, 5xx, timeouts and network errors that outlived the retries.
    #[error("STS is unreachable or failing: {0}")]
    Transient(String),
    #[error("STS error {code}: {message}")]
    Other { code: String, message: String },
}

/// Who signs an AssumeRole call.
pub enum Caller {
    /// Chained from a live session (no MFA; capped at one hour).
    Session(Arc<Session>),
    /// The long-term key with an MFA code (durations over one hour).
    KeyWithMfa {
        key: AccessKey,
        serial: String,
        code: Zeroizing<String>,
    },
}

pub struct AssumeRoleRequest {
    pub role_arn: String,
    pub session_name: String,
    pub duration: Duration,
    pub external_id: Option<String>,
    pub region: Option<String>,
    /// The machine's user name: revocation denies it on the roles keyward guards, and
    /// AWS carries it through role chaining where it cannot be changed.
    pub source_identity: Option<String>,
}

/// The STS operations the broker needs; a trait so the cache logic is unit-testable.
pub trait Upstream: Send + Sync + 'static {
    fn get_session_token(
        &self,
        key: AccessKey,
        region: Option<String>,
        serial: String,
        code: Zeroizing<String>,
        duration: Duration,
    ) -> impl Future<Output = Result<Session, StsError>> + Send;

    fn assume_role(
        &self,
        caller: Caller,
        req: AssumeRoleRequest,
    ) -> impl Future<Output = Result<Session, StsError>> + Send;

    /// GetCallerIdentity with the long-term key: does AWS still know it?
    fn check_key(
        &self,
        key: AccessKey,
        region: Option<String>,
    ) -> impl Future<Output = Result<(), StsError>> + Send;
}

/// The real thing, via aws-sdk-sts.
#[derive(Clone)]
pub struct AwsSts {
    base: SdkConfig,
}

impl AwsSts {
    /// Loads endpoint and retry settings from the environment; never credentials.
    pub async fn from_env() -> Self {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .no_credentials()
            .region(Region::new(DEFAULT_REGION))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(2)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(8))
                    .operation_timeout(Duration::from_secs(25))
                    .build(),
            )
            .load()
            .await;
        Self { base }
    }

    fn client(&self, creds: Credentials, region: Option<String>) -> aws_sdk_sts::Client {
        // No identity cache: it would keep the long-term key alive after the call.
        let mut conf = aws_sdk_sts::config::Builder::from(&self.base)
            .identity_cache(aws_sdk_sts::config::IdentityCache::no_cache())
            .credentials_provider(creds);
        if let Some(r) = region {
            conf = conf.region(Region::new(r));
        }
        aws_sdk_sts::Client::from_conf(conf.build())
    }
}

fn key_credentials(key: &AccessKey) -> Credentials {
    Credentials::new(&key.id, key.expose_secret(), None, None, "keyward-keychain")
}

fn to_session(
    c: Option<&aws_sdk_sts::types::Credentials>,
    kind: SessionKind,
) -> Result<Session, StsError> {
    let c = c.ok_or_else(|| StsError::Transient("STS answered without credentials".into()))?;
    let exp = SystemTime::try_from(*c.expiration())
        .map_err(|_| StsError::Transient("STS answered with an unreadable expiration".into()))?;
    Ok(Session::new(
        c.access_key_id().to_owned(),
        SecretString::from(c.secret_access_key().to_owned()),
        SecretString::from(c.session_token().to_owned()),
        exp,
        kind,
    ))
}

fn classify<E>(err: SdkError<E, HttpResponse>) -> StsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            // AWS ends its sentences with ". " and we append our own advice.
            let message = e
                .message()
                .unwrap_or_default()
                .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
                .to_owned();
            match classify_code(&code, message) {
                StsError::InvalidMfa(m) => {
                    let date = se.raw().headers().get("date");
                    StsError::InvalidMfa(m + &clock_hint(date, crate::clock::Clock::system().now()))
                }
                other => other,
            }
        }
        SdkError::TimeoutError(_) => StsError::Transient("timed out".into()),
        SdkError::DispatchFailure(d) => StsError::Transient(if d.is_io() {
            "connection failed".into()
        } else if d.is_timeout() {
            "timed out".into()
        } else {
            "request could not be sent".into()
        }),
        SdkError::ResponseError(_) => StsError::Transient("unreadable response".into()),
        other => StsError::Transient(format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        )),
    }
}

/// A refused MFA code from a computer whose clock is off says so: TOTP codes follow
/// the clock, so a phone and a skewed computer never agree.
pub fn clock_hint(server_date: Option<&str>, now: SystemTime) -> String {
    let Some(server) = server_date.and_then(|d| {
        aws_smithy_types::DateTime::from_str(d, aws_smithy_types::date_time::Format::HttpDate).ok()
    }) else {
        return String::new();
    };
    let local = aws_smithy_types::DateTime::from(now);
    let skew = local.secs() - server.secs();
    if skew.abs() <= 30 {
        return String::new();
    }
    let dir = if skew > 0 { "ahead of" } else { "behind" };
    format!(
        " (this computer's clock is {} s {dir} AWS's; fix it, e.g. `sudo timedatectl set-ntp true`, and MFA codes will match)",
        skew.abs()
    )
}

/// Maps an AWS error code to what the broker should do.
pub fn classify_code(code: &str, message: String) -> StsError {
    match code {
        "InvalidClientTokenId" | "SignatureDoesNotMatch" => StsError::KeyInvalid(message),
        "AccessDenied" if message.contains("MultiFactorAuthentication") => {
            StsError::InvalidMfa(message)
        }
        "AccessDenied" | "AccessDeniedException" => StsError::AccessDenied(message),
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "ServiceUnavailable"
        | "InternalFailure"
        | "InternalError" => StsError::Transient(format!("{code}: {message}")),
        _ => StsError::Other {
            code: code.to_owned(),
            message,
        },
    }
}

fn duration_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl Upstream for AwsSts {
    async fn get_session_token(
        &self,
        key: AccessKey,
        region: Option<String>,
        serial: String,
        code: Zeroizing<String>,
        duration: Duration,
    ) -> Result<Session, StsError> {
        let client = self.client(key_credentials(&key), region);
        drop(key);
        let out = client
            .get_session_token()
            .serial_number(serial)
            .token_code(code.as_str())
            .duration_seconds(duration_secs(duration))
            .send()
            .await
            .map_err(classify)?;
        to_session(out.credentials(), SessionKind::Base)
    }

    async fn assume_role(
        &self,
        caller: Caller,
        req: AssumeRoleRequest,
    ) -> Result<Session, StsError> {
        let (creds, mfa, kind) = match caller {
            Caller::Session(s) => (
                Credentials::new(
                    &s.access_key_id,
                    s.secret_access_key(),
                    Some(s.session_token().to_owned()),
                    None,
                    "keyward-session",
                ),
                None,
                SessionKind::Role,
            ),
            Caller::KeyWithMfa { key, serial, code } => (
                key_credentials(&key),
                Some((serial, code)),
                SessionKind::RoleMfa,
            ),
        };
        let client = self.client(creds, req.region);
        let mut call = client
            .assume_role()
            .role_arn(req.role_arn)
            .role_session_name(req.session_name)
            .duration_seconds(duration_secs(req.duration))
            .set_external_id(req.external_id)
            .set_source_identity(req.source_identity);
        if let Some((serial, code)) = &mfa {
            call = call.serial_number(serial).token_code(code.as_str());
        }
        let out = call.send().await.map_err(classify)?;
        to_session(out.credentials(), kind)
    }

    async fn check_key(&self, key: AccessKey, region: Option<String>) -> Result<(), StsError> {
        let client = self.client(key_credentials(&key), region);
        drop(key);
        client
            .get_caller_identity()
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert!(matches!(
            classify_code(
                "AccessDenied",
                "MultiFactorAuthentication failed with invalid MFA one time pass code.".into()
            ),
            StsError::InvalidMfa(_)
        ));
        assert!(matches!(
            classify_code("AccessDenied", "no".into()),
            StsError::AccessDenied(_)
        ));
        assert!(matches!(
            classify_code("InvalidClientTokenId", "x".into()),
            StsError::KeyInvalid(_)
        ));
        assert!(matches!(
            classify_code("Throttling", "x".into()),
            StsError::Transient(_)
        ));
        assert!(matches!(
            classify_code("Weird", "x".into()),
            StsError::Other { .. }
        ));
    }

    #[test]
    fn a_clock_two_hours_off_is_named_and_a_small_drift_is_not() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_500_000);
        let server = aws_smithy_types::DateTime::from(now - Duration::from_secs(7200))
            .fmt(aws_smithy_types::date_time::Format::HttpDate)
            .unwrap();
        let hint = clock_hint(Some(&server), now);
        assert!(hint.contains("7200 s ahead of AWS"), "{hint}");
        let close = aws_smithy_types::DateTime::from(now - Duration::from_secs(20))
            .fmt(aws_smithy_types::date_time::Format::HttpDate)
            .unwrap();
        assert_eq!(clock_hint(Some(&close), now), "");
        assert_eq!(clock_hint(None, now), "");
        assert_eq!(clock_hint(Some("garbage"), now), "");
    }
}
