//! Reading and writing an application's pieces in AWS: its KMS key and alias, group,
//! role and instance profile, and the list of apps (the roles `/keyward/app-*`).

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::apps::{self, App};
use super::documents::{Arns, PATH};
use super::{fail, found, gone_ok, roles, users};
use crate::clients::Aws;

/// A KMS key as keyward checks it before using it for an app.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub arn: String,
    pub symmetric: bool,
    pub enabled: bool,
}

pub async fn describe_key(aws: &Aws, key: &str) -> Result<Option<KeyInfo>> {
    let Some(out) = found(
        aws.kms.describe_key().key_id(key).send().await,
        "kms:DescribeKey",
    )?
    else {
        return Ok(None);
    };
    let m = out
        .key_metadata()
        .context("DescribeKey answered without a key")?;
    let spec = m
        .key_spec()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let usage = m
        .key_usage()
        .map(|u| u.as_str().to_owned())
        .unwrap_or_default();
    Ok(Some(KeyInfo {
        arn: m.arn().unwrap_or_default().to_owned(),
        symmetric: spec == "SYMMETRIC_DEFAULT" && usage == "ENCRYPT_DECRYPT",
        enabled: m.enabled(),
    }))
}

/// The app's key by its alias.
pub async fn app_key(aws: &Aws, name: &str) -> Result<Option<String>> {
    Ok(describe_key(aws, &apps::alias(name)).await?.map(|k| k.arn))
}

/// A key keyward created for the app but never aliased (a run killed in between).
async fn orphan_key(aws: &Aws, name: &str) -> Result<Option<String>> {
    let keys = aws
        .kms
        .list_keys()
        .send()
        .await
        .map_err(|e| fail("kms:ListKeys", &e))?;
    for k in keys.keys() {
        let Some(id) = k.key_id() else { continue };
        let ours = key_is_ours(aws, id, name).await.unwrap_or(false);
        if ours && describe_key(aws, id).await?.is_some_and(|i| i.enabled) {
            return Ok(Some(k.key_arn().unwrap_or(id).to_owned()));
        }
    }
    Ok(None)
}

/// Creates the app's key (or adopts one a killed run created) and its alias.
pub async fn create_key(aws: &Aws, a: &Arns, name: &str) -> Result<String> {
    let arn = match orphan_key(aws, name).await? {
        Some(arn) => arn,
        None => {
            let out = aws
                .kms
                .create_key()
                .description(format!("keyward app {name}: its data"))
                .policy(apps::new_key_policy(a).to_string())
                .tags(
                    aws_sdk_kms::types::Tag::builder()
                        .tag_key(apps::TAG_APP)
                        .tag_value(name)
                        .build()?,
                )
                .send()
                .await
                .map_err(|e| fail("kms:CreateKey", &e))?;
            let m = out
                .key_metadata()
                .context("CreateKey answered without a key")?;
            m.arn().unwrap_or(m.key_id()).to_owned()
        }
    };
    alias_key(aws, name, &arn).await?;
    Ok(arn)
}

pub async fn alias_key(aws: &Aws, name: &str, arn: &str) -> Result<()> {
    aws.kms
        .create_alias()
        .alias_name(apps::alias(name))
        .target_key_id(arn)
        .send()
        .await
        .map_err(|e| fail("kms:CreateAlias", &e))?;
    Ok(())
}

/// Whether keyward created this key for the app (it then may schedule its deletion).
pub async fn key_is_ours(aws: &Aws, arn: &str, name: &str) -> Result<bool> {
    let tags = aws
        .kms
        .list_resource_tags()
        .key_id(arn)
        .send()
        .await
        .map_err(|e| fail("kms:ListResourceTags", &e))?;
    Ok(tags
        .tags()
        .iter()
        .any(|t| t.tag_key() == apps::TAG_APP && t.tag_value() == name))
}

pub async fn retire_key(aws: &Aws, name: &str, arn: &str) -> Result<()> {
    let alias = aws.kms.delete_alias().alias_name(apps::alias(name));
    gone_ok(alias.send().await, "kms:DeleteAlias")?;
    // By id: AWS takes either, moto only the id.
    let id = arn.rsplit('/').next().unwrap_or(arn);
    aws.kms
        .schedule_key_deletion()
        .key_id(id)
        .pending_window_in_days(30)
        .send()
        .await
        .map_err(|e| fail("kms:ScheduleKeyDeletion", &e))?;
    Ok(())
}

pub async fn group_policy(aws: &Aws, group: &str) -> Result<Option<Value>> {
    let got = aws
        .iam
        .get_group_policy()
        .group_name(group)
        .policy_name(apps::POLICY);
    found(got.send().await, "iam:GetGroupPolicy")?
        .map(|out| roles::decode_document(out.policy_document()))
        .transpose()
}

/// What a group holds that keyward did not write: attached policies, other inline
/// policies, members outside `/keyward/`. An app never takes such a group over.
pub async fn foreign_in_group(aws: &Aws, group: &str) -> Result<Vec<String>> {
    let Some(policies) = users::group_policies(aws, group).await? else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = policies
        .attached
        .iter()
        .map(|(name, _)| format!("attached policy {name}"))
        .collect();
    for name in policies.inline.iter().filter(|n| *n != apps::POLICY) {
        out.push(format!("inline policy {name}"));
    }
    let users = aws
        .iam
        .get_group()
        .group_name(group)
        .send()
        .await
        .map_err(|e| fail("iam:GetGroup", &e))?;
    for u in users.users().iter().filter(|u| u.path() != PATH) {
        out.push(format!("member {}", u.user_name()));
    }
    Ok(out)
}

pub async fn put_group_policy(aws: &Aws, group: &str, doc: &Value) -> Result<()> {
    if !users::group_exists(aws, group).await? {
        aws.iam
            .create_group()
            .group_name(group)
            .send()
            .await
            .map_err(|e| fail("iam:CreateGroup", &e))?;
    }
    aws.iam
        .put_group_policy()
        .group_name(group)
        .policy_name(apps::POLICY)
        .policy_document(doc.to_string())
        .send()
        .await
        .map_err(|e| fail("iam:PutGroupPolicy", &e))?;
    Ok(())
}

/// The group's members (user names).
pub async fn members(aws: &Aws, group: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let got = aws
            .iam
            .get_group()
            .group_name(group)
            .set_marker(marker.clone());
        let Some(page) = found(got.send().await, "iam:GetGroup")? else {
            return Ok(out);
        };
        out.extend(page.users().iter().map(|u| u.user_name().to_owned()));
        if !page.is_truncated() {
            break;
        }
        marker = page.marker().map(str::to_owned);
    }
    Ok(out)
}

/// Removes every member, the policy, then the group. Idempotent.
pub async fn delete_group(aws: &Aws, group: &str) -> Result<()> {
    for user in members(aws, group).await? {
        users::remove_from_group(aws, &user, group).await?;
    }
    let policy = aws
        .iam
        .delete_group_policy()
        .group_name(group)
        .policy_name(apps::POLICY);
    gone_ok(policy.send().await, "iam:DeleteGroupPolicy")?;
    gone_ok(
        aws.iam.delete_group().group_name(group).send().await,
        "iam:DeleteGroup",
    )?;
    Ok(())
}

/// Whether the instance profile exists and holds the role.
pub async fn instance_profile(aws: &Aws, name: &str) -> Result<Option<bool>> {
    let got = aws.iam.get_instance_profile().instance_profile_name(name);
    let out = found(got.send().await, "iam:GetInstanceProfile")?;
    Ok(out.map(|out| {
        out.instance_profile()
            .is_some_and(|p| p.roles().iter().any(|r| r.role_name() == name))
    }))
}

pub async fn make_instance_profile(aws: &Aws, name: &str) -> Result<()> {
    if instance_profile(aws, name).await?.is_none() {
        aws.iam
            .create_instance_profile()
            .instance_profile_name(name)
            .path(PATH)
            .send()
            .await
            .map_err(|e| fail("iam:CreateInstanceProfile", &e))?;
    }
    aws.iam
        .add_role_to_instance_profile()
        .instance_profile_name(name)
        .role_name(name)
        .send()
        .await
        .map_err(|e| fail("iam:AddRoleToInstanceProfile", &e))?;
    Ok(())
}

/// Deletes the instance profile, the role's policy and the role. Idempotent.
pub async fn delete_role(aws: &Aws, name: &str) -> Result<()> {
    if let Some(holds) = instance_profile(aws, name).await? {
        if holds {
            aws.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(name)
                .send()
                .await
                .map_err(|e| fail("iam:RemoveRoleFromInstanceProfile", &e))?;
        }
        aws.iam
            .delete_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(|e| fail("iam:DeleteInstanceProfile", &e))?;
    }
    let policy = aws
        .iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(apps::POLICY);
    gone_ok(policy.send().await, "iam:DeleteRolePolicy")?;
    gone_ok(
        aws.iam.delete_role().role_name(name).send().await,
        "iam:DeleteRole",
    )?;
    Ok(())
}

/// An app as it is in AWS.
#[derive(Debug, Clone, Serialize)]
pub struct AppRecord {
    pub app: App,
    pub role_arn: String,
    pub members: Vec<String>,
    pub instance_profile: bool,
    #[serde(skip)]
    pub trust: Value,
    #[serde(skip)]
    pub role_policy: Option<Value>,
    #[serde(skip)]
    pub boundary: Option<String>,
}

/// The app `name`, read from its role; `None` when there is no such app.
pub async fn read_app(aws: &Aws, a: &Arns, name: &str) -> Result<Option<AppRecord>> {
    let id = apps::id(name);
    let Some(role) = roles::get_role(aws, &id).await? else {
        return Ok(None);
    };
    if role.tags.get(apps::TAG_APP).map(String::as_str) != Some(name) {
        bail!("role {id} exists but keyward did not make it for an app (no {} tag); choose another app name", apps::TAG_APP);
    }
    let role_policy = roles::inline_policy(aws, &id, apps::POLICY).await?;
    let (buckets, key) = role_policy
        .as_ref()
        .map(apps::policy_data)
        .unwrap_or_default();
    let key = match key {
        Some(k) => k,
        None => app_key(aws, name).await?.unwrap_or_default(),
    };
    Ok(Some(AppRecord {
        app: App {
            name: name.to_owned(),
            buckets,
            key,
            runtimes: apps::trust_runtimes(&role.trust),
        },
        role_arn: a.role(&id),
        members: members(aws, &id).await?,
        instance_profile: instance_profile(aws, &id).await?.unwrap_or(false),
        trust: role.trust,
        role_policy,
        boundary: role.boundary,
    }))
}

/// The names of the apps in the account.
pub async fn app_names(aws: &Aws) -> Result<Vec<String>> {
    let roles = roles::guarded_roles(aws, &[]).await?;
    Ok(roles
        .into_iter()
        .filter_map(|r| r.strip_prefix(apps::PREFIX).map(str::to_owned))
        .collect())
}
