//! An application's documents (the article's "Adding an application" checklist): a
//! group `app-NAME` for the computers that develop it, a role `app-NAME` for where it
//! runs, a KMS key `alias/app-NAME`, and the article's protections on its buckets.
//!
//! - Group and role get the same data rights: the app's objects and its key. The
//!   group's statements also need MFA (property 1), and let members assume the role.
//! - The role trusts the chosen services, and this account's machine users with MFA
//!   naming themselves (`SourceIdentity`); IAM then asks the group policy, so group
//!   membership is the one whitelist for the role (property 5). Its boundary is the
//!   role guard, so revocation reaches its sessions (property 7).
//! - The key policy keeps the account root statement (the key can never be locked
//!   out) and names the role and each member one by one: key policies cannot name
//!   groups.
//! - Each bucket denies uploads not encrypted with this very key, and everyone
//!   outside the whitelist, by `aws:PrincipalArn` (not `NotPrincipal`).
//!
//! The proof is `tests/e2e/apps.rs` under the enforcing emulator.

use serde::Serialize;
use serde_json::{json, Value};

use super::documents::{strings, Arns};
use super::policy::{self, Keepers, Target, SID_DENY_OTHERS};

pub const PREFIX: &str = "app-";
/// The inline policy on the app's group and role.
pub const POLICY: &str = "keyward-app";
/// On the role (and a key keyward created): the app's name.
pub const TAG_APP: &str = "keyward-app";
pub const SID_APP_ROLE: &str = "KeywardAppRole";
pub const SID_DENY_OTHER_KEYS: &str = "KeywardDenyOtherKeys";
pub const SID_DENY_POLICY_EDITS: &str = "KeywardDenyPolicyEdits";
const SID_DEVELOPERS: &str = "DevelopersWithMfa";
/// Not `Keyward…`: keyward never edits or removes it.
pub const SID_ACCOUNT_ROOT: &str = "AccountRootKeepsTheKey";
/// Where a new key's ARN goes in a dry run, before the key exists.
pub const NEW_KEY: &str = "arn:aws:kms:<region>:<account>:key/<the new key>";

const DATA_BUCKET_ACTIONS: [&str; 2] = ["s3:ListBucket", "s3:GetBucketLocation"];
const DATA_OBJECT_ACTIONS: [&str; 3] = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"];
const KEY_ACTIONS: [&str; 5] = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
];

/// Where an app runs: the service its role trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Ec2,
    Lambda,
    Ecs,
}

impl Runtime {
    pub fn service(self) -> &'static str {
        match self {
            Runtime::Ec2 => "ec2.amazonaws.com",
            Runtime::Lambda => "lambda.amazonaws.com",
            Runtime::Ecs => "ecs-tasks.amazonaws.com",
        }
    }

    fn from_service(s: &str) -> Option<Self> {
        [Runtime::Ec2, Runtime::Lambda, Runtime::Ecs]
            .into_iter()
            .find(|r| r.service() == s)
    }
}

/// One application, as keyward writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    pub name: String,
    pub buckets: Vec<String>,
    /// The key's ARN ([`NEW_KEY`] in a dry run before it exists).
    pub key: String,
    pub runtimes: Vec<Runtime>,
}

impl App {
    /// The group's and the role's name.
    pub fn id(&self) -> String {
        id(&self.name)
    }

    pub fn alias(&self) -> String {
        alias(&self.name)
    }
}

pub fn id(name: &str) -> String {
    format!("{PREFIX}{name}")
}

pub fn alias(name: &str) -> String {
    format!("alias/{PREFIX}{name}")
}

/// An app name must make a valid IAM group and role name, KMS alias and tag value,
/// and read well in all of them: lowercase letters, digits and single hyphens.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > 40 {
        return Err(format!("app name `{name}`: use 1 to 40 characters"));
    }
    if !ok_chars || name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(format!(
            "app name `{name}`: use lowercase letters, digits and single hyphens (it names an IAM group and role, a KMS alias and S3 statements)"
        ));
    }
    Ok(())
}

/// S3's rules for a bucket name (path-style, so no dots either).
pub fn check_bucket_name(b: &str) -> Result<(), String> {
    let ok_chars = b
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let edges_ok = b.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&b.len()) || !ok_chars || !edges_ok || b.contains("..") {
        return Err(format!(
            "bucket name `{b}`: S3 wants 3 to 63 lowercase letters, digits, hyphens or dots, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn data_statements(app: &App) -> Vec<Value> {
    let buckets: Vec<String> = app
        .buckets
        .iter()
        .map(|b| format!("arn:aws:s3:::{b}"))
        .collect();
    let objects: Vec<String> = buckets.iter().map(|b| format!("{b}/*")).collect();
    vec![
        json!({"Sid": "AppBuckets", "Effect": "Allow", "Action": DATA_BUCKET_ACTIONS, "Resource": buckets}),
        json!({"Sid": "AppObjects", "Effect": "Allow", "Action": DATA_OBJECT_ACTIONS, "Resource": objects}),
        json!({"Sid": "AppKey", "Effect": "Allow", "Action": KEY_ACTIONS, "Resource": app.key}),
    ]
}

/// The role's rights: the app's data, and nothing else.
pub fn role_policy(app: &App) -> Value {
    json!({"Version": "2012-10-17", "Statement": data_statements(app)})
}

/// The group's rights: the same data with MFA, and assuming the app's role naming
/// the machine itself.
pub fn group_policy(a: &Arns, app: &App) -> Value {
    let mfa = json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}});
    let mut statements = data_statements(app);
    for st in &mut statements {
        st["Condition"] = mfa.clone();
    }
    statements.push(json!({"Sid": "AssumeAppRole", "Effect": "Allow",
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"], "Resource": a.role(&app.id()),
        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                      "StringEquals": {"sts:SourceIdentity": "${aws:username}"}}}));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Who may assume the role: the runtimes' services, and the members (by
/// `aws:PrincipalArn`) with MFA, if IAM (the group policy) also allows them. Both
/// lists must agree: another group granting `sts:AssumeRole` on `*` is not enough.
pub fn role_trust(a: &Arns, app: &App, members: &[String]) -> Value {
    let mut statements = Vec::new();
    if !app.runtimes.is_empty() {
        let services: Vec<&str> = app.runtimes.iter().map(|r| r.service()).collect();
        statements.push(json!({"Sid": "Runtime", "Effect": "Allow",
            "Principal": {"Service": services}, "Action": "sts:AssumeRole"}));
    }
    if !members.is_empty() {
        let arns: Vec<String> = members.iter().map(|m| a.user(m)).collect();
        statements.push(json!({"Sid": SID_DEVELOPERS, "Effect": "Allow",
            "Principal": {"AWS": a.root()}, "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                          "ArnEquals": {"aws:PrincipalArn": arns},
                          "StringEquals": {"sts:SourceIdentity": "${aws:username}"}}}));
    }
    if statements.is_empty() {
        statements.push(json!({"Sid": "NobodyYet", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The members a trust policy lets in (user names).
pub fn trust_members(trust: &Value) -> Vec<String> {
    policy::statements(trust)
        .into_iter()
        .filter(|s| s["Sid"] == SID_DEVELOPERS)
        .flat_map(|s| strings(&s["Condition"]["ArnEquals"]["aws:PrincipalArn"]))
        .filter_map(|arn| arn.rsplit_once(":user/keyward/").map(|(_, u)| u.to_owned()))
        .collect()
}

/// The runtimes a trust policy names.
pub fn trust_runtimes(trust: &Value) -> Vec<Runtime> {
    let mut out: Vec<Runtime> = policy::statements(trust)
        .into_iter()
        .flat_map(|s| strings(&s["Principal"]["Service"]))
        .filter_map(|s| Runtime::from_service(&s))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `(buckets, key)` a role policy grants.
pub fn policy_data(doc: &Value) -> (Vec<String>, Option<String>) {
    let mut buckets = Vec::new();
    let mut key = None;
    for st in policy::statements(doc) {
        match st["Sid"].as_str() {
            Some("AppBuckets") => {
                buckets = strings(&st["Resource"])
                    .iter()
                    .filter_map(|r| r.strip_prefix("arn:aws:s3:::").map(str::to_owned))
                    .collect();
            }
            Some("AppKey") => key = strings(&st["Resource"]).into_iter().next(),
            _ => {}
        }
    }
    (buckets, key)
}

/// A new key's policy: only the account root, which delegates to IAM (so the account's
/// admin can always manage it). keyward adds its statements once the role exists.
pub fn new_key_policy(a: &Arns) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": SID_ACCOUNT_ROOT, "Effect": "Allow", "Principal": {"AWS": a.root()},
         "Action": "kms:*", "Resource": "*"}
    ]})
}

/// The key policy with the role and `members` (user ARNs) named, and everyone else
/// denied: the account root, keyward's admin role and the account admins
/// (`keepers`) keep it; anything some other IAM policy grants on `kms:*` does not
/// reach it. Every other statement, and machines named before, stay.
pub fn key_doc(doc: &Value, keepers: &[String], role_arn: &str, members: &[String]) -> Value {
    let mut arns = policy::machines(doc);
    for m in members {
        if !arns.contains(m) {
            arns.push(m.clone());
        }
    }
    let mut out = policy::rebuild(doc, &Target::KmsKey, &arns, None);
    policy::upsert_statement(
        &mut out,
        json!({"Sid": SID_APP_ROLE, "Effect": "Allow", "Principal": {"AWS": role_arn},
               "Action": KEY_ACTIONS, "Resource": "*"}),
    );
    let mut allowed = keepers.to_vec();
    for a in deny_others_list(doc) {
        if !a.contains(":user/keyward/") && a != role_arn && !allowed.contains(&a) {
            allowed.push(a);
        }
    }
    allowed.push(role_arn.to_owned());
    allowed.extend(arns);
    policy::upsert_statement(
        &mut out,
        json!({"Sid": SID_DENY_OTHERS, "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:*",
               "Resource": "*", "Condition": {"ArnNotLike": {"aws:PrincipalArn": allowed}}}),
    );
    out
}

/// The principals a deny-others statement keeps.
fn deny_others_list(doc: &Value) -> Vec<String> {
    policy::statements(doc)
        .into_iter()
        .find(|s| s["Sid"] == SID_DENY_OTHERS)
        .map(|s| strings(&s["Condition"]["ArnNotLike"]["aws:PrincipalArn"]))
        .unwrap_or_default()
}

/// The bucket policy with the article's protections for this app: `members` named
/// (with MFA), uploads only with this key, and everyone else denied, the role kept.
pub fn bucket_doc(
    doc: &Value,
    bucket: &str,
    keep: &Keepers,
    admins: &[String],
    role_arn: &str,
    key_arn: &str,
    members: &[String],
) -> Value {
    let mut arns = policy::machines(doc);
    for m in members {
        if !arns.contains(m) {
            arns.push(m.clone());
        }
    }
    let mut out = policy::rebuild(doc, &Target::Bucket(bucket.to_owned()), &arns, Some(keep));
    policy::keep_in_deny_others(&mut out, role_arn);
    for a in admins {
        policy::keep_in_deny_others(&mut out, a);
    }
    // Only the keepers may change or drop these statements: an S3 right some other
    // group grants must not be a way around them.
    let editors: Vec<String> = deny_others_list(&out)
        .into_iter()
        .filter(|a| !a.contains(":user/keyward/") && a != role_arn)
        .collect();
    policy::upsert_statement(
        &mut out,
        json!({"Sid": SID_DENY_POLICY_EDITS, "Effect": "Deny", "Principal": "*",
               "Action": ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy"], "Resource": format!("arn:aws:s3:::{bucket}"),
               "Condition": {"ArnNotLike": {"aws:PrincipalArn": editors}}}),
    );
    policy::upsert_statement(
        &mut out,
        json!({"Sid": SID_DENY_OTHER_KEYS, "Effect": "Deny", "Principal": "*",
               "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/*"),
               "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}}),
    );
    out
}

/// Which app's protections a bucket policy carries (the role its deny-others keeps).
pub fn bucket_app(doc: &Value, a: &Arns) -> Option<String> {
    let prefix = a.role(PREFIX);
    deny_others_list(doc)
        .into_iter()
        .find_map(|arn| arn.strip_prefix(&prefix).map(str::to_owned))
}

#[cfg(test)]
#[path = "apps_tests.rs"]
mod tests;
