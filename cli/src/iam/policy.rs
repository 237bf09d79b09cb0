//! Pure editing of S3 bucket policies and KMS key policies.
//!
//! keyward owns only statements whose `Sid` starts with `Keyward`, and only adds or
//! removes principal ARNs there. Every other statement is kept exactly as it was.
//! `Statement` as an object or a list and `Principal` as a string, an object with a
//! string, or an object with a list are all handled.

#[cfg(test)]
use serde_json::Map;
use serde_json::{json, Value};

pub const OWNED_PREFIX: &str = "Keyward";
pub const SID_MACHINES: &str = "KeywardMachines";
pub const SID_DENY_UNENCRYPTED: &str = "KeywardDenyUnencryptedUploads";
pub const SID_DENY_OTHERS: &str = "KeywardDenyOthers";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("the policy is not valid JSON ({0}); fix it by hand before keyward edits it")]
    InvalidJson(String),
    #[error("the policy is not a JSON object with a Statement list; fix it by hand before keyward edits it")]
    NotAPolicy,
}

/// What a policy protects, which decides the statements keyward writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Bucket(String),
    KmsKey,
}

/// Parses a policy; `None` (no policy yet) is an empty one.
pub fn parse(text: Option<&str>) -> Result<Value, PolicyError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(json!({"Version": "2012-10-17", "Statement": []}));
    };
    let doc: Value =
        serde_json::from_str(text).map_err(|e| PolicyError::InvalidJson(e.to_string()))?;
    let obj = doc.as_object().ok_or(PolicyError::NotAPolicy)?;
    match obj.get("Statement") {
        Some(Value::Array(_) | Value::Object(_)) | None => Ok(doc),
        Some(_) => Err(PolicyError::NotAPolicy),
    }
}

/// The statements as a list (a single object becomes a one-element list).
fn statements_mut(doc: &mut Value) -> &mut Vec<Value> {
    let obj = doc.as_object_mut().expect("parse checked it is an object");
    let st = obj
        .entry("Statement")
        .or_insert_with(|| Value::Array(Vec::new()));
    if st.is_object() {
        let one = st.take();
        *st = Value::Array(vec![one]);
    }
    st.as_array_mut().expect("made a list")
}

pub fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    }
}

fn sid(st: &Value) -> &str {
    st.get("Sid").and_then(Value::as_str).unwrap_or("")
}

fn is_owned(st: &Value) -> bool {
    sid(st).starts_with(OWNED_PREFIX)
}

/// The ARNs under `Principal.AWS` (or `NotPrincipal.AWS`), whatever their shape.
fn aws_principals(st: &Value, field: &str) -> Vec<String> {
    match st.get(field).and_then(|p| p.get("AWS")) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn set_aws_principals(st: &mut Value, field: &str, arns: &[String]) {
    let list = Value::Array(arns.iter().cloned().map(Value::String).collect());
    let obj = st.as_object_mut().expect("statement is an object");
    obj.insert(field.to_owned(), json!({ "AWS": list }));
}

fn machines_statement(target: &Target, arns: &[String]) -> Value {
    // Property 1: a statement naming a machine never works with its key alone.
    let mfa = json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}});
    match target {
        Target::Bucket(b) => json!({
            "Sid": SID_MACHINES,
            "Effect": "Allow",
            "Principal": {"AWS": arns},
            "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [format!("arn:aws:s3:::{b}"), format!("arn:aws:s3:::{b}/*")],
            "Condition": mfa
        }),
        Target::KmsKey => json!({
            "Sid": SID_MACHINES,
            "Effect": "Allow",
            "Principal": {"AWS": arns},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": mfa
        }),
    }
}

/// Who keeps access to an enforced bucket: the account root, the admin role, and the
/// machines; written with `aws:PrincipalArn`, not `NotPrincipal` (which AWS
/// discourages, and which denies role sessions by surprise).
pub struct Keepers<'a> {
    pub account_root: &'a str,
    pub admin_role: &'a str,
}

/// The article's two protective statements for a bucket: uploads must use aws:kms, and
/// everyone but the keepers and the machines is denied (policy management excepted,
/// so that an admin can never lock itself out).
fn enforcement_statements(bucket: &str, keep: &Keepers, arns: &[String]) -> [Value; 2] {
    let mut allowed = vec![keep.account_root.to_owned(), keep.admin_role.to_owned()];
    allowed.extend(arns.iter().cloned());
    [
        json!({
            "Sid": SID_DENY_UNENCRYPTED,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}
        }),
        json!({
            "Sid": SID_DENY_OTHERS,
            "Effect": "Deny",
            "Principal": "*",
            "NotAction": ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"],
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": allowed}}
        }),
    ]
}

/// The ARNs a deny-others statement keeps, whatever its shape (old: `NotPrincipal`).
fn kept_arns(st: &Value) -> Vec<String> {
    let mut out = aws_principals(st, "NotPrincipal");
    out.extend(condition_arns(st));
    out
}

fn condition_arns(st: &Value) -> Vec<String> {
    match st.pointer("/Condition/ArnNotLike/aws:PrincipalArn") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn set_condition_arns(st: &mut Value, arns: &[String]) {
    if let Some(v) = st.pointer_mut("/Condition/ArnNotLike/aws:PrincipalArn") {
        *v = Value::Array(arns.iter().cloned().map(Value::String).collect());
    }
}

/// The machines keyward's statement names.
pub fn machines(doc: &Value) -> Vec<String> {
    statements(doc)
        .into_iter()
        .find(|s| sid(s) == SID_MACHINES)
        .map(|s| aws_principals(s, "Principal"))
        .unwrap_or_default()
}

/// Adds `arn` to keyward's statement (creating it if needed). Idempotent.
/// With `enforce` (buckets only), also keeps the two protective deny statements,
/// listing every machine keyward manages here.
pub fn add_principal(doc: &Value, target: &Target, arn: &str, enforce: Option<&Keepers>) -> Value {
    let mut arns = machines(doc);
    if !arns.iter().any(|a| a == arn) {
        arns.push(arn.to_owned());
    }
    rebuild(doc, target, &arns, enforce)
}

/// Rewrites keyward's statements in the current shape for these machines: the MFA
/// condition, and (with `enforce`, or when they are there already) the deny statements.
/// Foreign statements are kept exactly; principals someone else added to the
/// deny-others list are kept too.
pub fn rebuild(doc: &Value, target: &Target, arns: &[String], enforce: Option<&Keepers>) -> Value {
    let mut out = doc.clone();
    let sts = statements_mut(&mut out);
    let existing_others = sts
        .iter()
        .find(|s| sid(s) == SID_DENY_OTHERS)
        .map(kept_arns);
    if arns.is_empty() {
        sts.retain(|s| sid(s) != SID_MACHINES);
    } else {
        upsert(sts, machines_statement(target, arns));
    }
    let (Target::Bucket(bucket), Some(keep)) = (target, enforce) else {
        return out;
    };
    let [deny_unencrypted, mut deny_others] = enforcement_statements(bucket, keep, arns);
    upsert(sts, deny_unencrypted);
    let mut allowed = condition_arns(&deny_others);
    for a in existing_others.unwrap_or_default() {
        if !allowed.contains(&a) && !a.contains(":user/keyward/") {
            allowed.push(a);
        }
    }
    set_condition_arns(&mut deny_others, &allowed);
    upsert(sts, deny_others);
    out
}

/// Whether the policy carries keyward's enforcement statements.
pub fn is_enforced(doc: &Value) -> bool {
    statements(doc).iter().any(|s| sid(s) == SID_DENY_OTHERS)
}

/// Whether keyward's statements are in the current shape (for `init`'s upgrade).
pub fn is_current(doc: &Value, target: &Target, keep: &Keepers) -> bool {
    let enforce = is_enforced(doc).then_some(keep);
    rebuild(doc, target, &machines(doc), enforce) == *doc
}

fn upsert(sts: &mut Vec<Value>, st: Value) {
    let id = sid(&st).to_owned();
    match sts.iter_mut().find(|s| sid(s) == id) {
        Some(existing) => *existing = st,
        None => sts.push(st),
    }
}

/// Adds or replaces a statement by its `Sid`.
pub fn upsert_statement(doc: &mut Value, st: Value) {
    upsert(statements_mut(doc), st);
}

/// Adds `arn` to the deny-others statement's kept principals, if the statement is there.
pub fn keep_in_deny_others(doc: &mut Value, arn: &str) {
    let sts = statements_mut(doc);
    if let Some(st) = sts.iter_mut().find(|s| sid(s) == SID_DENY_OTHERS) {
        let mut kept = condition_arns(st);
        if !kept.iter().any(|a| a == arn) {
            kept.push(arn.to_owned());
            set_condition_arns(st, &kept);
        }
    }
}

/// The policy without any keyward statement; foreign statements stay as they were.
pub fn without_owned(doc: &Value) -> Value {
    let mut out = doc.clone();
    statements_mut(&mut out).retain(|s| !is_owned(s));
    out
}

/// Removes `arn` from every keyward statement; a keyward statement left with no
/// principal is dropped. Foreign statements are never touched. Idempotent.
pub fn remove_principal(doc: &Value, arn: &str) -> Value {
    let mut out = doc.clone();
    let sts = statements_mut(&mut out);
    let mut keep = Vec::with_capacity(sts.len());
    for mut st in sts.drain(..) {
        if !is_owned(&st) {
            keep.push(st);
            continue;
        }
        let mut drop_it = false;
        let in_condition = condition_arns(&st);
        if in_condition.iter().any(|a| a == arn) {
            let rest: Vec<String> = in_condition.into_iter().filter(|a| a != arn).collect();
            set_condition_arns(&mut st, &rest);
        }
        for field in ["Principal", "NotPrincipal"] {
            let arns = aws_principals(&st, field);
            if arns.iter().any(|a| a == arn) {
                let rest: Vec<String> = arns.into_iter().filter(|a| a != arn).collect();
                if rest.is_empty() {
                    drop_it = true;
                } else {
                    set_aws_principals(&mut st, field, &rest);
                }
            }
        }
        if !drop_it {
            keep.push(st);
        }
    }
    *sts = keep;
    out
}

/// Whether `arn` appears in any keyward statement.
pub fn contains_principal(doc: &Value, arn: &str) -> bool {
    statements(doc)
        .into_iter()
        .filter(|s| is_owned(s))
        .any(|s| {
            aws_principals(s, "Principal").iter().any(|a| a == arn)
                || aws_principals(s, "NotPrincipal").iter().any(|a| a == arn)
                || condition_arns(s).iter().any(|a| a == arn)
        })
}

/// True when nothing is left (a bucket policy must then be deleted, not written empty).
pub fn is_empty(doc: &Value) -> bool {
    statements(doc).is_empty()
}

/// The foreign statements, for checking that an edit kept them.
pub fn foreign_statements(doc: &Value) -> Vec<Value> {
    statements(doc)
        .into_iter()
        .filter(|s| !is_owned(s))
        .cloned()
        .collect()
}

pub fn to_text(doc: &Value) -> String {
    serde_json::to_string_pretty(doc).expect("JSON values serialize")
}

/// A unified diff of the pretty-printed documents: hunks (`@@ -a,b +c,d @@`) with
/// three lines of context, each line marked `+ `, `- ` or two spaces.
pub fn diff(old: &Value, new: &Value) -> String {
    use std::fmt::Write as _;
    let (old, new) = (to_text(old), to_text(new));
    let lines = similar::TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    for hunk in lines.grouped_ops(3) {
        let _ = writeln!(out, "{}", similar::udiff::UnifiedHunkHeader::new(&hunk));
        for change in hunk.iter().flat_map(|op| lines.iter_changes(op)) {
            let mark = match change.tag() {
                similar::ChangeTag::Delete => "- ",
                similar::ChangeTag::Insert => "+ ",
                similar::ChangeTag::Equal => "  ",
            };
            let text = change.value();
            let _ = writeln!(out, "{mark}{}", text.strip_suffix('\n').unwrap_or(text));
        }
    }
    out
}

/// Drops the `Version`/`Id` noise and returns a map for equality checks in tests.
#[cfg(test)]
fn as_map(v: &Value) -> &Map<String, Value> {
    v.as_object().unwrap()
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
