//! The data: buckets that are public (policy, ACL, Block Public Access off), shared
//! with other accounts, or take unencrypted uploads; KMS keys open to `*` or other
//! accounts; and dangling principal ids in bucket, key and trust policies.

use anyhow::Result;
use serde_json::Value;

use super::fix::Repair;
use super::{is_dangling_id, Finding, Severity};
use crate::clients::Aws;
use crate::iam::resources::PolicyHome;
use crate::iam::snapshot::Snapshot;
use crate::iam::{policy, AwsError};

/// Every principal string of a statement's `Principal` (`"*"` included).
fn principals(st: &Value) -> Vec<String> {
    match &st["Principal"] {
        Value::String(s) => vec![s.clone()],
        Value::Object(m) => m
            .values()
            .flat_map(|v| match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The account id a principal names (an ARN or a bare id), if any.
fn account_of(p: &str) -> Option<&str> {
    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return Some(p);
    }
    p.strip_prefix("arn:aws:")?
        .split(':')
        .nth(2)
        .filter(|a| !a.is_empty())
}

fn allows(st: &Value) -> bool {
    st["Effect"] == "Allow"
}

/// Allow statements open to anyone (`*`) with no condition to narrow them.
fn open_to_all(doc: &Value) -> bool {
    policy::statements(doc).iter().any(|st| {
        allows(st) && st.get("Condition").is_none() && principals(st).iter().any(|p| p == "*")
    })
}

/// Other accounts an allow statement names.
fn other_accounts(doc: &Value, account: &str) -> Vec<String> {
    let mut out: Vec<String> = policy::statements(doc)
        .iter()
        .filter(|st| allows(st))
        .flat_map(|st| principals(st))
        .filter_map(|p| account_of(&p).map(str::to_owned))
        .filter(|a| a != account)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Principal ids left behind by deleted users and roles.
pub fn dangling(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = policy::statements(doc)
        .iter()
        .flat_map(|st| principals(st))
        .filter(|p| is_dangling_id(p))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A Deny of s3:PutObject unless the upload names aws:kms: the article's "encrypt".
pub fn enforces_encryption(doc: &Value) -> bool {
    policy::statements(doc).iter().any(|st| {
        let puts = match &st["Action"] {
            Value::String(a) => a == "s3:PutObject" || a == "s3:*",
            Value::Array(a) => a.iter().any(|x| x == "s3:PutObject" || x == "s3:*"),
            _ => false,
        };
        st["Effect"] == "Deny"
            && puts
            && st["Condition"]
                .to_string()
                .contains("s3:x-amz-server-side-encryption")
    })
}

fn dangling_finding(home: PolicyHome, ids: Vec<String>) -> Finding {
    Finding::new(
        Severity::Medium,
        "dangling-principal",
        format!("names {} — what AWS leaves when a named user or role is deleted: a checklist was skipped", ids.join(", ")),
        home.to_string(),
        "remove them from the policy (`keyward audit --fix` does)",
    )
    .repair(Repair::StripPrincipals { home, ids })
}

/// Buckets: public, shared, unencrypted, dangling.
pub async fn buckets(aws: &Aws, account: &str) -> Result<Vec<Finding>> {
    let list = aws
        .s3
        .list_buckets()
        .send()
        .await
        .map_err(|e| crate::iam::fail("s3:ListAllMyBuckets", &e))?;
    let mut out = Vec::new();
    for b in list.buckets() {
        let Some(name) = b.name() else { continue };
        out.extend(bucket(aws, account, name).await?);
    }
    Ok(out)
}

async fn bucket(aws: &Aws, account: &str, name: &str) -> Result<Vec<Finding>> {
    let at = format!("s3://{name}");
    let mut out = Vec::new();
    let block = Repair::BlockPublicAccess {
        bucket: name.to_owned(),
    };
    // With Block Public Access fully on, AWS ignores public policies and ACLs.
    let blocked = match aws.s3.get_public_access_block().bucket(name).send().await {
        Ok(o) => o.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(_) => false,
    };
    let doc = match aws.s3.get_bucket_policy().bucket(name).send().await {
        Ok(o) => o
            .policy()
            .and_then(|p| serde_json::from_str::<Value>(p).ok()),
        Err(e) => match AwsError::new("s3:GetBucketPolicy", &e) {
            e if e.is_no_bucket_policy() => None,
            e => {
                return Err(e
                    .reworded(|d| format!("cannot read the policy of {at}: {d}"))
                    .into())
            }
        },
    };
    if let Some(d) = &doc {
        if open_to_all(d) && !blocked {
            out.push(Finding::new(Severity::High, "bucket-public-policy", "its policy allows anyone (`*`) with no condition", &at,
                "remove that statement; `keyward audit --fix` turns on Block Public Access, which makes AWS ignore it").repair(block.clone()));
        }
        let others = other_accounts(d, account);
        if !others.is_empty() {
            out.push(Finding::new(Severity::High, "bucket-cross-account", format!("its policy grants other accounts: {}", others.join(", ")), &at,
                "remove them unless they are yours on purpose; prefer a role in this account they can assume"));
        }
        let ids = dangling(d);
        if !ids.is_empty() {
            out.push(dangling_finding(PolicyHome::Bucket(name.to_owned()), ids));
        }
    }
    if !doc.as_ref().is_some_and(enforces_encryption) {
        out.push(Finding::new(Severity::Low, "bucket-no-encryption-enforcement", "uploads without KMS encryption are not denied", &at,
            "deny s3:PutObject unless s3:x-amz-server-side-encryption is aws:kms (`keyward audit --fix` adds it)")
            .repair(Repair::DenyUnencrypted { bucket: name.to_owned() }));
    }
    if let Ok(acl) = aws
        .s3
        .get_bucket_acl()
        .bucket(name)
        .send()
        .await
        .map_err(|_| ())
        .and_then(|a| if blocked { Err(()) } else { Ok(a) })
    {
        let public = acl.grants().iter().any(|g| {
            g.grantee().and_then(|x| x.uri()).is_some_and(|u| {
                u.ends_with("/global/AllUsers") || u.ends_with("/global/AuthenticatedUsers")
            })
        });
        if public {
            out.push(Finding::new(Severity::High, "bucket-public-acl", "its ACL grants AllUsers or AuthenticatedUsers", &at,
                "remove the grant; `keyward audit --fix` turns on Block Public Access, which makes AWS ignore it").repair(block.clone()));
        }
    }
    if !blocked {
        out.push(Finding::new(Severity::Medium, "bucket-public-access-block-off", "Block Public Access is not fully on", &at,
            format!("`aws s3api put-public-access-block --bucket {name} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true` (`keyward audit --fix` does)")).repair(block));
    }
    if aws
        .s3
        .get_bucket_encryption()
        .bucket(name)
        .send()
        .await
        .is_err()
    {
        out.push(Finding::new(Severity::Low, "bucket-default-encryption", "no default encryption is configured", &at,
            format!("`aws s3api put-bucket-encryption --bucket {name}` with SSE-KMS and a key keyward manages")));
    }
    Ok(out)
}

/// KMS keys the account manages: open to `*`, other accounts, dangling ids.
pub async fn kms_keys(aws: &Aws, account: &str) -> Result<Vec<Finding>> {
    let mut keys = Vec::new();
    let mut pages = aws.kms.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| crate::iam::fail("kms:ListKeys", &e))?;
        keys.extend(
            page.keys()
                .iter()
                .filter_map(|k| k.key_arn().map(str::to_owned)),
        );
    }
    let mut out = Vec::new();
    for arn in &keys {
        let arn = arn.as_str();
        let Ok(meta) = aws.kms.describe_key().key_id(arn).send().await else {
            continue;
        };
        if meta
            .key_metadata()
            .and_then(|m| m.key_manager())
            .is_some_and(|m| m.as_str() == "AWS")
        {
            continue;
        }
        let Ok(p) = aws
            .kms
            .get_key_policy()
            .key_id(arn)
            .policy_name("default")
            .send()
            .await
        else {
            continue;
        };
        let Some(doc) = p
            .policy()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
        else {
            continue;
        };
        if open_to_all(&doc) {
            out.push(Finding::new(
                Severity::High,
                "kms-public",
                "its key policy allows anyone (`*`) with no condition",
                arn,
                "remove that statement: name the account root and the principals that use the key",
            ));
        }
        let others = other_accounts(&doc, account);
        if !others.is_empty() {
            out.push(Finding::new(
                Severity::High,
                "kms-cross-account",
                format!(
                    "its key policy grants other accounts: {}",
                    others.join(", ")
                ),
                arn,
                "remove them unless they are yours on purpose",
            ));
        }
        let ids = dangling(&doc);
        if !ids.is_empty() {
            out.push(dangling_finding(PolicyHome::Key(arn.to_owned()), ids));
        }
    }
    Ok(out)
}

/// Role trust policies naming deleted principals.
pub fn trusts(s: &Snapshot) -> Vec<Finding> {
    s.roles
        .iter()
        .filter_map(|r| {
            let ids = dangling(r.trust.as_ref()?);
            (!ids.is_empty()).then(|| dangling_finding(PolicyHome::Trust(r.name.clone()), ids))
        })
        .collect()
}

/// Just-in-time grants past their expiry (and the longest session): AWS already denies
/// them; their statements only clutter the role's trust and the role guard.
pub fn expired_jit(s: &Snapshot, now: std::time::SystemTime) -> Vec<Finding> {
    use crate::iam::jit;
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    let mut out = Vec::new();
    for r in s
        .roles
        .iter()
        .filter(|r| r.path == crate::iam::documents::PATH)
    {
        let (Some(group), Some(trust)) = (r.name.strip_prefix(jit::PREFIX), r.trust.as_ref())
        else {
            continue;
        };
        let expired: Vec<String> = jit::trust_grants(group, trust)
            .into_iter()
            .filter(|g| g.prunable(now))
            .map(|g| g.machine)
            .collect();
        if !expired.is_empty() {
            out.push(
                Finding::new(
                    Severity::Low,
                    "jit-expired",
                    format!(
                        "expired just-in-time grants of {group} to {} (AWS denies them already)",
                        expired.join(", ")
                    ),
                    format!("role {}", r.name),
                    "`keyward audit --fix` removes them from the trust and the role guard",
                )
                .repair(Repair::PruneJit {
                    group: group.to_owned(),
                    account: s.account.clone(),
                }),
            );
        }
    }
    out
}
