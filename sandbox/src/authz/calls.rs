//! What a request asks IAM for: the action(s), the resource ARN and the request's own
//! condition keys, per service protocol (IAM/STS query, S3 REST, KMS JSON, and a
//! generic fallback). Resource policies are named here and fetched by the emulator.

use std::collections::HashMap;

use iam_rs::ContextValue;
use serde_json::Value;

use crate::authz::account::{Account, ACCOUNT};
use crate::authz::storage::{kms_needs, s3_needs};
pub use crate::authz::storage::{kms_via_s3, s3_operation};

/// A request, as far as authorization cares.
pub struct Call<'a> {
    /// The SigV4 service name (`iam`, `sts`, `s3`, `kms`, …).
    pub service: &'a str,
    pub method: &'a str,
    /// URL-decoded path (S3 buckets and keys live here).
    pub path: &'a str,
    pub query: &'a str,
    /// Query-protocol parameters (form body and URL query).
    pub fields: &'a HashMap<String, String>,
    pub headers: &'a hyper::HeaderMap,
    /// The JSON protocol's body (KMS).
    pub json: Option<&'a Value>,
    /// The caller's own IAM user, for IAM calls that default to it.
    pub caller_user: Option<&'a str>,
}

/// Where a resource's policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRef {
    None,
    Bucket(String),
    /// A KMS key as the request names it (id, ARN or alias).
    Key(String),
    /// A role's trust policy, by role name.
    Trust(String),
}

/// One thing to authorize.
#[derive(Debug, Clone)]
pub struct Need {
    pub action: String,
    /// The resource ARN; for [`PolicyRef::Key`] the emulator puts in the key's ARN.
    pub resource: String,
    pub context: Vec<(String, ContextValue)>,
    pub policy: PolicyRef,
}

impl Need {
    pub(crate) fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            context: Vec::new(),
            policy: PolicyRef::None,
        }
    }

    pub(crate) fn with(mut self, key: &str, value: ContextValue) -> Self {
        self.context.push((key.to_owned(), value));
        self
    }
}

pub(crate) fn s(v: &str) -> ContextValue {
    ContextValue::String(v.to_owned())
}

pub(crate) fn any_resource(service: &str) -> String {
    format!("arn:aws:{service}::{ACCOUNT}:*")
}

/// The action name the emulator counts and logs (`CreateUser`, `GetObject`, …).
pub fn action_name(c: &Call) -> String {
    if let Some(a) = c.fields.get("Action") {
        return a.clone();
    }
    if let Some(t) = c.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return t.rsplit('.').next().unwrap_or(t).to_owned();
    }
    if c.service == "s3" {
        return s3_operation(c).0.trim_start_matches("s3:").to_owned();
    }
    format!("{}:{}", c.method, c.path)
}

/// Everything this request must be allowed to do.
pub fn needs(c: &Call, account: &Account) -> Vec<Need> {
    match c.service {
        "iam" => iam_needs(c, account),
        "sts" => sts_needs(c, account),
        "s3" => s3_needs(c),
        "kms" => kms_needs(c),
        other => {
            let action = action_name(c);
            vec![Need::new(format!("{other}:{action}"), any_resource(other))]
        }
    }
}

// ------------------------------------------------------------------ IAM

const USER_ACTIONS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "DeleteUser",
    "UpdateUser",
    "TagUser",
    "UntagUser",
    "ListUserTags",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    "GetLoginProfile",
    "EnableMFADevice",
    "DeactivateMFADevice",
    "ResyncMFADevice",
    "ListMFADevices",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "PutUserPolicy",
    "GetUserPolicy",
    "DeleteUserPolicy",
    "ListUserPolicies",
    "ListAttachedUserPolicies",
    "ListGroupsForUser",
    "PutUserPermissionsBoundary",
    "DeleteUserPermissionsBoundary",
    "ChangePassword",
    "ListSSHPublicKeys",
    "UploadSSHPublicKey",
    "ListServiceSpecificCredentials",
    "CreateServiceSpecificCredential",
    "ListSigningCertificates",
    "UploadSigningCertificate",
    "ListMFADeviceTags",
];
const GROUP_ACTIONS: &[&str] = &[
    "CreateGroup",
    "GetGroup",
    "DeleteGroup",
    "UpdateGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "PutGroupPolicy",
    "GetGroupPolicy",
    "DeleteGroupPolicy",
    "ListGroupPolicies",
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "ListAttachedGroupPolicies",
];
const ROLE_ACTIONS: &[&str] = &[
    "CreateRole",
    "GetRole",
    "DeleteRole",
    "UpdateRole",
    "UpdateRoleDescription",
    "UpdateAssumeRolePolicy",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "ListInstanceProfilesForRole",
];
const POLICY_ACTIONS: &[&str] = &[
    "GetPolicy",
    "DeletePolicy",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "SetDefaultPolicyVersion",
    "TagPolicy",
    "UntagPolicy",
    "ListEntitiesForPolicy",
    "ListPolicyTags",
];
const PROFILE_ACTIONS: &[&str] = &[
    "CreateInstanceProfile",
    "DeleteInstanceProfile",
    "GetInstanceProfile",
    "AddRoleToInstanceProfile",
    "RemoveRoleFromInstanceProfile",
];

fn iam_arn(kind: &str, path: Option<&str>, name: &str) -> String {
    let path = path.filter(|p| p.starts_with('/')).unwrap_or("/");
    format!("arn:aws:iam::{ACCOUNT}:{kind}{path}{name}")
}

fn iam_needs(c: &Call, account: &Account) -> Vec<Need> {
    let action = action_name(c);
    let f = |k: &str| c.fields.get(k).map(String::as_str);
    let a = action.as_str();
    let mut need = if USER_ACTIONS.contains(&a) {
        let name = f("UserName").or(c.caller_user).unwrap_or_default();
        let user = account.users.get(name);
        let arn = user.map_or_else(|| iam_arn("user", f("Path"), name), |u| u.arn.clone());
        let mut n = Need::new(format!("iam:{a}"), arn);
        if let Some(u) = user {
            n.context.extend(resource_tags(&u.tags));
        }
        n
    } else if GROUP_ACTIONS.contains(&a) {
        let name = f("GroupName").unwrap_or_default();
        let arn = account
            .groups
            .get(name)
            .map_or_else(|| iam_arn("group", f("Path"), name), |g| g.arn.clone());
        Need::new(format!("iam:{a}"), arn)
    } else if ROLE_ACTIONS.contains(&a) {
        let name = f("RoleName").unwrap_or_default();
        let role = account.roles.get(name);
        let arn = role.map_or_else(|| iam_arn("role", f("Path"), name), |r| r.arn.clone());
        let mut n = Need::new(format!("iam:{a}"), arn);
        if let Some(r) = role {
            n.context.extend(resource_tags(&r.tags));
            if let Some(b) = &r.boundary {
                n = n.with("iam:PermissionsBoundary", s(b));
            }
        }
        if let Some(b) = f("PermissionsBoundary") {
            n = n.with("iam:PermissionsBoundary", s(b));
        }
        n
    } else if POLICY_ACTIONS.contains(&a) {
        Need::new(format!("iam:{a}"), f("PolicyArn").unwrap_or_default())
    } else if a == "CreatePolicy" {
        Need::new(
            "iam:CreatePolicy",
            iam_arn("policy", f("Path"), f("PolicyName").unwrap_or_default()),
        )
    } else if a == "CreateVirtualMFADevice" {
        Need::new(
            format!("iam:{a}"),
            iam_arn(
                "mfa",
                f("Path"),
                f("VirtualMFADeviceName").unwrap_or_default(),
            ),
        )
    } else if a == "DeleteVirtualMFADevice" {
        Need::new(format!("iam:{a}"), f("SerialNumber").unwrap_or_default())
    } else if PROFILE_ACTIONS.contains(&a) {
        Need::new(
            format!("iam:{a}"),
            iam_arn(
                "instance-profile",
                f("Path"),
                f("InstanceProfileName").unwrap_or_default(),
            ),
        )
    } else if a == "GetAccessKeyLastUsed" {
        // The key's owner is the resource; unknown keys are judged as "*".
        Need::new("iam:GetAccessKeyLastUsed", any_resource("iam"))
    } else {
        Need::new(format!("iam:{a}"), any_resource("iam"))
    };
    if let Some(p) = f("PolicyArn") {
        if a.starts_with("Attach") || a.starts_with("Detach") {
            need = need.with("iam:PolicyARN", s(p));
        }
    }
    need.context.extend(request_tags(c.fields));
    let mut out = vec![need];
    // Creating with tags also needs the Tag action; adding a role to an instance
    // profile passes it to EC2.
    if matches!(a, "CreateUser" | "CreateRole")
        && c.fields.keys().any(|k| k.starts_with("Tags.member."))
    {
        let mut tag = out[0].clone();
        tag.action = format!("iam:Tag{}", &a[6..]);
        out.push(tag);
    }
    if a == "AddRoleToInstanceProfile" {
        if let Some(role) = f("RoleName").and_then(|r| account.roles.get(r)) {
            out.push(
                Need::new("iam:PassRole", role.arn.clone())
                    .with("iam:PassedToService", s("ec2.amazonaws.com")),
            );
        }
    }
    out
}

fn resource_tags(tags: &std::collections::BTreeMap<String, String>) -> Vec<(String, ContextValue)> {
    tags.iter()
        .flat_map(|(k, v)| {
            [
                (format!("iam:ResourceTag/{k}"), s(v)),
                (format!("aws:ResourceTag/{k}"), s(v)),
            ]
        })
        .collect()
}

/// `Tags.member.N.Key/Value` (query protocol) as `aws:RequestTag/…` and `aws:TagKeys`.
pub fn request_tags(fields: &HashMap<String, String>) -> Vec<(String, ContextValue)> {
    let pairs = tag_pairs(fields, "Tags.member");
    let mut out: Vec<(String, ContextValue)> = Vec::new();
    let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    for (k, v) in &pairs {
        out.push((format!("aws:RequestTag/{k}"), s(v)));
    }
    if let Some(untag) = list_field(fields, "TagKeys.member") {
        out.push(("aws:TagKeys".into(), ContextValue::StringList(untag)));
    } else if !keys.is_empty() {
        out.push(("aws:TagKeys".into(), ContextValue::StringList(keys)));
    }
    out
}

/// `Prefix.N.Key` / `Prefix.N.Value` pairs, in N order.
pub fn tag_pairs(fields: &HashMap<String, String>, prefix: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(u32, String, String)> = fields
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
            let n = rest.strip_suffix(".Key")?.parse().ok()?;
            let value = fields
                .get(&format!("{prefix}.{n}.Value"))
                .cloned()
                .unwrap_or_default();
            Some((n, v.clone(), value))
        })
        .collect();
    pairs.sort();
    pairs.into_iter().map(|(_, k, v)| (k, v)).collect()
}

/// `Prefix.N` list members, in N order.
pub fn list_field(fields: &HashMap<String, String>, prefix: &str) -> Option<Vec<String>> {
    let mut items: Vec<(u32, String)> = fields
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?,
                v.clone(),
            ))
        })
        .collect();
    if items.is_empty() {
        return None;
    }
    items.sort();
    Some(items.into_iter().map(|(_, v)| v).collect())
}

// ------------------------------------------------------------------ STS

fn sts_needs(c: &Call, account: &Account) -> Vec<Need> {
    let action = action_name(c);
    if action != "AssumeRole" {
        return vec![Need::new(format!("sts:{action}"), any_resource("sts"))];
    }
    let role_arn = c.fields.get("RoleArn").cloned().unwrap_or_default();
    let name = role_arn.rsplit('/').next().unwrap_or_default().to_owned();
    let trust = if account.roles.get(&name).is_some_and(|r| r.arn == role_arn) {
        PolicyRef::Trust(name)
    } else {
        PolicyRef::None
    };
    let mut context = Vec::new();
    if let Some(sn) = c.fields.get("RoleSessionName") {
        context.push(("sts:RoleSessionName".to_owned(), s(sn)));
    }
    let tags = tag_pairs(c.fields, "Tags.member");
    for (k, v) in &tags {
        context.push((format!("aws:RequestTag/{k}"), s(v)));
    }
    if !tags.is_empty() {
        let keys = tags.iter().map(|(k, _)| k.clone()).collect();
        context.push(("aws:TagKeys".to_owned(), ContextValue::StringList(keys)));
    }
    if let Some(t) = list_field(c.fields, "TransitiveTagKeys.member") {
        context.push((
            "sts:TransitiveTagKeys".to_owned(),
            ContextValue::StringList(t),
        ));
    }
    let need = |a: &str| Need {
        action: a.to_owned(),
        resource: role_arn.clone(),
        context: context.clone(),
        policy: trust.clone(),
    };
    let mut out = vec![need("sts:AssumeRole")];
    if !tags.is_empty() {
        out.push(need("sts:TagSession"));
    }
    out
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
