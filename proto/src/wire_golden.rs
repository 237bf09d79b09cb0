//! One golden JSON text per message: a wire change must show up as a diff here, and
//! [`crate::PROTOCOL_VERSION`] must be bumped with it.

use super::*;

fn golden<T>(value: &T, text: &str)
where
    T: Serialize + serde::de::DeserializeOwned,
{
    assert_eq!(serde_json::to_string(value).unwrap(), text);
    let back: T = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text, "round trip");
}

fn status() -> Status {
    Status {
        version: "0.2.0".into(),
        protocol: 3,
        pid: 42,
        sessions: vec![SessionInfo {
            profile: "alice-laptop".into(),
            kind: "base".into(),
            access_key_id_suffix: "WXYZ".into(),
            expiration: "2026-11-30T12:00:00Z".into(),
            expires_in_secs: 3600,
        }],
        revoked: vec!["old".into()],
        hardening: Some(Hardening {
            dumpable: false,
            core_limit: Some(0),
        }),
        busy: true,
        environment: [("AWS_REGION".to_owned(), "eu-west-1".to_owned())].into(),
    }
}

#[test]
fn credentials_request() {
    golden(
        &CredentialsRequest {
            profile: "alice-laptop".into(),
            can_prompt: true,
        },
        r#"{"profile":"alice-laptop","can_prompt":true}"#,
    );
}

#[test]
fn mfa_submit() {
    golden(
        &MfaSubmit {
            profile: "alice-laptop".into(),
            code: "123456".into(),
        },
        r#"{"profile":"alice-laptop","code":"123456"}"#,
    );
}

#[test]
fn status_message() {
    golden(
        &status(),
        r#"{"version":"0.2.0","protocol":3,"pid":42,"sessions":[{"profile":"alice-laptop","kind":"base","access_key_id_suffix":"WXYZ","expiration":"2026-11-30T12:00:00Z","expires_in_secs":3600}],"revoked":["old"],"hardening":{"dumpable":false,"core_limit":0},"busy":true,"environment":{"AWS_REGION":"eu-west-1"}}"#,
    );
}

#[test]
fn check_messages() {
    golden(&CheckRequest {}, "{}");
    golden(
        &CheckResponse {
            checked: vec![
                KeyCheck {
                    profile: "alice-laptop".into(),
                    ok: true,
                    error: None,
                },
                KeyCheck {
                    profile: "old".into(),
                    ok: false,
                    error: Some(ErrorBody::new(ErrorKind::KeyRevoked, "gone")),
                },
            ],
            status: status(),
        },
        r#"{"checked":[{"profile":"alice-laptop","ok":true},{"profile":"old","ok":false,"error":{"kind":"key_revoked","message":"gone"}}],"status":{"version":"0.2.0","protocol":3,"pid":42,"sessions":[{"profile":"alice-laptop","kind":"base","access_key_id_suffix":"WXYZ","expiration":"2026-11-30T12:00:00Z","expires_in_secs":3600}],"revoked":["old"],"hardening":{"dumpable":false,"core_limit":0},"busy":true,"environment":{"AWS_REGION":"eu-west-1"}}}"#,
    );
}

#[test]
fn lock_messages() {
    golden(
        &LockRequest {
            forget_revoked: true,
        },
        r#"{"forget_revoked":true}"#,
    );
    golden(&LockResponse { forgotten: 3 }, r#"{"forgotten":3}"#);
    assert_eq!(
        serde_json::from_str::<LockRequest>("{}").unwrap(),
        LockRequest::default()
    );
    assert!(
        serde_json::from_str::<LockRequest>(r#"{"forget":true}"#).is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn shutdown_messages() {
    golden(&ShutdownRequest {}, "{}");
    golden(&ShutdownResponse { stopping: true }, r#"{"stopping":true}"#);
}

#[test]
fn key_locked() {
    golden(
        &ErrorBody::new(ErrorKind::KeyLocked, "run `keyward unlock`"),
        r#"{"kind":"key_locked","message":"run `keyward unlock`"}"#,
    );
}

#[test]
fn throttled_and_mfa_required() {
    let mut e = ErrorBody::new(ErrorKind::MfaThrottled, "too many");
    e.retry_after_secs = Some(30);
    golden(
        &e,
        r#"{"kind":"mfa_throttled","message":"too many","retry_after_secs":30}"#,
    );
    let mut e = ErrorBody::new(ErrorKind::MfaRequired, "code");
    e.mfa_serial = Some("arn:aws:iam::1:mfa/a".into());
    golden(
        &e,
        r#"{"kind":"mfa_required","message":"code","mfa_serial":"arn:aws:iam::1:mfa/a"}"#,
    );
    // A reply from an older daemon that names a command: the field is ignored.
    let old: ErrorBody = serde_json::from_str(
        r#"{"kind":"mfa_required","message":"m","mfa_process":["sh","-c","x"]}"#,
    )
    .unwrap();
    assert!(!serde_json::to_string(&old).unwrap().contains("mfa_process"));
}

#[test]
fn error_body() {
    let mut e = ErrorBody::new(ErrorKind::MfaReused, "wait");
    e.retry_after_secs = Some(12);
    golden(
        &e,
        r#"{"kind":"mfa_reused","message":"wait","retry_after_secs":12}"#,
    );
}
