//! The MFA guard inside the broker: guessing is throttled, a refused code is not sent
//! twice, a keychain error burns nothing, an upstream failure is shared, and a
//! restarted daemon does not resend a code of the step AWS already took.

use std::sync::atomic::Ordering;

use super::tests::{code, fixture, waiters, Fake};
use super::*;
use crate::keychain::KeychainError;

fn refuse_next(f: &super::tests::Fixture, n: usize) {
    let mut q = f.fake.failures.lock().unwrap();
    for _ in 0..n {
        q.push_back(StsError::InvalidMfa(
            "MultiFactorAuthentication failed".into(),
        ));
    }
}

#[tokio::test]
async fn twenty_wrong_codes_reach_sts_three_times_then_back_off() {
    let f = fixture(Fake::default());
    refuse_next(&f, 20);
    let mut kinds = Vec::new();
    for i in 0..20 {
        let e = f
            .broker
            .submit_mfa("dev", code(&format!("{:06}", 100_000 + i)))
            .await
            .unwrap_err();
        kinds.push((e.kind, e.retry_after_secs, e.message));
    }
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 3, "{kinds:?}");
    let (kind, retry, message) = &kinds[3];
    assert_eq!(*kind, ErrorKind::MfaThrottled);
    assert!(retry.is_some_and(|s| (29..=30).contains(&s)), "{retry:?}");
    assert!(message.contains("next try is allowed in"), "{message}");
    assert!(kinds[2].2.contains("after 3 wrong codes"), "{}", kinds[2].2);
}

#[tokio::test]
async fn a_b_a_b_a_makes_two_sts_calls() {
    let f = fixture(Fake::default());
    refuse_next(&f, 5);
    for c in ["111111", "222222", "111111", "222222", "111111"] {
        let e = f.broker.submit_mfa("dev", code(c)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::MfaInvalid, "{c}");
    }
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_keychain_error_does_not_burn_the_code() {
    let f = fixture(Fake::default());
    f.keys
        .fail_next_read(KeychainError::Unavailable("the keyring is locked".into()));
    let e = f
        .broker
        .submit_mfa("dev", code("123456"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Keychain, "{}", e.message);
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 0);
    // The same code works at once: it never reached STS.
    f.broker.submit_mfa("dev", code("123456")).await.unwrap();
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_share_an_sts_stall_instead_of_paying_for_their_own() {
    let f = fixture(Fake {
        delay_ms: 300,
        ..Fake::default()
    });
    let tasks = waiters(&f, 8);
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.fake
        .failures
        .lock()
        .unwrap()
        .push_back(StsError::Transient("timed out".into()));
    let e = f
        .broker
        .submit_mfa("dev", code("123456"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Upstream);
    let mut kinds = Vec::new();
    for t in tasks {
        kinds.push(t.await.unwrap().unwrap_err().kind);
    }
    let prompted = kinds
        .iter()
        .filter(|k| **k == ErrorKind::MfaRequired)
        .count();
    assert_eq!(prompted, 1, "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == ErrorKind::Upstream).count(),
        7,
        "{kinds:?}"
    );
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 1, "one stall, paid once");
}

#[tokio::test]
async fn a_restarted_daemon_does_not_resend_a_code_of_the_step_aws_took() {
    let f = fixture(Fake::default());
    let store = f.dir.path().join(keyward_proto::paths::MFA_STEPS_NAME);
    let config = f.dir.path().join("config.toml");
    let first = Broker::with_mfa_store(
        f.fake.clone(),
        f.keys.clone(),
        config.clone(),
        Some(store.clone()),
    );
    first.submit_mfa("dev", code("123456")).await.unwrap();
    drop(first);
    let restarted = Broker::with_mfa_store(f.fake.clone(), f.keys.clone(), config, Some(store));
    let e = restarted
        .submit_mfa("dev", code("123456"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MfaReused);
    assert!(e.retry_after_secs.is_some_and(|s| (1..=30).contains(&s)));
    assert_eq!(f.fake.gst.load(Ordering::SeqCst), 1, "not sent again");
}

#[tokio::test]
async fn a_code_refused_as_already_used_frees_the_prompt_at_once() {
    let f = fixture(Fake::default());
    f.broker.submit_mfa("dev", code("123456")).await.unwrap();
    f.broker.lock(false);
    // A prompting caller takes the device's prompt, and its user types the old code.
    let e = f.broker.credentials("dev", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MfaRequired);
    let e = f
        .broker
        .submit_mfa("dev", code("123456"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MfaReused, "{}", e.message);
    // The next prompting caller is asked at once, not after the two-minute lease.
    let next = tokio::time::timeout(Duration::from_secs(5), f.broker.credentials("dev", true))
        .await
        .expect("the prompt was released when the code was refused")
        .unwrap_err();
    assert_eq!(next.kind, ErrorKind::MfaRequired);
}
