use serde_json::json;

use super::*;

const ROOT: &str = "arn:aws:iam::123456789012:root";
const LAPTOP: &str = "arn:aws:iam::123456789012:user/keyward/alice-laptop";
const BOB: &str = "arn:aws:iam::123456789012:user/keyward/bob-laptop";

fn user(policies: Vec<Value>) -> Identity {
    Identity {
        kind: Kind::User,
        arn: LAPTOP.into(),
        session_arn: None,
        account_root: ROOT.into(),
        policies,
        boundary: None,
        session_policy: None,
        context: Context::new()
            .with_string("aws:username", "alice-laptop")
            .with_string("aws:PrincipalArn", LAPTOP)
            .with_string("aws:PrincipalTag/keyward-owner", "alice")
            .with_boolean("aws:MultiFactorAuthPresent", true),
    }
}

fn check(action: &str, resource: &str, rp: ResourcePolicy) -> Check {
    Check {
        action: action.into(),
        resource: resource.into(),
        context: Vec::new(),
        resource_policy: rp,
    }
}

fn allow(action: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})
}

#[test]
fn explicit_deny_in_identity_beats_a_resource_policy_allow() {
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]});
    let bucket = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": LAPTOP}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
    let v = decide(
        &user(vec![deny]),
        &check(
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            ResourcePolicy::Plain(bucket.clone()),
        ),
    );
    assert!(!v.allowed);
    assert!(
        v.reason
            .contains("explicit deny in an identity-based policy"),
        "{}",
        v.reason
    );
    // Without the deny, the bucket policy naming the user is enough on its own.
    let v = decide(
        &user(vec![]),
        &check(
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            ResourcePolicy::Plain(bucket),
        ),
    );
    assert!(v.allowed, "{}", v.reason);
}

#[test]
fn a_bucket_policy_naming_the_account_needs_an_identity_allow() {
    let bucket = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
    let c = check(
        "s3:GetObject",
        "arn:aws:s3:::b/k",
        ResourcePolicy::Plain(bucket),
    );
    assert!(!decide(&user(vec![]), &c).allowed);
    assert!(decide(&user(vec![allow("s3:GetObject", "*")]), &c).allowed);
}

#[test]
fn trust_naming_the_account_needs_identity_but_naming_the_user_does_not() {
    let role = "arn:aws:iam::123456789012:role/keyward/keyward-admin";
    let to_account = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}]});
    let c = check("sts:AssumeRole", role, ResourcePolicy::Trust(to_account));
    let v = decide(&user(vec![]), &c);
    assert!(
        !v.allowed && v.reason.contains("no identity-based policy"),
        "{}",
        v.reason
    );
    assert!(decide(&user(vec![allow("sts:AssumeRole", role)]), &c).allowed);
    let to_me = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": LAPTOP}, "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]});
    assert!(
        decide(
            &user(vec![]),
            &check("sts:AssumeRole", role, ResourcePolicy::Trust(to_me.clone()))
        )
        .allowed
    );
    let mut no_mfa = user(vec![]);
    no_mfa.context.insert(
        "aws:MultiFactorAuthPresent".into(),
        ContextValue::Boolean(false),
    );
    assert!(
        !decide(
            &no_mfa,
            &check("sts:AssumeRole", role, ResourcePolicy::Trust(to_me))
        )
        .allowed
    );
    let other = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "sts:AssumeRole"}]});
    assert!(
        !decide(
            &user(vec![allow("*", "*")]),
            &check("sts:AssumeRole", role, ResourcePolicy::Trust(other))
        )
        .allowed
    );
}

#[test]
fn a_key_policy_without_the_account_statement_ignores_iam() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/k1";
    let only_bob = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:*", "Resource": "*"}]});
    let v = decide(
        &user(vec![allow("kms:*", "*")]),
        &check("kms:Decrypt", key, ResourcePolicy::Key(only_bob)),
    );
    assert!(
        !v.allowed && v.reason.contains("key policy"),
        "{}",
        v.reason
    );
    let delegating = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}]});
    assert!(
        decide(
            &user(vec![allow("kms:*", "*")]),
            &check("kms:Decrypt", key, ResourcePolicy::Key(delegating.clone()))
        )
        .allowed
    );
    assert!(
        !decide(
            &user(vec![]),
            &check("kms:Decrypt", key, ResourcePolicy::Key(delegating))
        )
        .allowed
    );
}

#[test]
fn boundary_and_session_policy_cap_identity_rights() {
    let mut role = user(vec![allow("s3:*", "*")]);
    role.kind = Kind::Role;
    role.boundary = Some(allow("s3:GetObject", "*"));
    assert!(
        decide(
            &role,
            &check("s3:GetObject", "arn:aws:s3:::b/k", ResourcePolicy::None)
        )
        .allowed
    );
    let v = decide(
        &role,
        &check("s3:PutObject", "arn:aws:s3:::b/k", ResourcePolicy::None),
    );
    assert!(!v.allowed && v.reason.contains("boundary"), "{}", v.reason);
    role.boundary = None;
    role.session_policy = Some(allow("s3:ListBucket", "*"));
    let v = decide(
        &role,
        &check("s3:GetObject", "arn:aws:s3:::b/k", ResourcePolicy::None),
    );
    assert!(
        !v.allowed && v.reason.contains("session policy"),
        "{}",
        v.reason
    );
}

/// Policy variables in Condition values, both ways: the same owner is allowed, another is not.
#[test]
fn condition_variables_are_substituted_both_ways() {
    let same_owner = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:DeleteAccessKey", "Resource": "*",
        "Condition": {"StringEquals": {"iam:ResourceTag/keyward-owner": "${aws:PrincipalTag/keyward-owner}"}}}]});
    let id = user(vec![same_owner]);
    let mut c = check(
        "iam:DeleteAccessKey",
        "arn:aws:iam::123456789012:user/keyward/alice-work",
        ResourcePolicy::None,
    );
    c.context.push((
        "iam:ResourceTag/keyward-owner".into(),
        ContextValue::String("alice".into()),
    ));
    assert!(decide(&id, &c).allowed);
    let mut c = check("iam:DeleteAccessKey", BOB, ResourcePolicy::None);
    c.context.push((
        "iam:ResourceTag/keyward-owner".into(),
        ContextValue::String("bob".into()),
    ));
    assert!(!decide(&id, &c).allowed);
}

#[test]
fn a_missing_variable_matches_no_string_but_negations_match() {
    let ctx = Context::new();
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/x": "${aws:PrincipalTag/missing}"}, "StringNotEquals": {"a": "${aws:username}"}}}]});
    let p = prepare(&doc, &ctx);
    assert_eq!(
        p["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalTag/x"],
        UNRESOLVED
    );
    assert_eq!(substitute("${aws:username, 'nobody'}", &ctx), "nobody");
    assert_eq!(substitute("a${*}b${?}${$}", &ctx), "a*b?$");
    // Numeric, date and Bool operators take no variables.
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "${x}"}}}]});
    assert_eq!(
        prepare(&doc, &ctx)["Statement"][0]["Condition"]["NumericLessThan"]
            ["aws:MultiFactorAuthAge"],
        "${x}"
    );
}

#[test]
fn a_2008_policy_keeps_variables_literal_and_still_parses() {
    let doc = json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::${aws:username}"}});
    let p = prepare(&doc, &Context::new().with_string("aws:username", "x"));
    assert_eq!(p["Version"], "2008-10-17");
    assert_eq!(p["Statement"]["Resource"], "arn:aws:s3:::${aws:username}");
}

#[test]
fn unscoped_actions_match_only_star_resources() {
    let id = user(vec![allow(
        "iam:ListUsers",
        "arn:aws:iam::123456789012:user/keyward/*",
    )]);
    assert!(
        !decide(
            &id,
            &check(
                "iam:ListUsers",
                "arn:aws:iam::123456789012:*",
                ResourcePolicy::None
            )
        )
        .allowed
    );
    let id = user(vec![allow("iam:ListUsers", "*")]);
    assert!(
        decide(
            &id,
            &check(
                "iam:ListUsers",
                "arn:aws:iam::123456789012:*",
                ResourcePolicy::None
            )
        )
        .allowed
    );
}

#[test]
fn a_resource_deny_naming_the_account_applies_to_its_users() {
    let bucket = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": ROOT}, "Action": "s3:*", "Resource": "*"}]});
    assert!(
        !decide(
            &user(vec![allow("s3:*", "*")]),
            &check(
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                ResourcePolicy::Plain(bucket)
            )
        )
        .allowed
    );
}
