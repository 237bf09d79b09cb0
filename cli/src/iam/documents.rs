//! The IAM documents keyward writes. moto does not evaluate conditions, so these are
//! verified by document in the unit tests below.

use serde_json::{json, Value};

pub const PATH: &str = "/keyward/";
pub const SELF_SERVICE_POLICY: &str = "keyward-self-service";
pub const ENROLLER_ROLE: &str = "keyward-enroller";
pub const ENROLLER_POLICY: &str = "keyward-enroller";
pub const REVOKE_POLICY: &str = "keyward-revoked-deny-all";
pub const TAG_OWNER: &str = "keyward-owner";
pub const TAG_MACHINE: &str = "keyward-machine";
pub const TAG_CREATED: &str = "keyward-created-at";
pub const TAG_BUCKETS: &str = "keyward-buckets";
pub const TAG_KMS_KEYS: &str = "keyward-kms-keys";
pub const TAG_REVOKED_AT: &str = "keyward-revoked-at";
pub const TAG_REVOKED_BY: &str = "keyward-revoked-by";
pub const TAG_SETUP_COMPLETE: &str = "keyward-setup-complete";

fn users(account: &str) -> String {
    format!("arn:aws:iam::{account}:user/keyward/*")
}

/// Attached to every machine user. It may manage its own MFA device and access keys,
/// and revoke machine users of the same owner (tag `keyward-owner` on both sides),
/// always with MFA. Bucket and key policy edits are limited to what `keyward init`
/// was told keyward manages.
pub fn self_service(account: &str, buckets: &[String], kms_keys: &[String]) -> Value {
    let me = format!("arn:aws:iam::{account}:user/keyward/${{aws:username}}");
    let my_mfa = format!("arn:aws:iam::{account}:mfa/${{aws:username}}");
    let mfa = json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}});
    let mut statements = vec![
        json!({
            "Sid": "OwnMfaDevice",
            "Effect": "Allow",
            "Action": ["iam:CreateVirtualMFADevice", "iam:EnableMFADevice", "iam:ResyncMFADevice", "iam:ListMFADevices"],
            "Resource": [me.clone(), my_mfa.clone()]
        }),
        json!({
            "Sid": "OwnMfaDeviceRemoval",
            "Effect": "Allow",
            "Action": ["iam:DeactivateMFADevice", "iam:DeleteVirtualMFADevice"],
            "Resource": [me.clone(), my_mfa],
            "Condition": mfa
        }),
        json!({
            "Sid": "OwnAccessKeys",
            "Effect": "Allow",
            "Action": ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:GetUser", "iam:ListUserTags"],
            "Resource": me,
            "Condition": mfa
        }),
        json!({
            "Sid": "ListMachines",
            "Effect": "Allow",
            "Action": ["iam:ListUsers", "iam:ListMFADevices", "iam:ListVirtualMFADevices"],
            "Resource": "*",
            "Condition": mfa
        }),
        json!({
            "Sid": "RevokeSameOwner",
            "Effect": "Allow",
            "Action": [
                "iam:GetUser", "iam:ListUserTags", "iam:TagUser", "iam:PutUserPolicy", "iam:GetUserPolicy",
                "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:UpdateAccessKey", "iam:DeleteAccessKey",
                "iam:ListGroupsForUser", "iam:RemoveUserFromGroup", "iam:ListMFADevices",
                "iam:DeactivateMFADevice", "iam:DeleteVirtualMFADevice", "iam:ListUserPolicies",
                "iam:DeleteUserPolicy", "iam:ListAttachedUserPolicies", "iam:DetachUserPolicy", "iam:DeleteUser"
            ],
            "Resource": users(account),
            "Condition": {
                "StringEquals": {"iam:ResourceTag/keyward-owner": "${aws:PrincipalTag/keyward-owner}"},
                "Bool": {"aws:MultiFactorAuthPresent": "true"}
            }
        }),
        json!({
            "Sid": "RevokeSameOwnerMfaDevices",
            "Effect": "Allow",
            "Action": ["iam:DeleteVirtualMFADevice"],
            "Resource": format!("arn:aws:iam::{account}:mfa/${{aws:PrincipalTag/keyward-owner}}-*"),
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        }),
    ];
    if !buckets.is_empty() {
        statements.push(json!({
            "Sid": "ManagedBucketPolicies",
            "Effect": "Allow",
            "Action": ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"],
            "Resource": buckets.iter().map(|b| format!("arn:aws:s3:::{b}")).collect::<Vec<_>>(),
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        }));
    }
    if !kms_keys.is_empty() {
        statements.push(json!({
            "Sid": "ManagedKeyPolicies",
            "Effect": "Allow",
            "Action": ["kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:DescribeKey"],
            "Resource": kms_keys,
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Who may assume the enroller role: a keyward machine user of this account, with MFA.
pub fn enroller_trust(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "RegisteredMachinesWithMfa",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {
                "Bool": {"aws:MultiFactorAuthPresent": "true"},
                "ArnLike": {"aws:PrincipalArn": users(account)},
                "Null": {"aws:PrincipalTag/keyward-owner": "false"}
            }
        }]
    })
}

/// What the enroller role may do at most; each enrollment scopes it further down.
pub fn enroller_permissions(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CreateMachineUsers",
                "Effect": "Allow",
                "Action": ["iam:CreateUser", "iam:TagUser", "iam:GetUser", "iam:ListUserTags", "iam:CreateAccessKey",
                           "iam:ListAccessKeys", "iam:DeleteAccessKey", "iam:EnableMFADevice", "iam:ListMFADevices",
                           "iam:AddUserToGroup", "iam:ListGroupsForUser"],
                "Resource": users(account)
            },
            {
                "Sid": "AbortIncompleteSetup",
                "Effect": "Allow",
                "Action": ["iam:DeleteUser", "iam:DetachUserPolicy", "iam:RemoveUserFromGroup", "iam:DeactivateMFADevice",
                           "iam:ListUserPolicies", "iam:DeleteUserPolicy", "iam:ListAttachedUserPolicies"],
                "Resource": users(account),
                "Condition": {"Null": {"iam:ResourceTag/keyward-setup-complete": "true"}}
            },
            {
                "Sid": "AttachOnlySelfService",
                "Effect": "Allow",
                "Action": "iam:AttachUserPolicy",
                "Resource": users(account),
                "Condition": {"ArnEquals": {"iam:PolicyARN": format!("arn:aws:iam::{account}:policy/keyward/{SELF_SERVICE_POLICY}")}}
            },
            {
                "Sid": "MachineMfaDevices",
                "Effect": "Allow",
                "Action": ["iam:CreateVirtualMFADevice", "iam:DeleteVirtualMFADevice"],
                "Resource": format!("arn:aws:iam::{account}:mfa/*")
            },
            {
                "Sid": "GroupsAndPolicies",
                "Effect": "Allow",
                "Action": ["iam:GetGroup", "iam:AddUserToGroup", "s3:GetBucketPolicy", "s3:PutBucketPolicy",
                           "s3:ListBucket", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:DescribeKey", "sts:GetCallerIdentity"],
                "Resource": "*"
            }
        ]
    })
}

/// The session policy of one enrollment: only `<owner>-*` users, and only the named
/// groups, buckets and keys. The effective rights are the intersection with the role's.
pub fn enrollment_session(
    account: &str,
    owner: &str,
    groups: &[String],
    buckets: &[String],
    kms_keys: &[String],
) -> Value {
    let user = format!("arn:aws:iam::{account}:user/keyward/{owner}-*");
    let mfa = format!("arn:aws:iam::{account}:mfa/{owner}-*");
    let mut statements = vec![
        // Tag conditions only on the calls that carry tags, or the others would be denied.
        json!({
            "Sid": "CreateOwnersMachines",
            "Effect": "Allow",
            "Action": ["iam:CreateUser", "iam:TagUser"],
            "Resource": user.clone(),
            "Condition": {"StringEquals": {"aws:RequestTag/keyward-owner": owner}}
        }),
        json!({
            "Sid": "SetUpOwnersMachines",
            "Effect": "Allow",
            "Action": ["iam:GetUser", "iam:ListUserTags", "iam:CreateAccessKey", "iam:ListAccessKeys",
                       "iam:DeleteAccessKey", "iam:EnableMFADevice", "iam:ListMFADevices",
                       "iam:AttachUserPolicy", "iam:ListGroupsForUser", "iam:ListAttachedUserPolicies"],
            "Resource": user.clone()
        }),
        json!({
            "Sid": "AbortIncompleteSetup",
            "Effect": "Allow",
            "Action": ["iam:DeleteUser", "iam:DetachUserPolicy", "iam:RemoveUserFromGroup", "iam:DeactivateMFADevice",
                       "iam:ListUserPolicies", "iam:DeleteUserPolicy"],
            "Resource": user.clone(),
            "Condition": {"Null": {"iam:ResourceTag/keyward-setup-complete": "true"}}
        }),
        json!({
            "Sid": "OwnersMfaDevices",
            "Effect": "Allow",
            "Action": ["iam:CreateVirtualMFADevice", "iam:DeleteVirtualMFADevice"],
            "Resource": mfa
        }),
        json!({"Sid": "WhoAmI", "Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}),
    ];
    if !groups.is_empty() {
        let mut res: Vec<String> = groups
            .iter()
            .map(|g| format!("arn:aws:iam::{account}:group/{g}"))
            .collect();
        res.push(user.clone());
        statements.push(json!({"Sid": "NamedGroups", "Effect": "Allow", "Action": ["iam:GetGroup", "iam:AddUserToGroup"], "Resource": res}));
    }
    if !buckets.is_empty() {
        let res: Vec<String> = buckets
            .iter()
            .map(|b| format!("arn:aws:s3:::{b}"))
            .collect();
        statements.push(json!({"Sid": "NamedBuckets", "Effect": "Allow", "Action": ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:ListBucket"], "Resource": res}));
    }
    if !kms_keys.is_empty() {
        statements.push(json!({"Sid": "NamedKeys", "Effect": "Allow", "Action": ["kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:DescribeKey"], "Resource": kms_keys}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Revocation step 1: deny everything to sessions issued before `now` (RFC 3339).
/// Deleting a key does not end the STS sessions already issued from it; this does.
pub fn deny_sessions_before(now: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KeywardRevokeOlderSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": now}}
        }]
    })
}

#[cfg(test)]
mod tests {
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

    fn is_valid_iam(doc: &Value) {
        assert_eq!(doc["Version"], "2012-10-17");
        let text = serde_json::to_string(doc).unwrap();
        assert!(
            text.len() < 6144,
            "managed policies are capped at 6,144 characters: {}",
            text.len()
        );
        for s in doc["Statement"].as_array().unwrap() {
            assert!(
                matches!(s["Effect"].as_str(), Some("Allow" | "Deny")),
                "{s}"
            );
            assert!(s.get("Action").is_some(), "{s}");
            assert!(
                s.get("Resource").is_some() || s.get("Principal").is_some(),
                "{s}"
            );
            let sid = s["Sid"].as_str().unwrap_or("");
            assert!(
                sid.chars().all(|c| c.is_ascii_alphanumeric()),
                "Sid must be alphanumeric: {sid}"
            );
        }
    }

    #[test]
    fn self_service_revokes_only_the_same_owner_and_needs_mfa() {
        let doc = self_service(ACCT, &["data".into()], &[]);
        is_valid_iam(&doc);
        let revoke = statement(&doc, "RevokeSameOwner");
        assert_eq!(
            revoke["Resource"],
            "arn:aws:iam::123456789012:user/keyward/*"
        );
        assert_eq!(
            revoke["Condition"]["StringEquals"]["iam:ResourceTag/keyward-owner"],
            "${aws:PrincipalTag/keyward-owner}"
        );
        assert_eq!(
            revoke["Condition"]["Bool"]["aws:MultiFactorAuthPresent"],
            "true"
        );
        let keys = statement(&doc, "OwnAccessKeys");
        assert_eq!(
            keys["Resource"],
            "arn:aws:iam::123456789012:user/keyward/${aws:username}"
        );
        assert_eq!(
            statement(&doc, "ManagedBucketPolicies")["Resource"],
            serde_json::json!(["arn:aws:s3:::data"])
        );
        assert!(doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["Effect"] == "Allow"));
    }

    #[test]
    fn enroller_trust_needs_a_keyward_machine_with_mfa() {
        let doc = enroller_trust(ACCT);
        let s = &doc["Statement"][0];
        assert_eq!(s["Condition"]["Bool"]["aws:MultiFactorAuthPresent"], "true");
        assert_eq!(
            s["Condition"]["ArnLike"]["aws:PrincipalArn"],
            "arn:aws:iam::123456789012:user/keyward/*"
        );
        assert_eq!(
            s["Condition"]["Null"]["aws:PrincipalTag/keyward-owner"],
            "false"
        );
        is_valid_iam(&enroller_permissions(ACCT));
        let attach = statement(&enroller_permissions(ACCT), "AttachOnlySelfService").clone();
        assert_eq!(
            attach["Condition"]["ArnEquals"]["iam:PolicyARN"],
            "arn:aws:iam::123456789012:policy/keyward/keyward-self-service"
        );
    }

    #[test]
    fn enrollment_session_is_scoped_to_owner_and_named_resources() {
        let doc = enrollment_session(
            ACCT,
            "alice",
            &["dev".into()],
            &["data".into()],
            &["arn:aws:kms:us-east-1:123456789012:key/k1".into()],
        );
        is_valid_iam(&doc);
        let create = statement(&doc, "CreateOwnersMachines");
        assert_eq!(
            create["Resource"],
            "arn:aws:iam::123456789012:user/keyward/alice-*"
        );
        assert_eq!(
            create["Condition"]["StringEquals"]["aws:RequestTag/keyward-owner"],
            "alice"
        );
        let set_up = statement(&doc, "SetUpOwnersMachines");
        assert_eq!(
            set_up["Resource"],
            "arn:aws:iam::123456789012:user/keyward/alice-*"
        );
        assert!(
            set_up.get("Condition").is_none(),
            "untagged calls must not carry a tag condition"
        );
        let abort = statement(&doc, "AbortIncompleteSetup");
        assert_eq!(
            abort["Condition"]["Null"]["iam:ResourceTag/keyward-setup-complete"],
            "true"
        );
        assert_eq!(
            statement(&doc, "NamedGroups")["Resource"][0],
            "arn:aws:iam::123456789012:group/dev"
        );
        assert_eq!(
            statement(&doc, "NamedBuckets")["Resource"],
            serde_json::json!(["arn:aws:s3:::data"])
        );
        assert_eq!(
            statement(&doc, "NamedKeys")["Resource"][0],
            "arn:aws:kms:us-east-1:123456789012:key/k1"
        );
        let text = serde_json::to_string(&doc).unwrap();
        assert!(
            text.len() <= 2048,
            "session policies are capped at 2,048 characters: {}",
            text.len()
        );
        assert!(
            !text.contains("\"Resource\":\"*\"") || text.matches("\"Resource\":\"*\"").count() == 1,
            "only GetCallerIdentity is unscoped"
        );
    }

    #[test]
    fn deny_document_cuts_sessions_issued_before_now() {
        let doc = deny_sessions_before("2026-11-29T10:00:00Z");
        is_valid_iam(&doc);
        let s = &doc["Statement"][0];
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Action"], "*");
        assert_eq!(s["Resource"], "*");
        assert_eq!(
            s["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-11-29T10:00:00Z"
        );
    }
}
