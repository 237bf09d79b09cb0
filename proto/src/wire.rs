//! Request and response bodies. Secrets in here are zeroized on drop.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Every route the daemon serves. The CLI and the helper reach them only through the
/// typed [`crate::client::Client`] methods.
pub mod route {
    /// `POST` [`super::CredentialsRequest`] → credential_process JSON, or an error.
    pub const CREDENTIALS: &str = "/v1/credentials";
    /// `POST` [`super::MfaSubmit`] → credential_process JSON, or an error.
    pub const MFA: &str = "/v1/mfa";
    /// `GET` → [`super::Status`]. Answered whatever the client's protocol version.
    pub const STATUS: &str = "/v1/status";
    /// `POST` [`super::CheckRequest`] → [`super::CheckResponse`].
    pub const CHECK: &str = "/v1/check";
    /// `POST` [`super::LockRequest`] → [`super::LockResponse`].
    pub const LOCK: &str = "/v1/lock";
    /// `POST` [`super::ShutdownRequest`] → [`super::ShutdownResponse`]. Answered whatever
    /// the client's protocol version, so that any client can replace any daemon.
    pub const SHUTDOWN: &str = "/v1/shutdown";
}

/// Machine-readable error kinds, so a client can branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No live MFA session; the client should obtain a code and POST it to `/v1/mfa`.
    MfaRequired,
    /// STS rejected the MFA code.
    MfaInvalid,
    /// The code was already used; wait for the next one (`retry_after_secs`).
    MfaReused,
    /// Too many wrong codes for this device: no code is tried before
    /// `retry_after_secs`.
    MfaThrottled,
    UnknownProfile,
    /// The keychain holds no key for this profile.
    NoKey,
    Keychain,
    /// The key is in its encrypted file and not unlocked: run `keyward unlock`.
    KeyLocked,
    /// STS says the long-term key does not exist (revoked or deleted).
    KeyRevoked,
    AccessDenied,
    /// Network failure, throttling or a 5xx that outlived the retries.
    Upstream,
    BadRequest,
    ProtocolMismatch,
    TooLarge,
    Config,
    Internal,
}

/// Every non-2xx response carries this body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub kind: ErrorKind,
    pub message: String,
    /// With `mfa_required`: the MFA device to ask a code of (shown in the prompt).
    /// A reply never carries a command to run: the helper takes `mfa_process` from the
    /// user's own config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_serial: Option<String>,
    /// With `mfa_reused`: seconds until the next TOTP step; with `mfa_throttled`:
    /// seconds until the next code may be tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl ErrorBody {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            mfa_serial: None,
            retry_after_secs: None,
        }
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorBody {}

/// `POST /v1/credentials`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialsRequest {
    pub profile: String,
    /// The caller can ask a human (a terminal) or run an mfa_process. When false and no
    /// session is alive, the daemon answers `mfa_required` at once.
    #[serde(default)]
    pub can_prompt: bool,
}

/// `POST /v1/mfa`. The code is a secret: redacted `Debug`, zeroized on drop, no `Clone`.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct MfaSubmit {
    pub profile: String,
    pub code: String,
}

impl std::fmt::Debug for MfaSubmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaSubmit")
            .field("profile", &self.profile)
            .field("code", &"<redacted>")
            .finish()
    }
}

/// One cached session as `status` shows it. Never a secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionInfo {
    pub profile: String,
    /// `base`, `role` or `role-mfa`.
    pub kind: String,
    pub access_key_id_suffix: String,
    /// RFC 3339.
    pub expiration: String,
    pub expires_in_secs: u64,
}

/// `GET /v1/status`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    pub sessions: Vec<SessionInfo>,
    /// Profiles whose long-term key STS refused as invalid.
    #[serde(default)]
    pub revoked: Vec<String>,
    /// What the daemon reads back of its own hardening.
    #[serde(default)]
    pub hardening: Option<Hardening>,
    /// An MFA prompt or an STS call is under way: a request may legitimately wait.
    #[serde(default)]
    pub busy: bool,
    /// The variables that decide where the daemon's STS calls and keychain go
    /// (endpoints, region, proxy, D-Bus), as the daemon runs with them.
    #[serde(default)]
    pub environment: std::collections::BTreeMap<String, String>,
}

/// A URL with its user and password replaced by `***` (proxy URLs may carry them).
pub fn hide_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The variables [`Status::environment`] reports: a client whose values differ is
/// told that the daemon runs with others. None of them holds a secret.
pub const RELEVANT_ENV: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_USE_FIPS_ENDPOINT",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "DBUS_SESSION_BUS_ADDRESS",
];

/// The daemon's own view of its process hardening (PR_GET_DUMPABLE, RLIMIT_CORE):
/// Linux shows neither in `/proc/<pid>/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hardening {
    pub dumpable: bool,
    pub core_limit: Option<u64>,
}

/// `POST /v1/check`: ask STS whether each profile's long-term key still exists.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {}

/// One profile's key, as STS judged it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyCheck {
    pub profile: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResponse {
    pub checked: Vec<KeyCheck>,
    pub status: Status,
}

/// `POST /v1/lock`. `forget_revoked` is for a changed key (import, remove, setup).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    #[serde(default)]
    pub forget_revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockResponse {
    /// How many sessions were dropped (and zeroized).
    pub forgotten: usize,
}

/// `POST /v1/shutdown`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShutdownRequest {}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShutdownResponse {
    pub stopping: bool,
}

#[cfg(test)]
#[path = "wire_golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kind_is_snake_case_on_the_wire() {
        let body = ErrorBody::new(ErrorKind::MfaRequired, "x");
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"kind":"mfa_required","message":"x"}"#);
        let back: ErrorBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back.kind, ErrorKind::MfaRequired);
    }

    #[test]
    fn mfa_submit_debug_redacts_the_code() {
        let m = MfaSubmit {
            profile: "p".into(),
            code: "123456".into(),
        };
        let dbg = format!("{m:?}");
        assert!(!dbg.contains("123456"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn protocol_version_is_pinned() {
        // Changing the wire format means bumping this by hand, and this test with it.
        assert_eq!(crate::PROTOCOL_VERSION, 4);
    }
}
