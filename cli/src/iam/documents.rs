//! The IAM documents keyward writes: the permission model of DESIGN.md §3 as JSON.
//!
//! - `keyward-machine` (every machine user): nothing without MFA (property 1); its own
//!   key rotation; reading and cutting off machines of the same owner (3, 4); denies
//!   that keep ownership tags, revocations and keyward's own pieces intact (2).
//! - `keyward-deny-all`: the one fixed policy a revocation attaches (4, 7).
//! - `keyward-role-guard`: the permissions boundary of keyward's roles. It only denies:
//!   sessions whose SourceIdentity is a revoked machine (7). A boundary never grants,
//!   so letting machines tag roles for it cannot widen anything.
//! - `keyward-admin` role: whitelist edits by designated admin computers with MFA (5).
//! - `keyward-enroller` role: an enrollment session that registers exactly one named
//!   computer (6), assumable only from an admin session.
//!
//! Their proof is the attacker suite in `tests/e2e/attack.rs`, run under an IAM
//! evaluator keyward did not write; the unit tests here only pin the text.

use serde_json::{json, Value};

pub const PATH: &str = "/keyward/";
pub const MACHINE_POLICY: &str = "keyward-machine";
pub const DENY_ALL_POLICY: &str = "keyward-deny-all";
pub const ROLE_GUARD_POLICY: &str = "keyward-role-guard";
pub const ADMIN_ROLE: &str = "keyward-admin";
pub const ENROLLER_ROLE: &str = "keyward-enroller";
/// Written by versions before the least-privilege model; `init` replaces it.
pub const OLD_SELF_SERVICE_POLICY: &str = "keyward-self-service";
pub const OLD_REVOKE_INLINE: &str = "keyward-revoked-deny-all";

pub const TAG_OWNER: &str = "keyward-owner";
pub const TAG_MACHINE: &str = "keyward-machine";
pub const TAG_CREATED: &str = "keyward-created-at";
pub const TAG_ENROLLED: &str = "keyward-enrolled";
pub const TAG_REVOKED_AT: &str = "keyward-revoked-at";
pub const TAG_REVOKED_BY: &str = "keyward-revoked-by";
/// On keyward's roles: `keyward-revoked-<owner>` = `/alice-laptop/alice-old/`.
pub const TAG_ROLE_REVOKED_PREFIX: &str = "keyward-revoked-";
/// Tags no machine may ever set or remove, on any user or role.
pub const PROTECTED_TAGS: [&str; 4] = [TAG_OWNER, TAG_MACHINE, TAG_CREATED, TAG_ENROLLED];

/// The ARNs the documents are made of, for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    pub account: String,
}

impl Arns {
    pub fn new(account: &str) -> Self {
        Self {
            account: account.to_owned(),
        }
    }

    pub fn root(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account)
    }

    pub fn policy(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:policy/keyward/{name}", self.account)
    }

    pub fn role(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/keyward/{name}", self.account)
    }

    pub fn user(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/keyward/{name}", self.account)
    }

    pub fn mfa(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:mfa/{name}", self.account)
    }

    pub fn group(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:group/{name}", self.account)
    }

    fn users(&self) -> String {
        self.user("*")
    }

    fn roles(&self) -> String {
        self.role("*")
    }
}

fn same_owner() -> Value {
    json!({"iam:ResourceTag/keyward-owner": "${aws:PrincipalTag/keyward-owner}"})
}

/// Attached to every machine user. Roles keyward guards outside `/keyward/` are listed
/// in `guarded_roles`, so that siblings can mark revoked sessions on them too.
pub fn machine_policy(a: &Arns, guarded_roles: &[String]) -> Value {
    let me = a.user("${aws:username}");
    let mut role_targets = vec![a.roles()];
    role_targets.extend(guarded_roles.iter().cloned());
    json!({"Version": "2012-10-17", "Statement": [
        // Property 1: the key alone gets an MFA session and nothing else.
        {"Sid": "NothingWithoutMfa", "Effect": "Deny",
         "NotAction": ["sts:GetSessionToken", "sts:GetCallerIdentity"], "Resource": "*",
         "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
        {"Sid": "RotateOwnKey", "Effect": "Allow",
         "Action": ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"],
         "Resource": me},
        {"Sid": "ListMachines", "Effect": "Allow",
         "Action": ["iam:ListUsers", "iam:ListVirtualMFADevices", "iam:ListRoles"], "Resource": "*"},
        {"Sid": "ReadKeywardPolicies", "Effect": "Allow", "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
         "Resource": a.policy("*")},
        {"Sid": "ReadOwnersMachines", "Effect": "Allow",
         "Action": ["iam:GetUser", "iam:ListUserTags", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed",
                    "iam:ListMFADevices", "iam:ListGroupsForUser", "iam:ListAttachedUserPolicies",
                    "iam:ListUserPolicies"],
         "Resource": a.users(), "Condition": {"StringEquals": same_owner()}},
        // Property 4: cutting off a sibling, and nothing more.
        {"Sid": "CutOffOwnersMachines", "Effect": "Allow",
         "Action": ["iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:DeactivateMFADevice"],
         "Resource": a.users(), "Condition": {"StringEquals": same_owner()}},
        {"Sid": "DenyAllOwnersMachines", "Effect": "Allow", "Action": "iam:AttachUserPolicy",
         "Resource": a.users(),
         "Condition": {"StringEquals": same_owner(),
                       "ArnEquals": {"iam:PolicyARN": a.policy(DENY_ALL_POLICY)}}},
        {"Sid": "MarkOwnersMachinesRevoked", "Effect": "Allow", "Action": "iam:TagUser",
         "Resource": a.users(),
         "Condition": {"StringEquals": same_owner(),
                       "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_REVOKED_AT, TAG_REVOKED_BY]},
                       "Null": {"aws:TagKeys": "false"}}},
        {"Sid": "DeleteOwnersMfaDevices", "Effect": "Allow", "Action": "iam:DeleteVirtualMFADevice",
         "Resource": a.mfa("${aws:PrincipalTag/keyward-owner}-*")},
        // Property 7: a mark on keyward's roles that their guard boundary turns into a deny.
        {"Sid": "MarkOwnersRoleSessionsRevoked", "Effect": "Allow", "Action": "iam:TagRole",
         "Resource": role_targets,
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["keyward-revoked-${aws:PrincipalTag/keyward-owner}"]},
                       "Null": {"aws:TagKeys": "false"}}},
        {"Sid": "ReadGuardedRoles", "Effect": "Allow", "Action": ["iam:GetRole", "iam:ListRoleTags"],
         "Resource": role_targets},
        {"Sid": "OwnSourceIdentity", "Effect": "Allow", "Action": "sts:SetSourceIdentity", "Resource": "*",
         "Condition": {"StringEquals": {"sts:SourceIdentity": "${aws:username}"}}},
        // Property 2, whatever the machine's groups allow. On itself a machine may read,
        // rotate its key, and cut itself off (deregister); nothing else, so no second
        // MFA device, login, SSH key or policy of its own.
        {"Sid": "NeverChangeItself", "Effect": "Deny",
         "NotAction": ["iam:Get*", "iam:List*", "iam:CreateAccessKey", "iam:UpdateAccessKey",
                       "iam:DeleteAccessKey", "iam:DeactivateMFADevice", "iam:AttachUserPolicy",
                       "iam:TagUser"],
         "Resource": me},
        {"Sid": "NeverAttachToItselfButDenyAll", "Effect": "Deny", "Action": "iam:AttachUserPolicy",
         "Resource": me, "Condition": {"ArnNotEquals": {"iam:PolicyARN": a.policy(DENY_ALL_POLICY)}}},
        // IAM tag keys ignore case: `Keyward-Owner` would replace `keyward-owner`.
        {"Sid": "NeverRetagOwnership", "Effect": "Deny",
         "Action": ["iam:TagUser", "iam:TagRole"], "Resource": "*",
         "Condition": {"ForAnyValue:StringEqualsIgnoreCase": {"aws:TagKeys": PROTECTED_TAGS}}},
        {"Sid": "NeverLiftRevocations", "Effect": "Deny",
         "Action": ["iam:DetachUserPolicy"], "Resource": "*",
         "Condition": {"ArnEquals": {"iam:PolicyARN": a.policy(DENY_ALL_POLICY)}}},
        {"Sid": "NeverUntag", "Effect": "Deny", "Action": ["iam:UntagUser", "iam:UntagRole"],
         "Resource": "*"},
        // Property 7: every role session names this machine, so revocation can find it,
        // and no session tag can stand in for a role's revocation mark.
        {"Sid": "AlwaysNameItself", "Effect": "Deny", "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
         "Resource": "*", "Condition": {"StringNotEquals": {"sts:SourceIdentity": "${aws:username}"}}},
        {"Sid": "NeverTagSessions", "Effect": "Deny", "Action": "sts:TagSession", "Resource": "*"},
        {"Sid": "NeverChangeKeywardPolicies", "Effect": "Deny",
         "Action": ["iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
                    "iam:DeletePolicyVersion", "iam:DeletePolicy"],
         "Resource": a.policy("*")},
        {"Sid": "NeverChangeKeywardRoles", "Effect": "Deny",
         "Action": ["iam:CreateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
                    "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary",
                    "iam:DeleteRolePermissionsBoundary", "iam:DeleteRole", "iam:UpdateRole"],
         "Resource": role_targets},
        // A role passed to EC2 or Lambda runs without SourceIdentity, out of revocation's reach.
        {"Sid": "NeverPassKeywardRoles", "Effect": "Deny", "Action": "iam:PassRole", "Resource": role_targets}
    ]})
}

/// The one fixed policy a revocation attaches: no condition, nothing to tamper with.
pub fn deny_all() -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "KeywardRevoked", "Effect": "Deny", "Action": "*", "Resource": "*"}
    ]})
}

/// The permissions boundary of keyward's roles: it allows what the role allows and
/// denies sessions of revoked machines, by the admin's record (`revoked`) and by the
/// marks siblings put on the role (`keyward-revoked-<owner>`, one statement per owner).
pub fn role_guard(revoked: &[String], owners: &[String]) -> Value {
    let mut statements = vec![
        json!({"Sid": "RoleRightsUnchanged", "Effect": "Allow", "Action": "*", "Resource": "*"}),
    ];
    if !revoked.is_empty() {
        statements.push(
            json!({"Sid": "RevokedMachines", "Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceIdentity": revoked}}}),
        );
    }
    if !owners.is_empty() {
        // A session tag of the same key would override the role's mark down a chain.
        let keys: Vec<String> = owners
            .iter()
            .map(|o| format!("{TAG_ROLE_REVOKED_PREFIX}{o}"))
            .collect();
        statements.push(json!({"Sid": "NoMarksInSessionTags", "Effect": "Deny", "Action": "sts:TagSession",
            "Resource": "*", "Condition": {"ForAnyValue:StringEqualsIgnoreCase": {"aws:TagKeys": keys}}}));
    }
    for owner in owners {
        statements.push(json!({"Sid": format!("RevokedBy{owner}"), "Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringLike": {
                "aws:SourceIdentity": format!("{owner}-*"),
                format!("aws:PrincipalTag/{TAG_ROLE_REVOKED_PREFIX}{owner}"): "*/${aws:SourceIdentity}/*"}}}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The owners and admin-recorded sources a guard document holds (for read-modify-write).
pub fn role_guard_contents(doc: &Value) -> (Vec<String>, Vec<String>) {
    let mut revoked = Vec::new();
    let mut owners = Vec::new();
    for st in crate::iam::policy::statements(doc) {
        let sid = st["Sid"].as_str().unwrap_or_default();
        if sid == "RevokedMachines" {
            revoked = strings(&st["Condition"]["StringEquals"]["aws:SourceIdentity"]);
        } else if let Some(o) = sid.strip_prefix("RevokedBy") {
            owners.push(o.to_owned());
        }
    }
    (revoked, owners)
}

pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Who may assume the admin role: each designated admin computer, with MFA, naming
/// itself as the source identity. With none designated yet, nobody.
pub fn admin_trust(a: &Arns, admins: &[String]) -> Value {
    if admins.is_empty() {
        return json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "NoAdminComputerYet", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
        ]});
    }
    let statements: Vec<Value> = admins
        .iter()
        .map(|m| {
            json!({"Sid": format!("Admin{}", sid_part(m)), "Effect": "Allow",
            "Principal": {"AWS": a.user(m)},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                          "StringEquals": {"sts:SourceIdentity": m}}})
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The roles outside `/keyward/` a machine policy lets siblings mark (guarded roles).
pub fn machine_policy_guarded_roles(doc: &Value) -> Vec<String> {
    crate::iam::policy::statements(doc)
        .into_iter()
        .find(|s| s["Sid"] == "MarkOwnersRoleSessionsRevoked")
        .map(|s| strings(&s["Resource"]))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !r.contains(":role/keyward/"))
        .collect()
}

/// The designated admin computers named by an admin trust policy.
pub fn admin_trust_machines(doc: &Value) -> Vec<String> {
    crate::iam::policy::statements(doc)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| strings(&s["Principal"]["AWS"]))
        .filter_map(|arn| arn.rsplit_once(":user/keyward/").map(|(_, u)| u.to_owned()))
        .collect()
}

/// A statement id from a name: letters and digits only.
pub fn sid_part(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The whitelists an admin may edit: what `keyward init` (or a bootstrap setup) put
/// under keyward's management.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Whitelists {
    pub groups: Vec<String>,
    pub buckets: Vec<String>,
    pub kms_keys: Vec<String>,
}

impl Whitelists {
    /// Adds what is new, keeping the order; returns whether anything was added.
    pub fn extend(&mut self, other: &Whitelists) -> bool {
        let mut changed = false;
        for (mine, theirs) in [
            (&mut self.groups, &other.groups),
            (&mut self.buckets, &other.buckets),
            (&mut self.kms_keys, &other.kms_keys),
        ] {
            for x in theirs {
                if !mine.contains(x) {
                    mine.push(x.clone());
                    changed = true;
                }
            }
        }
        changed
    }
}

/// What the admin role may do: read the account, edit the managed whitelists, revoke
/// any machine, record revocations in the role guard, and mint enrollment sessions.
pub fn admin_policy(a: &Arns, w: &Whitelists) -> Value {
    let machine_policies = [a.policy(DENY_ALL_POLICY), a.policy(MACHINE_POLICY)];
    let mut statements = vec![
        json!({"Sid": "ReadAccount", "Effect": "Allow", "Resource": "*",
            "Action": ["iam:Get*", "iam:List*", "iam:GenerateCredentialReport",
                       "s3:ListAllMyBuckets", "s3:GetBucketPolicy", "s3:GetBucketAcl",
                       "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration",
                       "s3:GetBucketPolicyStatus", "s3:GetAccountPublicAccessBlock",
                       "kms:ListKeys", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyPolicy"]}),
        json!({"Sid": "RevokeAnyMachine", "Effect": "Allow", "Resource": a.users(),
            "Action": ["iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:DeactivateMFADevice",
                       "iam:DeleteLoginProfile", "iam:DeleteUser"]}),
        json!({"Sid": "DeleteAnyMachinesMfaDevice", "Effect": "Allow", "Action": "iam:DeleteVirtualMFADevice",
            "Resource": a.mfa("*")}),
        json!({"Sid": "KeywardPoliciesOnMachines", "Effect": "Allow",
            "Action": ["iam:AttachUserPolicy", "iam:DetachUserPolicy"], "Resource": a.users(),
            "Condition": {"ArnEquals": {"iam:PolicyARN": machine_policies}}}),
        json!({"Sid": "TagMachines", "Effect": "Allow", "Action": "iam:TagUser", "Resource": a.users(),
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": [TAG_REVOKED_AT, TAG_REVOKED_BY, TAG_ENROLLED]},
                          "Null": {"aws:TagKeys": "false"}}}),
        json!({"Sid": "MarkRoleSessionsRevoked", "Effect": "Allow", "Action": ["iam:TagRole", "iam:UntagRole"],
            "Resource": "*",
            "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["keyward-revoked-*"]},
                          "Null": {"aws:TagKeys": "false"}}}),
        json!({"Sid": "RecordRevocations", "Effect": "Allow",
            "Action": ["iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion"],
            "Resource": a.policy(ROLE_GUARD_POLICY)}),
        json!({"Sid": "MintEnrollmentSessions", "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            "Resource": a.role(ENROLLER_ROLE)}),
    ];
    if !w.groups.is_empty() {
        let groups: Vec<String> = w.groups.iter().map(|g| a.group(g)).collect();
        statements.push(json!({"Sid": "WhitelistGroups", "Effect": "Allow",
            "Action": ["iam:AddUserToGroup", "iam:RemoveUserFromGroup"], "Resource": groups}));
    }
    // An app's role trusts its members by name, and a group's JIT role its grants:
    // editing a whitelisted group's membership reaches those trusts too.
    let trusts: Vec<String> = w
        .groups
        .iter()
        .map(|g| {
            if g.starts_with(crate::iam::apps::PREFIX) {
                a.role(g)
            } else {
                a.role(&crate::iam::jit::role_name(g))
            }
        })
        .collect();
    if !trusts.is_empty() {
        statements.push(json!({"Sid": "WhitelistRoleTrusts", "Effect": "Allow",
            "Action": "iam:UpdateAssumeRolePolicy", "Resource": trusts}));
    }
    if !w.buckets.is_empty() {
        let buckets: Vec<String> = w
            .buckets
            .iter()
            .map(|b| format!("arn:aws:s3:::{b}"))
            .collect();
        let data: Vec<String> = buckets
            .iter()
            .flat_map(|b| [b.clone(), format!("{b}/*")])
            .collect();
        statements.push(json!({"Sid": "WhitelistBuckets", "Effect": "Allow",
            "Action": ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy"], "Resource": buckets}));
        // Editing who may touch the data is not touching it.
        statements.push(json!({"Sid": "NeverTouchWhitelistedData", "Effect": "Deny",
            "Action": ["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:DeleteBucket",
                       "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning"],
            "Resource": data}));
    }
    if !w.kms_keys.is_empty() {
        statements.push(json!({"Sid": "WhitelistKeys", "Effect": "Allow",
            "Action": "kms:PutKeyPolicy", "Resource": w.kms_keys}));
        statements.push(json!({"Sid": "NeverUseWhitelistedKeys", "Effect": "Deny",
            "NotAction": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": w.kms_keys}));
        statements.push(json!({"Sid": "NeverLockAKeyOut", "Effect": "Deny",
            "Action": "kms:PutKeyPolicy", "Resource": "*",
            "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The whitelists an admin policy names (what earlier `init` runs put there).
pub fn admin_policy_whitelists(doc: &Value) -> Whitelists {
    let mut w = Whitelists::default();
    for st in crate::iam::policy::statements(doc) {
        let res = strings(&st["Resource"]);
        match st["Sid"].as_str() {
            Some("WhitelistGroups") => {
                w.groups = res
                    .iter()
                    .filter_map(|r| r.rsplit('/').next().map(str::to_owned))
                    .collect();
            }
            Some("WhitelistBuckets") => {
                w.buckets = res
                    .iter()
                    .filter_map(|r| r.strip_prefix("arn:aws:s3:::").map(str::to_owned))
                    .collect();
            }
            Some("WhitelistKeys") => w.kms_keys = res,
            _ => {}
        }
    }
    w
}

/// Only admin sessions may mint an enrollment session, and only with the two tags
/// that name the one computer it may register.
pub fn enroller_trust(a: &Arns) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "AdminSessionsOnly", "Effect": "Allow", "Principal": {"AWS": a.role(ADMIN_ROLE)},
         "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
         "Condition": {"StringLike": {"sts:SourceIdentity": "*-*"}}},
        {"Sid": "NameTheComputer", "Effect": "Allow", "Principal": {"AWS": a.role(ADMIN_ROLE)},
         "Action": "sts:TagSession",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": [TAG_OWNER, TAG_MACHINE]},
                       "Null": {"aws:RequestTag/keyward-owner": "false", "aws:RequestTag/keyward-machine": "false"}}}
    ]})
}

/// An enrollment session: the user `<owner>-<machine>` from its session tags, its MFA
/// device and one access key (until it is marked enrolled), and nothing else.
pub fn enroller_policy(a: &Arns) -> Value {
    let name = "${aws:PrincipalTag/keyward-owner}-${aws:PrincipalTag/keyward-machine}";
    let user = a.user(name);
    // Before it exists, IAM cannot know the user's path: reads name it without one.
    let unborn = format!("arn:aws:iam::{}:user/{name}", a.account);
    let mfa = a.mfa(name);
    let not_enrolled = json!({"Null": {"iam:ResourceTag/keyward-enrolled": "true"}});
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "CreateTheNamedComputer", "Effect": "Allow", "Action": ["iam:CreateUser", "iam:TagUser"],
         "Resource": user,
         "Condition": {"StringEquals": {"aws:RequestTag/keyward-owner": "${aws:PrincipalTag/keyward-owner}",
                                        "aws:RequestTag/keyward-machine": "${aws:PrincipalTag/keyward-machine}"},
                       "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_OWNER, TAG_MACHINE, TAG_CREATED]}}},
        {"Sid": "MarkItEnrolled", "Effect": "Allow", "Action": "iam:TagUser", "Resource": user,
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": [TAG_ENROLLED]}, "Null": {"aws:TagKeys": "false"}}},
        {"Sid": "ItsMfaDevice", "Effect": "Allow", "Action": ["iam:CreateVirtualMFADevice", "iam:DeleteVirtualMFADevice"],
         "Resource": mfa},
        {"Sid": "OneKeyAndMfaUntilEnrolled", "Effect": "Allow",
         "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:EnableMFADevice", "iam:DeactivateMFADevice",
                    "iam:DeleteUser"],
         "Resource": user, "Condition": not_enrolled},
        {"Sid": "TheMachinePolicy", "Effect": "Allow", "Action": "iam:AttachUserPolicy",
         "Resource": user, "Condition": {"ArnEquals": {"iam:PolicyARN": a.policy(MACHINE_POLICY)}}},
        {"Sid": "UndoUntilEnrolled", "Effect": "Allow", "Action": "iam:DetachUserPolicy",
         "Resource": user, "Condition": {"ArnEquals": {"iam:PolicyARN": a.policy(MACHINE_POLICY)},
                                         "Null": {"iam:ResourceTag/keyward-enrolled": "true"}}},
        // Names are plain words: a `/` in a tag would make the user a path of its own.
        {"Sid": "OnlyPlainMachineNames", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringLike": {"aws:PrincipalTag/keyward-machine": ["*/*", "*:*"]}}},
        {"Sid": "OnlyPlainOwnerNames", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringLike": {"aws:PrincipalTag/keyward-owner": ["*/*", "*-*", "*:*"]}}},
        {"Sid": "ReadIt", "Effect": "Allow",
         "Action": ["iam:GetUser", "iam:ListUserTags", "iam:ListAccessKeys", "iam:ListMFADevices",
                    "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser", "iam:ListUserPolicies"],
         "Resource": [user, unborn]},
        {"Sid": "FindItsStrayMfaDevice", "Effect": "Allow", "Action": "iam:ListVirtualMFADevices", "Resource": "*"}
    ]})
}

#[cfg(test)]
#[path = "documents_tests.rs"]
mod tests;
