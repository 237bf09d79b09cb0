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

/// A unified-style line diff of the pretty-printed documents.
pub fn diff(old: &Value, new: &Value) -> String {
    let (old, new) = (to_text(old), to_text(new));
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    line_diff(&a, &b)
}

fn line_diff(before: &[&str], after: &[&str]) -> String {
    use std::fmt::Write as _;
    // Longest common subsequence; policies are small.
    let (rows, cols) = (before.len(), after.len());
    let mut lcs = vec![vec![0u32; cols + 1]; rows + 1];
    for i in (0..rows).rev() {
        for j in (0..cols).rev() {
            lcs[i][j] = if before[i] == after[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < rows || j < cols {
        if i < rows && j < cols && before[i] == after[j] {
            let _ = writeln!(out, "  {}", before[i]);
            i += 1;
            j += 1;
        } else if j < cols && (i == rows || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "+ {}", after[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "- {}", before[i]);
            i += 1;
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
mod tests {
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
}
