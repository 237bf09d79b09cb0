use std::collections::HashMap;

use super::*;
use crate::authz::account::User;

fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn call<'a>(
    service: &'a str,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    f: &'a HashMap<String, String>,
    h: &'a hyper::HeaderMap,
) -> Call<'a> {
    Call {
        service,
        method,
        path,
        query,
        fields: f,
        headers: h,
        json: None,
        caller_user: Some("alice-laptop"),
    }
}

fn account() -> Account {
    let mut a = Account::default();
    a.users.insert(
        "alice-work".into(),
        User {
            name: "alice-work".into(),
            path: "/keyward/".into(),
            arn: "arn:aws:iam::123456789012:user/keyward/alice-work".into(),
            tags: [("keyward-owner".to_owned(), "alice".to_owned())]
                .into_iter()
                .collect(),
            ..User::default()
        },
    );
    a
}

fn ctx<'a>(n: &'a Need, key: &str) -> Option<&'a ContextValue> {
    n.context.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn iam_user_calls_name_the_user_and_carry_its_tags() {
    let h = hyper::HeaderMap::new();
    let f = fields(&[
        ("Action", "AttachUserPolicy"),
        ("UserName", "alice-work"),
        (
            "PolicyArn",
            "arn:aws:iam::123456789012:policy/keyward/keyward-deny-all",
        ),
    ]);
    let n = needs(&call("iam", "POST", "/", "", &f, &h), &account());
    assert_eq!(n[0].action, "iam:AttachUserPolicy");
    assert_eq!(
        n[0].resource,
        "arn:aws:iam::123456789012:user/keyward/alice-work"
    );
    assert_eq!(
        ctx(&n[0], "iam:ResourceTag/keyward-owner"),
        Some(&s("alice"))
    );
    assert_eq!(
        ctx(&n[0], "iam:PolicyARN"),
        Some(&s(
            "arn:aws:iam::123456789012:policy/keyward/keyward-deny-all"
        ))
    );
}

#[test]
fn a_new_user_gets_its_path_and_create_with_tags_also_needs_tag_user() {
    let h = hyper::HeaderMap::new();
    let f = fields(&[
        ("Action", "CreateUser"),
        ("UserName", "alice-new"),
        ("Path", "/keyward/"),
        ("Tags.member.1.Key", "keyward-owner"),
        ("Tags.member.1.Value", "alice"),
        ("Tags.member.2.Key", "keyward-machine"),
        ("Tags.member.2.Value", "new"),
    ]);
    let n = needs(&call("iam", "POST", "/", "", &f, &h), &account());
    assert_eq!(
        n[0].resource,
        "arn:aws:iam::123456789012:user/keyward/alice-new"
    );
    assert_eq!(
        ctx(&n[0], "aws:RequestTag/keyward-owner"),
        Some(&s("alice"))
    );
    assert_eq!(
        ctx(&n[0], "aws:TagKeys"),
        Some(&ContextValue::StringList(vec![
            "keyward-owner".into(),
            "keyward-machine".into()
        ]))
    );
    assert_eq!(n[1].action, "iam:TagUser");
}

#[test]
fn calls_without_a_user_name_act_on_the_caller() {
    let h = hyper::HeaderMap::new();
    let f = fields(&[("Action", "CreateAccessKey")]);
    let n = needs(&call("iam", "POST", "/", "", &f, &h), &account());
    assert_eq!(
        n[0].resource, "arn:aws:iam::123456789012:user/alice-laptop",
        "unknown to the snapshot: path /"
    );
    let f = fields(&[
        ("Action", "UntagUser"),
        ("UserName", "alice-work"),
        ("TagKeys.member.1", "keyward-owner"),
    ]);
    let n = needs(&call("iam", "POST", "/", "", &f, &h), &account());
    assert_eq!(
        ctx(&n[0], "aws:TagKeys"),
        Some(&ContextValue::StringList(vec!["keyward-owner".into()]))
    );
    let f = fields(&[("Action", "ListUsers")]);
    assert_eq!(
        needs(&call("iam", "POST", "/", "", &f, &h), &account())[0].resource,
        "arn:aws:iam::123456789012:*"
    );
}

#[test]
fn assume_role_with_tags_needs_tag_session_against_the_trust_policy() {
    let mut a = account();
    a.roles.insert(
        "keyward-enroller".into(),
        crate::authz::account::Role {
            name: "keyward-enroller".into(),
            arn: "arn:aws:iam::123456789012:role/keyward/keyward-enroller".into(),
            ..Default::default()
        },
    );
    let h = hyper::HeaderMap::new();
    let f = fields(&[
        ("Action", "AssumeRole"),
        (
            "RoleArn",
            "arn:aws:iam::123456789012:role/keyward/keyward-enroller",
        ),
        ("RoleSessionName", "x"),
        ("Tags.member.1.Key", "keyward-machine"),
        ("Tags.member.1.Value", "work"),
    ]);
    let n = needs(&call("sts", "POST", "/", "", &f, &h), &a);
    assert_eq!(n.len(), 2);
    assert_eq!(n[0].policy, PolicyRef::Trust("keyward-enroller".into()));
    assert_eq!(n[1].action, "sts:TagSession");
    assert_eq!(
        ctx(&n[1], "aws:RequestTag/keyward-machine"),
        Some(&s("work"))
    );
}

#[test]
fn s3_requests_map_to_their_actions() {
    let f = HashMap::new();
    let h = hyper::HeaderMap::new();
    let op = |m: &str, p: &str, q: &str| s3_operation(&call("s3", m, p, q, &f, &h)).0;
    assert_eq!(op("GET", "/b", "policy"), "s3:GetBucketPolicy");
    assert_eq!(op("PUT", "/b", "policy"), "s3:PutBucketPolicy");
    assert_eq!(op("DELETE", "/b", "policy"), "s3:DeleteBucketPolicy");
    assert_eq!(op("GET", "/b", "list-type=2&prefix=a"), "s3:ListBucket");
    assert_eq!(op("HEAD", "/b", ""), "s3:ListBucket");
    assert_eq!(op("PUT", "/b", ""), "s3:CreateBucket");
    assert_eq!(op("PUT", "/b/dir/k.txt", ""), "s3:PutObject");
    assert_eq!(op("HEAD", "/b/k", ""), "s3:GetObject");
    assert_eq!(op("GET", "/b", "acl"), "s3:GetBucketAcl");
    assert_eq!(
        op("GET", "/b", "publicAccessBlock"),
        "s3:GetBucketPublicAccessBlock"
    );
    assert_eq!(op("GET", "/", ""), "s3:ListAllMyBuckets");
}

#[test]
fn sse_kms_uploads_also_need_the_key() {
    let f = HashMap::new();
    let mut h = hyper::HeaderMap::new();
    h.insert("x-amz-server-side-encryption", "aws:kms".parse().unwrap());
    h.insert(
        "x-amz-server-side-encryption-aws-kms-key-id",
        "arn:aws:kms:us-east-1:123456789012:key/k".parse().unwrap(),
    );
    let n = needs(&call("s3", "PUT", "/b/k", "", &f, &h), &account());
    assert_eq!(n[0].policy, PolicyRef::Bucket("b".into()));
    assert_eq!(
        ctx(&n[0], "s3:x-amz-server-side-encryption"),
        Some(&s("aws:kms"))
    );
    assert_eq!(n[1].action, "kms:GenerateDataKey");
    assert_eq!(
        n[1].policy,
        PolicyRef::Key("arn:aws:kms:us-east-1:123456789012:key/k".into())
    );
}
