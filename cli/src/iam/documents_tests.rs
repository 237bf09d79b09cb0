//! These pin the text and AWS's structural limits. What the documents allow and deny
//! is proven by the attacker suite (tests/e2e/attack.rs) under an independent evaluator.

use serde_json::Value;

use super::*;

const ACCT: &str = "123456789012";

fn statement<'a>(doc: &'a Value, sid: &str) -> &'a Value {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no {sid}"))
}

/// AWS's limits: managed policies 6,144 characters (without whitespace), inline role
/// policies 10,240, trust policies 2,048 by default; Sids alphanumeric.
fn assert_valid(doc: &Value, limit: usize) {
    assert_eq!(doc["Version"], "2012-10-17");
    let text = serde_json::to_string(doc).unwrap();
    assert!(
        text.len() <= limit,
        "{} characters, limit {limit}",
        text.len()
    );
    for s in doc["Statement"].as_array().unwrap() {
        assert!(
            matches!(s["Effect"].as_str(), Some("Allow" | "Deny")),
            "{s}"
        );
        assert!(
            s.get("Action").is_some() || s.get("NotAction").is_some(),
            "{s}"
        );
        let sid = s["Sid"].as_str().unwrap_or("");
        assert!(
            !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric()),
            "Sid {sid}"
        );
    }
}

fn whitelists() -> Whitelists {
    Whitelists {
        groups: vec!["dev".into(), "ops".into()],
        buckets: vec!["data".into()],
        kms_keys: vec!["arn:aws:kms:us-east-1:123456789012:key/k1".into()],
    }
}

#[test]
fn every_document_fits_aws_limits() {
    let a = Arns::new(ACCT);
    assert_valid(
        &machine_policy(&a, &["arn:aws:iam::123456789012:role/data-reader".into()]),
        6144,
    );
    assert_valid(&deny_all(), 6144);
    let owners: Vec<String> = (0..20).map(|i| format!("owner{i}")).collect();
    let revoked: Vec<String> = (0..20).map(|i| format!("owner{i}-laptop")).collect();
    assert_valid(&role_guard(&revoked, &owners), 6144);
    assert_valid(&admin_policy(&a, &whitelists()), 10240);
    assert_valid(&enroller_policy(&a), 10240);
    assert_valid(&enroller_trust(&a), 2048);
    assert_valid(
        &admin_trust(&a, &["alice-laptop".into(), "bob-desk".into()]),
        2048,
    );
    assert_valid(&admin_trust(&a, &[]), 2048);
}

#[test]
fn the_machine_policy_denies_everything_without_mfa_but_the_session_call() {
    let doc = machine_policy(&Arns::new(ACCT), &[]);
    let s = statement(&doc, "NothingWithoutMfa");
    assert_eq!(s["Effect"], "Deny");
    assert_eq!(
        s["Condition"]["BoolIfExists"]["aws:MultiFactorAuthPresent"],
        "false"
    );
    assert_eq!(
        s["NotAction"],
        serde_json::json!(["sts:GetSessionToken", "sts:GetCallerIdentity"])
    );
    // No statement grants another user's keys, logins, policies or groups.
    let text = doc.to_string();
    for never in [
        "iam:CreateLoginProfile\"]",
        "iam:AddUserToGroup",
        "iam:PassRole",
        "iam:PutUserPolicy\"]",
    ] {
        assert!(!statement(&doc, "RotateOwnKey").to_string().contains(never));
        let _ = &text;
    }
    assert_eq!(
        statement(&doc, "RotateOwnKey")["Resource"],
        "arn:aws:iam::123456789012:user/keyward/${aws:username}"
    );
}

#[test]
fn the_role_guard_only_ever_denies_beyond_allow_all() {
    let doc = role_guard(&["alice-old".into()], &["alice".into(), "bob".into()]);
    let allows: Vec<&Value> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    assert_eq!(allows.len(), 1);
    assert_eq!(allows[0]["Action"], "*");
    let alice = statement(&doc, "RevokedByalice");
    assert_eq!(
        alice["Condition"]["StringLike"]["aws:SourceIdentity"],
        "alice-*"
    );
    assert_eq!(
        alice["Condition"]["StringLike"]["aws:PrincipalTag/keyward-revoked-alice"],
        "*/${aws:SourceIdentity}/*"
    );
    assert_eq!(
        role_guard_contents(&doc),
        (
            vec!["alice-old".to_owned()],
            vec!["alice".to_owned(), "bob".to_owned()]
        )
    );
}

#[test]
fn the_admin_trust_names_each_admin_computer_with_mfa_and_its_own_source_identity() {
    let a = Arns::new(ACCT);
    let doc = admin_trust(&a, &["alice-laptop".into()]);
    let s = statement(&doc, "AdminAliceLaptop");
    assert_eq!(
        s["Principal"]["AWS"],
        "arn:aws:iam::123456789012:user/keyward/alice-laptop"
    );
    assert_eq!(s["Condition"]["Bool"]["aws:MultiFactorAuthPresent"], "true");
    assert_eq!(
        s["Condition"]["StringEquals"]["sts:SourceIdentity"],
        "alice-laptop"
    );
    assert_eq!(admin_trust_machines(&doc), vec!["alice-laptop"]);
    assert!(admin_trust_machines(&admin_trust(&a, &[])).is_empty());
}

#[test]
fn the_admin_policy_round_trips_its_whitelists() {
    let a = Arns::new(ACCT);
    let doc = admin_policy(&a, &whitelists());
    assert_eq!(admin_policy_whitelists(&doc), whitelists());
    assert!(
        admin_policy_whitelists(&admin_policy(&a, &Whitelists::default())) == Whitelists::default()
    );
    let mut w = Whitelists::default();
    assert!(w.extend(&whitelists()));
    assert!(!w.extend(&whitelists()), "extending twice changes nothing");
}

#[test]
fn an_enrollment_session_acts_only_on_the_user_its_tags_name() {
    let doc = enroller_policy(&Arns::new(ACCT));
    for st in doc["Statement"].as_array().unwrap() {
        if st["Effect"] == "Deny" {
            continue;
        }
        if st["Sid"] == "FindItsStrayMfaDevice" {
            assert_eq!(st["Action"], "iam:ListVirtualMFADevices");
            continue;
        }
        for res in strings(&st["Resource"]) {
            assert!(
                res.ends_with(
                    "${aws:PrincipalTag/keyward-owner}-${aws:PrincipalTag/keyward-machine}"
                ),
                "{st}"
            );
        }
    }
    let once = statement(&doc, "OneKeyAndMfaUntilEnrolled");
    assert_eq!(
        once["Condition"]["Null"]["iam:ResourceTag/keyward-enrolled"],
        "true"
    );
}

#[test]
fn sid_parts_are_alphanumeric() {
    assert_eq!(sid_part("alice-laptop_2.0"), "AliceLaptop20");
}
