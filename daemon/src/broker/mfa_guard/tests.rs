use super::*;
use std::os::unix::fs::PermissionsExt;

fn code(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

const DEV: &str = "arn:aws:iam::1:mfa/alice-laptop";

#[test]
fn a_b_a_b_a_sends_each_code_once() {
    let mut g = MfaGuard::new(None);
    assert_eq!(g.admit(DEV, &code("111111")), Admission::Go);
    assert_eq!(g.refused(DEV, &code("111111")), None);
    assert_eq!(g.admit(DEV, &code("222222")), Admission::Go);
    assert_eq!(g.refused(DEV, &code("222222")), None);
    for c in ["111111", "222222", "111111"] {
        assert_eq!(g.admit(DEV, &code(c)), Admission::RefusedBefore, "{c}");
    }
}

#[test]
fn three_wrong_codes_back_off_doubling_and_a_right_one_resets() {
    let mut g = MfaGuard::new(None);
    for (i, c) in ["100001", "100002"].iter().enumerate() {
        assert_eq!(g.admit(DEV, &code(c)), Admission::Go, "{i}");
        assert_eq!(g.refused(DEV, &code(c)), None);
    }
    assert_eq!(g.admit(DEV, &code("100003")), Admission::Go);
    assert_eq!(g.refused(DEV, &code("100003")), Some(FIRST_BACKOFF));
    match g.admit(DEV, &code("100004")) {
        Admission::Throttled { retry_after } => assert!((29..=30).contains(&retry_after)),
        other => panic!("{other:?}"),
    }
    // The next wrong code after the wait doubles it.
    g.devices.get_mut(DEV).unwrap().blocked_until = None;
    assert_eq!(g.admit(DEV, &code("100004")), Admission::Go);
    assert_eq!(g.refused(DEV, &code("100004")), Some(FIRST_BACKOFF * 2));
    g.devices.get_mut(DEV).unwrap().backoff = MAX_BACKOFF;
    g.devices.get_mut(DEV).unwrap().blocked_until = None;
    assert_eq!(g.admit(DEV, &code("100005")), Admission::Go);
    assert_eq!(
        g.refused(DEV, &code("100005")),
        Some(MAX_BACKOFF),
        "capped at 15 min"
    );
    g.devices.get_mut(DEV).unwrap().blocked_until = None;
    assert_eq!(g.admit(DEV, &code("123456")), Admission::Go);
    g.accepted(DEV, &code("123456"));
    let dev = &g.devices[DEV];
    assert_eq!(
        (dev.wrong_in_a_row, dev.backoff, dev.blocked_until),
        (0, Duration::ZERO, None)
    );
    // Other devices are not affected by one device's backoff.
    assert_eq!(g.admit("other", &code("100004")), Admission::Go);
}

#[test]
fn a_used_or_pending_code_is_reused_and_a_withdrawn_one_is_not() {
    let mut g = MfaGuard::new(None);
    assert_eq!(g.admit(DEV, &code("123456")), Admission::Go);
    assert!(
        matches!(g.admit(DEV, &code("123456")), Admission::Reused { .. }),
        "pending"
    );
    g.withdraw(DEV, &code("123456"));
    assert_eq!(g.admit(DEV, &code("123456")), Admission::Go, "never sent");
    g.sent(DEV);
    g.accepted(DEV, &code("123456"));
    assert!(
        matches!(g.admit(DEV, &code("123456")), Admission::Reused { retry_after } if (1..=30).contains(&retry_after))
    );
    assert_eq!(
        g.admit(DEV, &code("654321")),
        Admission::Go,
        "another code of the same step is fine for the daemon that sent it"
    );
}

#[test]
fn a_restarted_daemon_waits_for_the_next_step_after_a_sent_code() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join(keyward_proto::paths::MFA_STEPS_NAME);
    let mut g = MfaGuard::new(Some(store.clone()));
    assert_eq!(g.admit(DEV, &code("123456")), Admission::Go);
    g.sent(DEV);
    g.accepted(DEV, &code("123456"));
    let text = std::fs::read_to_string(&store).unwrap();
    assert!(
        !text.contains("123456"),
        "the file holds steps, never codes: {text}"
    );
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let mut restarted = MfaGuard::new(Some(store.clone()));
    assert!(matches!(
        restarted.admit(DEV, &code("123456")),
        Admission::Reused { .. }
    ));
    // An older step is history.
    restarted
        .steps
        .insert(DEV.to_owned(), current_step(Clock::system()) - 1);
    assert_eq!(restarted.admit(DEV, &code("123456")), Admission::Go);

    // A refused code burns nothing, so it leaves no step behind.
    let mut g = MfaGuard::new(Some(store.clone()));
    g.steps.clear();
    assert_eq!(g.admit(DEV, &code("000000")), Admission::Go);
    g.sent(DEV);
    g.refused(DEV, &code("000000"));
    assert_eq!(
        MfaGuard::new(Some(store)).admit(DEV, &code("123456")),
        Admission::Go
    );
}
