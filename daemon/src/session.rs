//! Secret types: the long-term access key and STS session credentials.
//! No `Clone`, no `Serialize`, redacted `Debug`, zeroized on drop.

use std::time::{Duration, SystemTime};

use keyward_proto::SessionInfo;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zeroize::Zeroizing;

/// This computer's long-term IAM access key, as read from the keychain.
pub struct AccessKey {
    pub id: String,
    secret: SecretString,
}

impl AccessKey {
    pub fn new(id: impl Into<String>, secret: SecretString) -> Self {
        Self {
            id: id.into(),
            secret,
        }
    }

    pub fn expose_secret(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// GetSessionToken with MFA.
    Base,
    /// AssumeRole chained from the base session.
    Role,
    /// AssumeRole with the long-term key and MFA (for durations over 1 h).
    RoleMfa,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Base => "base",
            SessionKind::Role => "role",
            SessionKind::RoleMfa => "role-mfa",
        }
    }
}

/// STS session credentials, held in memory only.
pub struct Session {
    pub access_key_id: String,
    secret_access_key: SecretString,
    session_token: SecretString,
    pub expiration: SystemTime,
    pub kind: SessionKind,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessJson<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
}

impl Session {
    pub fn new(
        access_key_id: String,
        secret_access_key: SecretString,
        session_token: SecretString,
        expiration: SystemTime,
        kind: SessionKind,
    ) -> Self {
        Self {
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
            kind,
        }
    }

    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expiration.duration_since(now).unwrap_or_default()
    }

    pub fn secret_access_key(&self) -> &str {
        self.secret_access_key.expose_secret()
    }

    pub fn session_token(&self) -> &str {
        self.session_token.expose_secret()
    }

    /// The exact credential_process `Version: 1` document.
    pub fn process_json(&self) -> Zeroizing<Vec<u8>> {
        let doc = ProcessJson {
            version: 1,
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key(),
            session_token: self.session_token(),
            expiration: humantime::format_rfc3339_seconds(self.expiration).to_string(),
        };
        Zeroizing::new(serde_json::to_vec(&doc).expect("plain strings serialize"))
    }

    pub fn info(&self, profile: &str, now: SystemTime) -> SessionInfo {
        let id = &self.access_key_id;
        SessionInfo {
            profile: profile.to_owned(),
            kind: self.kind.as_str().to_owned(),
            access_key_id_suffix: id[id.len().saturating_sub(4)..].to_owned(),
            expiration: humantime::format_rfc3339_seconds(self.expiration).to_string(),
            expires_in_secs: self.remaining(now).as_secs(),
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .field("kind", &self.kind)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(
            "ASIAEXAMPLE1234".into(),
            SecretString::from("SECRETKEYCANARY"),
            SecretString::from("TOKENCANARY"),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            SessionKind::Base,
        )
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = format!("{:?}", session());
        assert!(
            !s.contains("SECRETKEYCANARY") && !s.contains("TOKENCANARY"),
            "{s}"
        );
        let k = format!(
            "{:?}",
            AccessKey::new("AKIA1", SecretString::from("LONGTERMCANARY"))
        );
        assert!(!k.contains("LONGTERMCANARY"), "{k}");
    }

    #[test]
    fn process_json_is_version_1_with_rfc3339() {
        let json: serde_json::Value = serde_json::from_slice(&session().process_json()).unwrap();
        assert_eq!(json["Version"], 1);
        assert_eq!(json["AccessKeyId"], "ASIAEXAMPLE1234");
        assert_eq!(json["SessionToken"], "TOKENCANARY");
        assert_eq!(json["Expiration"], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn info_shows_only_a_suffix() {
        let i = session().info("dev", SystemTime::UNIX_EPOCH);
        assert_eq!(i.access_key_id_suffix, "1234");
        assert_eq!(i.kind, "base");
    }
}
