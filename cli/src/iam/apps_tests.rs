//! Pins the text of the app documents; their proof is `tests/e2e/apps.rs`.

use serde_json::json;

use super::*;
use crate::iam::policy::{foreign_statements, parse, remove_principal, without_owned};

fn arns() -> Arns {
    Arns::new("123456789012")
}

fn app() -> App {
    App {
        name: "billing".into(),
        buckets: vec!["billing-data".into()],
        key: "arn:aws:kms:us-east-1:123456789012:key/k1".into(),
        runtimes: vec![Runtime::Ec2],
    }
}

fn keep<'a>(root: &'a str, admin: &'a str) -> Keepers<'a> {
    Keepers {
        account_root: root,
        admin_role: admin,
    }
}

#[test]
fn names_that_break_iam_s3_or_kms_are_refused() {
    for bad in [
        "",
        "Billing",
        "bill_ing",
        "-billing",
        "billing-",
        "bill--ing",
        "a/b",
        &"x".repeat(41),
    ] {
        assert!(check_name(bad).is_err(), "{bad}");
    }
    assert!(check_name("billing-2").is_ok());
    for bad in ["ab", "Billing", "-data", "data-", "da..ta", "da_ta"] {
        assert!(check_bucket_name(bad).is_err(), "{bad}");
    }
    assert!(check_bucket_name("billing-data").is_ok());
}

#[test]
fn every_group_statement_needs_mfa_and_the_role_is_assumed_naming_itself() {
    let doc = group_policy(&arns(), &app());
    for st in doc["Statement"].as_array().unwrap() {
        assert_eq!(
            st["Condition"]["Bool"]["aws:MultiFactorAuthPresent"], "true",
            "{st}"
        );
    }
    let assume = &doc["Statement"][3];
    assert_eq!(
        assume["Resource"],
        "arn:aws:iam::123456789012:role/keyward/app-billing"
    );
    assert_eq!(
        assume["Condition"]["StringEquals"]["sts:SourceIdentity"],
        "${aws:username}"
    );
}

#[test]
fn the_trust_names_the_runtime_and_only_machine_users_with_mfa() {
    let t = role_trust(&arns(), &app(), &["alice-laptop".to_owned()]);
    assert_eq!(
        t["Statement"][0]["Principal"]["Service"],
        json!(["ec2.amazonaws.com"])
    );
    let dev = &t["Statement"][1];
    assert_eq!(
        dev["Condition"]["ArnEquals"]["aws:PrincipalArn"],
        json!(["arn:aws:iam::123456789012:user/keyward/alice-laptop"])
    );
    assert_eq!(trust_members(&t), vec!["alice-laptop".to_owned()]);
    let nobody = role_trust(
        &arns(),
        &App {
            runtimes: vec![],
            ..app()
        },
        &[],
    );
    assert_eq!(nobody["Statement"][0]["Effect"], "Deny");
    assert_eq!(trust_runtimes(&t), vec![Runtime::Ec2]);
    assert_eq!(
        policy_data(&role_policy(&app())),
        (app().buckets, Some(app().key))
    );
}

#[test]
fn a_bucket_edit_keeps_foreign_statements_pins_the_key_and_is_idempotent() {
    let foreign = json!({"Sid": "PartnerRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::billing-data/*"});
    let doc = parse(Some(
        &json!({"Version": "2012-10-17", "Statement": [foreign]}).to_string(),
    ))
    .unwrap();
    let (root, admin) = (arns().root(), arns().role("keyward-admin"));
    let role = arns().role("app-billing");
    let alice = arns().user("alice-laptop");
    let once = bucket_doc(
        &doc,
        "billing-data",
        &keep(&root, &admin),
        &["arn:aws:iam::123456789012:user/ops/admin".to_owned()],
        &role,
        &app().key,
        std::slice::from_ref(&alice),
    );
    let twice = bucket_doc(
        &once,
        "billing-data",
        &keep(&root, &admin),
        &["arn:aws:iam::123456789012:user/ops/admin".to_owned()],
        &role,
        &app().key,
        std::slice::from_ref(&alice),
    );
    assert_eq!(once, twice);
    assert_eq!(foreign_statements(&once), foreign_statements(&doc));
    let text = once.to_string();
    assert!(
        text.contains("s3:x-amz-server-side-encryption-aws-kms-key-id")
            && !text.contains("NotPrincipal")
    );
    assert_eq!(bucket_app(&once, &arns()), Some("billing".into()));
    let out = remove_principal(&once, &alice);
    assert!(!out.to_string().contains("alice-laptop"));
    assert!(
        out.to_string().contains(&role),
        "the role stays whitelisted"
    );
    assert_eq!(without_owned(&once), doc);
    let edits = once["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == SID_DENY_POLICY_EDITS)
        .unwrap();
    let editors = edits["Condition"]["ArnNotLike"]["aws:PrincipalArn"].to_string();
    assert!(
        editors.contains("user/ops/admin")
            && !editors.contains("alice-laptop")
            && !editors.contains("app-billing"),
        "{editors}"
    );
}

#[test]
fn the_key_policy_keeps_the_root_and_names_the_role_and_members() {
    let role = arns().role("app-billing");
    let keepers = [arns().root(), arns().role("keyward-admin")];
    let doc = key_doc(
        &new_key_policy(&arns()),
        &keepers,
        &role,
        &[arns().user("alice-laptop")],
    );
    assert_eq!(doc["Statement"][0]["Sid"], SID_ACCOUNT_ROOT);
    assert_eq!(key_doc(&doc, &keepers, &role, &[]), doc);
    let denied = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "KeywardDenyOthers")
        .unwrap();
    assert_eq!(
        denied["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let gone = remove_principal(&doc, &arns().user("alice-laptop"));
    assert!(!gone.to_string().contains("alice-laptop"));
    assert_eq!(without_owned(&doc), new_key_policy(&arns()));
}
