use super::*;

const ALICE: &str = "arn:aws:iam::123456789012:user/keyward/alice-laptop";
const WORK: &str = "arn:aws:iam::123456789012:user/keyward/alice-work";
const ROOT: &str = "arn:aws:iam::123456789012:root";
const ADMIN: &str = "arn:aws:iam::123456789012:role/keyward/keyward-admin";
const KEEP: Keepers = Keepers {
    account_root: ROOT,
    admin_role: ADMIN,
};

fn bucket() -> Target {
    Target::Bucket("data".into())
}

fn foreign() -> Value {
    json!({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/pub/*"})
}

#[test]
fn a_missing_policy_gets_one_statement() {
    let doc = add_principal(&parse(None).unwrap(), &bucket(), ALICE, None);
    let sts = statements(&doc);
    assert_eq!(sts.len(), 1);
    assert_eq!(sts[0]["Sid"], SID_MACHINES);
    assert_eq!(sts[0]["Principal"]["AWS"], json!([ALICE]));
    assert_eq!(parse(Some("  ")).unwrap(), parse(None).unwrap());
}

#[test]
fn add_is_idempotent_and_keeps_foreign_statements() {
    let start = json!({"Version": "2012-10-17", "Id": "mine", "Statement": [foreign()]});
    let once = add_principal(&start, &bucket(), ALICE, None);
    let twice = add_principal(&once, &bucket(), ALICE, None);
    assert_eq!(once, twice);
    let both = add_principal(&once, &bucket(), WORK, None);
    assert_eq!(
        statements(&both)[1]["Principal"]["AWS"],
        json!([ALICE, WORK])
    );
    assert_eq!(foreign_statements(&both), vec![foreign()]);
    assert_eq!(as_map(&both)["Id"], "mine");
}

#[test]
fn principal_as_string_and_statement_as_object_are_handled() {
    let doc = json!({"Statement": {"Sid": "KeywardMachines", "Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "s3:*", "Resource": "*"}});
    let added = add_principal(&doc, &bucket(), WORK, None);
    assert_eq!(
        statements(&added)[0]["Principal"]["AWS"],
        json!([ALICE, WORK])
    );
    assert!(contains_principal(&doc, ALICE));
    let removed = remove_principal(&doc, ALICE);
    assert!(
        is_empty(&removed),
        "the emptied keyward statement is dropped"
    );
}

#[test]
fn remove_touches_only_keyward_statements_and_is_idempotent() {
    // A foreign statement that happens to name the same ARN stays as it is.
    let foreign_with_alice = json!({"Sid": "Theirs", "Effect": "Allow", "Principal": {"AWS": [ALICE]}, "Action": "s3:GetObject", "Resource": "*"});
    let start = json!({"Statement": [foreign_with_alice.clone()]});
    let doc = add_principal(
        &add_principal(&start, &bucket(), ALICE, None),
        &bucket(),
        WORK,
        None,
    );
    let out = remove_principal(&doc, ALICE);
    assert_eq!(statements(&out)[0], &foreign_with_alice);
    assert_eq!(statements(&out)[1]["Principal"]["AWS"], json!([WORK]));
    assert!(!contains_principal(&out, ALICE));
    assert_eq!(remove_principal(&out, ALICE), out);
}

#[test]
fn enforcement_adds_the_two_deny_statements_and_follows_membership() {
    let doc = add_principal(&parse(None).unwrap(), &bucket(), ALICE, Some(&KEEP));
    let deny = statements(&doc)
        .into_iter()
        .find(|s| s["Sid"] == SID_DENY_UNENCRYPTED)
        .unwrap()
        .clone();
    assert_eq!(
        deny["Condition"]["StringNotEquals"]["s3:x-amz-server-side-encryption"],
        "aws:kms"
    );
    assert_eq!(deny["Effect"], "Deny");
    let others = statements(&doc)
        .into_iter()
        .find(|s| s["Sid"] == SID_DENY_OTHERS)
        .unwrap()
        .clone();
    assert_eq!(others["Principal"], "*");
    assert!(others.get("NotPrincipal").is_none());
    assert_eq!(condition_arns(&others), [ROOT, ADMIN, ALICE]);
    let doc = add_principal(&doc, &bucket(), WORK, Some(&KEEP));
    let others = statements(&doc)
        .into_iter()
        .find(|s| s["Sid"] == SID_DENY_OTHERS)
        .unwrap()
        .clone();
    assert_eq!(condition_arns(&others), [ROOT, ADMIN, ALICE, WORK]);
    let doc = remove_principal(&doc, ALICE);
    let others = statements(&doc)
        .into_iter()
        .find(|s| s["Sid"] == SID_DENY_OTHERS)
        .unwrap()
        .clone();
    assert_eq!(condition_arns(&others), [ROOT, ADMIN, WORK]);
}

#[test]
fn machine_statements_need_mfa() {
    for target in [bucket(), Target::KmsKey] {
        let doc = add_principal(&parse(None).unwrap(), &target, ALICE, None);
        assert_eq!(
            statements(&doc)[0]["Condition"]["Bool"]["aws:MultiFactorAuthPresent"],
            "true"
        );
    }
}

/// An account made by the earlier version: no MFA condition, `NotPrincipal`.
#[test]
fn statements_of_the_earlier_version_are_upgraded_and_foreign_ones_kept() {
    let old = json!({"Version": "2012-10-17", "Statement": [
        foreign(),
        {"Sid": "KeywardMachines", "Effect": "Allow", "Principal": {"AWS": [ALICE]}, "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::data/*"]},
        {"Sid": "KeywardDenyOthers", "Effect": "Deny", "NotPrincipal": {"AWS": [ROOT, ALICE, "arn:aws:iam::123456789012:user/ops"]}, "Action": "s3:*", "Resource": "arn:aws:s3:::data/*"}
    ]});
    assert!(!is_current(&old, &bucket(), &KEEP));
    let new = rebuild(&old, &bucket(), &machines(&old), Some(&KEEP));
    assert!(is_current(&new, &bucket(), &KEEP));
    assert_eq!(foreign_statements(&new), vec![foreign()]);
    let others = statements(&new)
        .into_iter()
        .find(|s| s["Sid"] == SID_DENY_OTHERS)
        .unwrap()
        .clone();
    assert_eq!(
        condition_arns(&others),
        [ROOT, ADMIN, ALICE, "arn:aws:iam::123456789012:user/ops"],
        "a principal someone added is kept"
    );
    assert_eq!(
        rebuild(&new, &bucket(), &machines(&new), Some(&KEEP)),
        new,
        "idempotent"
    );
}

#[test]
fn kms_statement_grants_key_use() {
    let doc = add_principal(
        &json!({"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}]}),
        &Target::KmsKey,
        ALICE,
        None,
    );
    let st = statements(&doc)[1].clone();
    assert!(st["Action"]
        .as_array()
        .unwrap()
        .contains(&json!("kms:Decrypt")));
    assert_eq!(
        statements(&doc)[0]["Principal"]["AWS"],
        ROOT,
        "the root statement keeps its string form"
    );
}

#[test]
fn invalid_json_and_non_policies_are_refused() {
    assert!(matches!(
        parse(Some("{not json")),
        Err(PolicyError::InvalidJson(_))
    ));
    assert_eq!(parse(Some("[1,2]")), Err(PolicyError::NotAPolicy));
    assert_eq!(
        parse(Some(r#"{"Statement": 3}"#)),
        Err(PolicyError::NotAPolicy)
    );
}

/// Untrusted input: thousands of mutated and oddly shaped policies never panic,
/// and whenever one parses, an edit keeps every foreign statement.
#[test]
fn random_and_hostile_policies_never_panic_and_keep_foreign_statements() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = to_text(&add_principal(
        &json!({"Version": "2012-10-17", "Statement": [foreign(), {"Sid": "Keyward", "Principal": {"AWS": [1, null, WORK]}}, 7, null, "x"]}),
        &bucket(),
        ALICE,
        Some(&KEEP),
    ));
    let shapes = [
        r#"{"Statement": {"Sid": "KeywardMachines", "Principal": "*"}}"#,
        r#"{"Statement": [{"Sid": "KeywardMachines", "Principal": {"AWS": 5}}]}"#,
        r#"{"Statement": [{"Sid": 5, "Principal": {"AWS": "x"}}, [], {}]}"#,
        r#"{"Statement": [{"Sid": "KeywardDenyOthers", "NotPrincipal": {"AWS": [null]}}]}"#,
        "{}",
        r#"{"Statement": null}"#,
    ];
    let mut inputs: Vec<String> = shapes.iter().map(|s| (*s).to_owned()).collect();
    for _ in 0..3000 {
        let mut bytes = base.clone().into_bytes();
        for _ in 0..=(next() % 4) {
            let i = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => {
                    let alphabet = b"{}[]\":,0aK\\ ";
                    bytes[i] = alphabet[(next() % alphabet.len() as u64) as usize];
                }
                1 => bytes.truncate(i),
                _ => {
                    bytes.remove(i);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut parsed = 0;
    for text in &inputs {
        let Ok(doc) = parse(Some(text)) else { continue };
        parsed += 1;
        for edited in [
            add_principal(&doc, &bucket(), ALICE, Some(&KEEP)),
            add_principal(&doc, &Target::KmsKey, WORK, None),
            remove_principal(&doc, ALICE),
        ] {
            assert_eq!(
                foreign_statements(&edited),
                foreign_statements(&doc),
                "{text}"
            );
            let _ = diff(&doc, &edited);
        }
        assert!(
            !contains_principal(&remove_principal(&doc, ALICE), ALICE),
            "{text}"
        );
    }
    assert!(parsed > 10, "some mutations still parse: {parsed}");
}

#[test]
fn diff_marks_added_lines() {
    let a = parse(None).unwrap();
    let b = add_principal(&a, &bucket(), ALICE, None);
    let d = diff(&a, &b);
    assert!(d.contains(&format!("+           \"{ALICE}\"")), "{d}");
    assert!(d.lines().any(|l| l.starts_with("  ")));
    assert!(diff(&b, &b).lines().all(|l| l.starts_with("  ")));
}

#[test]
fn diff_shows_hunks_with_three_lines_of_context() {
    let old = json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8, "i": 9});
    let mut new = old.clone();
    new["e"] = json!(50);
    assert_eq!(
        diff(&old, &new),
        "@@ -3,7 +3,7 @@\n    \"b\": 2,\n    \"c\": 3,\n    \"d\": 4,\n-   \"e\": 5,\n+   \"e\": 50,\n    \"f\": 6,\n    \"g\": 7,\n    \"h\": 8,\n"
    );
    assert_eq!(diff(&old, &old), "", "no change, no hunk");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A statement keyward does not own: any Sid but its own, any principal shape.
    fn foreign_statement() -> impl Strategy<Value = Value> {
        (
            "[A-Za-z][A-Za-z0-9]{0,12}",
            prop_oneof![
                Just(json!("*")),
                Just(json!({"AWS": ROOT})),
                Just(json!({"AWS": [ROOT, "arn:aws:iam::999999999999:root"]})),
                Just(json!({"Service": "cloudtrail.amazonaws.com"})),
            ],
            prop_oneof![Just("Allow"), Just("Deny")],
        )
            .prop_filter("not keyward's Sid", |(sid, _, _)| !sid.starts_with("Keyward"))
            .prop_map(|(sid, principal, effect)| {
                json!({"Sid": sid, "Effect": effect, "Principal": principal, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"})
            })
    }

    fn machine_arn() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,8}-[a-z0-9]{1,8}"
            .prop_map(|n| format!("arn:aws:iam::123456789012:user/keyward/{n}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Adding keeps every foreign statement, names the machine, and is idempotent;
        /// removing it again keeps the foreign statements too.
        #[test]
        fn edits_keep_foreign_statements_and_are_idempotent(
            foreign in proptest::collection::vec(foreign_statement(), 0..5),
            arns in proptest::collection::vec(machine_arn(), 1..5),
            enforce in any::<bool>(),
        ) {
            let start = json!({"Version": "2012-10-17", "Statement": foreign.clone()});
            let keep = enforce.then_some(&KEEP);
            let mut doc = start.clone();
            for a in &arns {
                doc = add_principal(&doc, &bucket(), a, keep);
            }
            prop_assert_eq!(foreign_statements(&doc), foreign.clone());
            for a in &arns {
                prop_assert!(contains_principal(&doc, a));
                prop_assert_eq!(&add_principal(&doc, &bucket(), a, keep), &doc);
            }
            let mut back = doc.clone();
            for a in &arns {
                back = remove_principal(&back, a);
                prop_assert!(!contains_principal(&back, a));
            }
            prop_assert_eq!(foreign_statements(&back), foreign);
            // The text round-trips through the parser.
            prop_assert_eq!(parse(Some(&to_text(&doc))).unwrap(), doc);
        }

        /// Whatever text arrives as a policy, parsing returns a result, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,200}") {
            let _ = parse(Some(&text));
        }
    }
}
