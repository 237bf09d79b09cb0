//! Roles and customer-managed policies: keyward's own (the machine policy, the deny-all,
//! the role guard, the admin and enroller roles) and the roles it guards.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use super::{fail, found, gone_ok};
use crate::clients::Aws;

/// IAM returns policy documents URL-encoded.
pub fn decode_document(raw: &str) -> Result<Value> {
    serde_json::from_str(&decode_text(raw)).context("unreadable IAM policy document")
}

/// A policy document's JSON text, URL-decoded when IAM encoded it.
pub fn decode_text(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        raw.to_owned()
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned()
    }
}

/// A managed policy's default document, `None` when the policy does not exist.
pub async fn managed_policy(aws: &Aws, arn: &str) -> Result<Option<Value>> {
    let Some(pol) = found(
        aws.iam.get_policy().policy_arn(arn).send().await,
        "iam:GetPolicy",
    )?
    else {
        return Ok(None);
    };
    let version = pol
        .policy()
        .and_then(|p| p.default_version_id())
        .unwrap_or("v1")
        .to_owned();
    let out = aws
        .iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .map_err(|e| fail("iam:GetPolicyVersion", &e))?;
    let raw = out
        .policy_version()
        .and_then(|v| v.document())
        .unwrap_or("{}");
    Ok(Some(decode_document(raw)?))
}

pub async fn create_managed_policy(
    aws: &Aws,
    name: &str,
    description: &str,
    doc: &Value,
) -> Result<()> {
    aws.iam
        .create_policy()
        .policy_name(name)
        .path(super::documents::PATH)
        .description(description)
        .policy_document(doc.to_string())
        .send()
        .await
        .map_err(|e| fail("iam:CreatePolicy", &e))?;
    Ok(())
}

/// Makes `doc` the default version, deleting the oldest other version when IAM's
/// limit of five would be hit.
pub async fn set_managed_policy(aws: &Aws, arn: &str, doc: &Value) -> Result<()> {
    let versions = aws
        .iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| fail("iam:ListPolicyVersions", &e))?;
    if versions.versions().len() >= 5 {
        let oldest = versions
            .versions()
            .iter()
            .filter(|v| !v.is_default_version())
            .min_by_key(|v| v.create_date().map(aws_smithy_types::DateTime::secs))
            .and_then(|v| v.version_id());
        if let Some(v) = oldest {
            aws.iam
                .delete_policy_version()
                .policy_arn(arn)
                .version_id(v)
                .send()
                .await
                .map_err(|e| fail("iam:DeletePolicyVersion", &e))?;
        }
    }
    aws.iam
        .create_policy_version()
        .policy_arn(arn)
        .policy_document(doc.to_string())
        .set_as_default(true)
        .send()
        .await
        .map_err(|e| fail("iam:CreatePolicyVersion", &e))?;
    Ok(())
}

/// Deletes a managed policy and all its versions (it must be attached nowhere).
pub async fn delete_managed_policy(aws: &Aws, arn: &str) -> Result<()> {
    let listed = aws.iam.list_policy_versions().policy_arn(arn).send().await;
    let Some(versions) = found(listed, "iam:ListPolicyVersions")? else {
        return Ok(());
    };
    for v in versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
    {
        if let Some(id) = v.version_id() {
            aws.iam
                .delete_policy_version()
                .policy_arn(arn)
                .version_id(id)
                .send()
                .await
                .map_err(|e| fail("iam:DeletePolicyVersion", &e))?;
        }
    }
    gone_ok(
        aws.iam.delete_policy().policy_arn(arn).send().await,
        "iam:DeletePolicy",
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub trust: Value,
    pub boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
}

pub async fn get_role(aws: &Aws, name: &str) -> Result<Option<RoleInfo>> {
    let Some(out) = found(
        aws.iam.get_role().role_name(name).send().await,
        "iam:GetRole",
    )?
    else {
        return Ok(None);
    };
    let r = out.role().context("GetRole answered without a role")?;
    let tags = aws
        .iam
        .list_role_tags()
        .role_name(name)
        .send()
        .await
        .map_err(|e| fail("iam:ListRoleTags", &e))?
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    Ok(Some(RoleInfo {
        trust: r
            .assume_role_policy_document()
            .map(decode_document)
            .transpose()?
            .unwrap_or(Value::Null),
        boundary: r
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_owned),
        tags,
    }))
}

pub async fn create_role(
    aws: &Aws,
    name: &str,
    description: &str,
    trust: &Value,
    boundary: &str,
) -> Result<()> {
    aws.iam
        .create_role()
        .role_name(name)
        .path(super::documents::PATH)
        .description(description)
        .assume_role_policy_document(trust.to_string())
        .permissions_boundary(boundary)
        .max_session_duration(3600)
        .send()
        .await
        .map_err(|e| fail("iam:CreateRole", &e))?;
    Ok(())
}

pub async fn set_trust(aws: &Aws, role: &str, trust: &Value) -> Result<()> {
    aws.iam
        .update_assume_role_policy()
        .role_name(role)
        .policy_document(trust.to_string())
        .send()
        .await
        .map_err(|e| fail("iam:UpdateAssumeRolePolicy", &e))?;
    Ok(())
}

pub async fn set_boundary(aws: &Aws, role: &str, boundary: &str) -> Result<()> {
    aws.iam
        .put_role_permissions_boundary()
        .role_name(role)
        .permissions_boundary(boundary)
        .send()
        .await
        .map_err(|e| fail("iam:PutRolePermissionsBoundary", &e))?;
    Ok(())
}

pub async fn inline_policy(aws: &Aws, role: &str, name: &str) -> Result<Option<Value>> {
    let got = aws.iam.get_role_policy().role_name(role).policy_name(name);
    found(got.send().await, "iam:GetRolePolicy")?
        .map(|out| decode_document(out.policy_document()))
        .transpose()
}

pub async fn put_inline_policy(aws: &Aws, role: &str, name: &str, doc: &Value) -> Result<()> {
    aws.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(doc.to_string())
        .send()
        .await
        .map_err(|e| fail("iam:PutRolePolicy", &e))?;
    Ok(())
}

pub async fn tag_role(aws: &Aws, role: &str, key: &str, value: &str) -> Result<()> {
    aws.iam
        .tag_role()
        .role_name(role)
        .tags(super::users::tag(key, value))
        .send()
        .await
        .map_err(|e| fail("iam:TagRole", &e))?;
    Ok(())
}

/// The roles whose sessions keyward can cut off: those under `/keyward/`, and the
/// ones `keyward init --guard-role` recorded in the machine policy (`extra`, as ARNs).
pub async fn guarded_roles(aws: &Aws, extra: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = extra
        .iter()
        .filter_map(|arn| arn.rsplit('/').next().map(str::to_owned))
        .collect();
    let mut marker = None;
    loop {
        let page = aws
            .iam
            .list_roles()
            .path_prefix(super::documents::PATH)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| fail("iam:ListRoles", &e))?;
        out.extend(page.roles().iter().map(|r| r.role_name().to_owned()));
        if page.is_truncated() {
            marker = page.marker().map(str::to_owned);
        } else {
            break;
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_documents_are_decoded() {
        let v = decode_document("%7B%22Version%22%3A%222012-10-17%22%7D").unwrap();
        assert_eq!(v["Version"], "2012-10-17");
        assert_eq!(decode_document("{\"a\":1}").unwrap()["a"], 1);
    }
}
