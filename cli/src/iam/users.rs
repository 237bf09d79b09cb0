//! Machine users: the IAM users under `/keyward/`, their tags, groups and policies.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_sdk_iam::types::Tag;

use super::documents::{self as docs, TAG_ENROLLED, TAG_OWNER, TAG_REVOKED_AT};
use super::{fail, found, gone_ok, is_denied};
use crate::clients::Aws;

pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value set")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub tags: BTreeMap<String, String>,
}

impl UserInfo {
    pub fn owner(&self) -> Option<&str> {
        self.tags.get(TAG_OWNER).map(String::as_str)
    }

    pub fn machine(&self) -> Option<&str> {
        self.tags.get(docs::TAG_MACHINE).map(String::as_str)
    }

    pub fn revoked_at(&self) -> Option<&str> {
        self.tags.get(TAG_REVOKED_AT).map(String::as_str)
    }

    pub fn is_enrolled(&self) -> bool {
        self.tags.contains_key(TAG_ENROLLED)
    }

    /// A keyward machine: under `/keyward/` with an owner tag.
    pub fn is_machine(&self) -> bool {
        self.path == docs::PATH && self.owner().is_some()
    }
}

pub async fn get_user(aws: &Aws, name: &str) -> Result<Option<UserInfo>> {
    let Some(out) = found(
        aws.iam.get_user().user_name(name).send().await,
        "iam:GetUser",
    )?
    else {
        return Ok(None);
    };
    let u = out.user().context("GetUser answered without a user")?;
    // GetUser does not always carry tags; ListUserTags does.
    let tags = aws
        .iam
        .list_user_tags()
        .user_name(name)
        .send()
        .await
        .map_err(|e| fail("iam:ListUserTags", &e))?
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    Ok(Some(UserInfo {
        name: u.user_name().to_owned(),
        arn: u.arn().to_owned(),
        path: u.path().to_owned(),
        tags,
    }))
}

pub async fn create_user(aws: &Aws, name: &str, tags: Vec<Tag>) -> Result<()> {
    aws.iam
        .create_user()
        .user_name(name)
        .path(docs::PATH)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| fail("iam:CreateUser", &e))?;
    Ok(())
}

pub async fn tag_user(aws: &Aws, name: &str, tags: Vec<Tag>) -> Result<()> {
    aws.iam
        .tag_user()
        .user_name(name)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| fail("iam:TagUser", &e))?;
    Ok(())
}

pub async fn attach_policy(aws: &Aws, user: &str, policy_arn: &str) -> Result<()> {
    aws.iam
        .attach_user_policy()
        .user_name(user)
        .policy_arn(policy_arn)
        .send()
        .await
        .map_err(|e| fail("iam:AttachUserPolicy", &e))?;
    Ok(())
}

pub async fn detach_policy(aws: &Aws, user: &str, policy_arn: &str) -> Result<()> {
    let detach = aws
        .iam
        .detach_user_policy()
        .user_name(user)
        .policy_arn(policy_arn);
    gone_ok(detach.send().await, "iam:DetachUserPolicy")?;
    Ok(())
}

pub async fn attached_policies(aws: &Aws, user: &str) -> Result<Vec<String>> {
    let out = aws
        .iam
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await;
    let Some(out) = found(out, "iam:ListAttachedUserPolicies")? else {
        return Ok(Vec::new());
    };
    Ok(out
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect())
}

pub async fn inline_policies(aws: &Aws, user: &str) -> Result<Vec<String>> {
    let out = aws.iam.list_user_policies().user_name(user).send().await;
    let Some(out) = found(out, "iam:ListUserPolicies")? else {
        return Ok(Vec::new());
    };
    Ok(out.policy_names().to_vec())
}

pub async fn delete_inline_policy(aws: &Aws, user: &str, name: &str) -> Result<()> {
    let delete = aws
        .iam
        .delete_user_policy()
        .user_name(user)
        .policy_name(name);
    gone_ok(delete.send().await, "iam:DeleteUserPolicy")?;
    Ok(())
}

pub async fn group_exists(aws: &Aws, group: &str) -> Result<bool> {
    let out = found(
        aws.iam.get_group().group_name(group).send().await,
        "iam:GetGroup",
    )?;
    Ok(out.is_some())
}

/// A group's inline policy names and attached policies (name, ARN); `None` when
/// there is no such group.
pub async fn group_policies(aws: &Aws, group: &str) -> Result<Option<GroupPolicies>> {
    let listed = aws.iam.list_group_policies().group_name(group).send().await;
    let Some(inline) = found(listed, "iam:ListGroupPolicies")? else {
        return Ok(None);
    };
    let inline = inline.policy_names().to_vec();
    let attached = aws
        .iam
        .list_attached_group_policies()
        .group_name(group)
        .send()
        .await
        .map_err(|e| fail("iam:ListAttachedGroupPolicies", &e))?
        .attached_policies()
        .iter()
        .map(|p| {
            let name = p.policy_name().unwrap_or_default().to_owned();
            (name, p.policy_arn().unwrap_or_default().to_owned())
        })
        .collect();
    Ok(Some(GroupPolicies { inline, attached }))
}

pub struct GroupPolicies {
    pub inline: Vec<String>,
    /// (name, ARN)
    pub attached: Vec<(String, String)>,
}

pub async fn groups_for_user(aws: &Aws, user: &str) -> Result<Vec<String>> {
    let out = aws.iam.list_groups_for_user().user_name(user).send().await;
    let Some(out) = found(out, "iam:ListGroupsForUser")? else {
        return Ok(Vec::new());
    };
    Ok(out
        .groups()
        .iter()
        .map(|g| g.group_name().to_owned())
        .collect())
}

pub async fn add_to_group(aws: &Aws, user: &str, group: &str) -> Result<()> {
    aws.iam
        .add_user_to_group()
        .user_name(user)
        .group_name(group)
        .send()
        .await
        .map_err(|e| fail(&format!("iam:AddUserToGroup {group}"), &e))?;
    Ok(())
}

pub async fn remove_from_group(aws: &Aws, user: &str, group: &str) -> Result<()> {
    let remove = aws
        .iam
        .remove_user_from_group()
        .user_name(user)
        .group_name(group);
    gone_ok(
        remove.send().await,
        &format!("iam:RemoveUserFromGroup {group}"),
    )?;
    Ok(())
}

pub async fn delete_user(aws: &Aws, user: &str) -> Result<()> {
    gone_ok(
        aws.iam.delete_user().user_name(user).send().await,
        "iam:DeleteUser",
    )?;
    Ok(())
}

/// The keyward machine users, optionally of one owner, sorted by name.
pub async fn machine_users(aws: &Aws, owner: Option<&str>) -> Result<Vec<UserInfo>> {
    let mut users = Vec::new();
    let mut marker = None;
    loop {
        let out = aws
            .iam
            .list_users()
            .path_prefix(docs::PATH)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| fail("iam:ListUsers", &e))?;
        for u in out.users() {
            // Another owner's machine is not readable by a machine: not ours to list.
            match get_user(aws, u.user_name()).await {
                Ok(Some(info)) if info.is_machine() => {
                    if owner.is_none_or(|o| info.owner() == Some(o)) {
                        users.push(info);
                    }
                }
                Ok(_) => {}
                Err(e) if owner.is_some() && is_denied(&e) => {}
                Err(e) => return Err(e),
            }
        }
        if out.is_truncated() {
            marker = out.marker().map(str::to_owned);
        } else {
            break;
        }
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}
