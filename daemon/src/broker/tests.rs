//! Broker logic against a fake STS and the memory key store.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::SystemTime;

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::*;
use crate::keychain::MemoryKeyStore;
use crate::session::SessionKind;

#[derive(Default)]
pub(super) struct Fake {
    pub gst: AtomicUsize,
    pub assume: AtomicUsize,
    /// Scripted failures, consumed in order before successes.
    pub failures: StdMutex<VecDeque<StsError>>,
    /// Lifetime of the sessions handed out.
    pub lifetime: StdMutex<Option<Duration>>,
    pub delay_ms: u64,
}

impl Fake {
    fn session(&self, kind: SessionKind, duration: Duration) -> Result<Session, StsError> {
        if let Some(e) = self.failures.lock().unwrap().pop_front() {
            return Err(e);
        }
        let life = self.lifetime.lock().unwrap().unwrap_or(duration);
        let n = self.gst.load(Ordering::SeqCst) + self.assume.load(Ordering::SeqCst);
        Ok(Session::new(
            format!("ASIAFAKE{n:08}"),
            SecretString::from("secret"),
            SecretString::from("token"),
            SystemTime::now() + life,
            kind,
        ))
    }
}

impl Upstream for Arc<Fake> {
    async fn get_session_token(
        &self,
        _key: AccessKey,
        _region: Option<String>,
        _serial: String,
        _code: Zeroizing<String>,
        duration: Duration,
    ) -> Result<Session, StsError> {
        self.gst.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        self.session(SessionKind::Base, duration)
    }

    async fn check_key(&self, _key: AccessKey, _region: Option<String>) -> Result<(), StsError> {
        match self.failures.lock().unwrap().pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn assume_role(
        &self,
        _caller: Caller,
        req: AssumeRoleRequest,
    ) -> Result<Session, StsError> {
        self.assume.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        self.session(SessionKind::Role, req.duration)
    }
}

const CONFIG: &str = r#"
[profiles.dev]
mfa_serial = "arn:aws:iam::123456789012:mfa/dev"
mfa_process = ["true"]
[profiles.manual]
mfa_serial = "arn:aws:iam::123456789012:mfa/manual"
[profiles.short]
role_arn = "arn:aws:iam::123456789012:role/short"
source = "dev"
duration = "20m"
"#;

pub(super) struct Fixture {
    pub broker: Arc<Broker<Arc<Fake>>>,
    pub fake: Arc<Fake>,
    pub keys: Arc<MemoryKeyStore>,
    pub dir: tempfile::TempDir,
}

pub(super) fn fixture(fake: Fake) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let keys = Arc::new(MemoryKeyStore::default());
    for p in ["dev", "manual"] {
        keys.set(
            p,
            &AccessKey::new("AKIAFAKE0000000001", SecretString::from("s")),
        )
        .unwrap();
    }
    let fake = Arc::new(fake);
    Fixture {
        broker: Broker::new(fake.clone(), keys.clone(), path),
        fake,
        keys,
        dir,
    }
}

pub(super) fn code(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

/// `n` concurrent requests for `dev` from callers that could each obtain a code.
pub(super) fn waiters(f: &Fixture, n: usize) -> Vec<tokio::task::JoinHandle<Outcome>> {
    (0..n)
        .map(|_| {
            let b = f.broker.clone();
            tokio::spawn(async move { b.credentials("dev", true).await })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_get_one_prompt_and_one_sts_call() {
    let f = fixture(Fake {
        delay_ms: 50,
        ..Fake::default()
    });
    let tasks = waiters(&f, 50);
    // Exactly one caller is handed the prompt; the others wait for it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = f.broker.submit_mfa("dev", code("123456")).await.unwrap();
    let mut prompted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(got) => assert_eq!(got.access_key_id, s.access_key_id),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::MfaRequired);
                assert_eq!(
                    e.mfa_serial.as_deref(),
                    Some("arn:aws:iam::123456789012:mfa/dev")
                );
                prompted += 1;
            }
        }
    }
    assert_eq!(prompted, 1, "one prompt for the device");
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 1, "one GetSessionToken");
}

#[tokio::test]
async fn without_a_prompt_or_mfa_process_the_answer_is_immediate() {
    let f = fixture(Fake::default());
    let started = Instant::now();
    for _ in 0..3 {
        let e = f.broker.credentials("manual", false).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::MfaRequired);
        assert!(
            e.message.contains("keyward login --profile manual"),
            "{}",
            e.message
        );
    }
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn a_used_code_is_refused_without_an_sts_call() {
    let f = fixture(Fake::default());
    f.broker.submit_mfa("dev", code("111111")).await.unwrap();
    f.broker.lock(false);
    let e = f
        .broker
        .submit_mfa("dev", code("111111"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MfaReused);
    assert!(e.retry_after_secs.is_some_and(|s| (1..=30).contains(&s)));
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 1);
    f.broker.submit_mfa("dev", code("222222")).await.unwrap();
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_wrong_code_caches_nothing_and_frees_the_prompt() {
    let f = fixture(Fake::default());
    f.fake
        .failures
        .lock()
        .unwrap()
        .push_back(StsError::InvalidMfa("bad".into()));
    let e = f
        .broker
        .submit_mfa("dev", code("999999"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MfaInvalid);
    assert!(f.broker.status().sessions.is_empty());
    // The prompt is free again at once, not after the lease runs out.
    let e = f.broker.credentials("dev", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MfaRequired);
    assert!(f.broker.submit_mfa("dev", code("123123")).await.is_ok());
}

#[tokio::test]
async fn malformed_codes_never_reach_sts() {
    let f = fixture(Fake::default());
    for bad in ["", "12345", "1234567", "abcdef", "12 456"] {
        let e = f.broker.submit_mfa("dev", code(bad)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::MfaInvalid, "{bad:?}");
    }
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn sessions_under_fifteen_minutes_are_never_handed_out() {
    let f = fixture(Fake::default());
    *f.fake.lifetime.lock().unwrap() = Some(Duration::from_secs(10 * 60));
    let e = f
        .broker
        .submit_mfa("dev", code("123456"))
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::MfaRequired,
        "a 10-minute session is not served"
    );
}

#[tokio::test]
async fn a_failed_role_refresh_serves_the_old_credentials_and_backs_off() {
    let f = fixture(Fake::default());
    let first = f.broker.submit_mfa("short", code("123456")).await.unwrap();
    assert_eq!(first.kind, SessionKind::Role);
    assert_eq!(f.fake.assume.load(Ordering::SeqCst), 1);
    f.fake.failures.lock().unwrap().extend([
        StsError::Transient("500".into()),
        StsError::Transient("500".into()),
    ]);
    let again = f.broker.credentials("short", false).await.unwrap();
    assert_eq!(again.access_key_id, first.access_key_id);
    assert_eq!(
        f.fake.assume.load(Ordering::SeqCst),
        2,
        "one refresh attempt"
    );
    f.broker.credentials("short", false).await.unwrap();
    assert_eq!(
        f.fake.assume.load(Ordering::SeqCst),
        2,
        "backing off, no new call"
    );
}

#[tokio::test]
async fn an_invalid_key_drops_everything_and_is_not_retried() {
    let f = fixture(Fake::default());
    f.broker.submit_mfa("short", code("123456")).await.unwrap();
    f.broker.lock(false);
    f.fake
        .failures
        .lock()
        .unwrap()
        .push_back(StsError::KeyInvalid("gone".into()));
    let e = f
        .broker
        .submit_mfa("dev", code("654321"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::KeyRevoked);
    assert!(e.message.contains("keyward setup"));
    let calls = f.fake.gst.load(Ordering::SeqCst);
    let e = f.broker.credentials("dev", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::KeyRevoked, "no prompt for a dead key");
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), calls);
    assert_eq!(f.broker.status().revoked, vec!["dev".to_owned()]);
}

#[tokio::test]
async fn a_flight_started_before_lock_stores_nothing() {
    let f = fixture(Fake {
        delay_ms: 100,
        ..Fake::default()
    });
    let b = f.broker.clone();
    let t = tokio::spawn(async move { b.submit_mfa("dev", code("123456")).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    f.broker.lock(false);
    let _ = t.await.unwrap();
    assert!(
        f.broker.status().sessions.is_empty(),
        "lock wins over a late answer"
    );
}

#[tokio::test]
async fn unknown_profiles_name_the_known_ones() {
    let f = fixture(Fake::default());
    let e = f.broker.credentials("nope", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnknownProfile);
    assert!(e.message.contains("dev, manual, short"), "{}", e.message);
}

#[test]
fn session_names_follow_sts_rules() {
    assert_eq!(session_name("alice laptop/x"), "keyward-alice-laptop-x");
    assert_eq!(session_name(&"a".repeat(100)).len(), 64);
}

#[tokio::test]
async fn a_key_check_that_finds_the_key_gone_drops_every_session() {
    let f = fixture(Fake::default());
    f.broker.submit_mfa("short", code("123456")).await.unwrap();
    assert_eq!(f.broker.status().sessions.len(), 2);
    // Only profiles holding a session are checked in the background.
    f.fake
        .failures
        .lock()
        .unwrap()
        .push_back(StsError::KeyInvalid("deleted".into()));
    let results = f.broker.check_keys(true).await;
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].0, "dev");
    assert_eq!(
        results[0].1.as_ref().unwrap_err().kind,
        ErrorKind::KeyRevoked
    );
    let st = f.broker.status();
    assert!(st.sessions.is_empty());
    assert_eq!(st.revoked, vec!["dev".to_owned()]);
    let e = f.broker.credentials("short", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::KeyRevoked);
    let notices = f.broker.notices();
    assert_eq!(notices.len(), 1, "once, not at every check: {notices:?}");
    assert!(
        notices[0].contains("`dev` was revoked or deleted"),
        "{notices:?}"
    );
}

#[tokio::test]
async fn the_session_ending_notice_is_for_the_session_still_held() {
    let f = fixture(Fake::default());
    *f.fake.lifetime.lock().unwrap() = Some(Duration::from_secs(16 * 60));
    f.broker.submit_mfa("dev", code("123456")).await.unwrap();
    let held = f.broker.state().sessions.get("dev").cloned().unwrap();
    f.broker.notice_if_current("dev", &held);
    let notices = f.broker.notices();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("`dev` ends in 10 minutes")),
        "{notices:?}"
    );
    f.broker.lock(false);
    f.broker.notice_if_current("dev", &held);
    assert_eq!(
        f.broker.notices().len(),
        1,
        "a locked session gets no notice"
    );
}
