//! IAM, S3 and KMS operations that setup, enroll and revoke are made of. Each one is
//! idempotent or reports exactly what it found.

pub mod documents;
pub mod policy;

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{StatusType, Tag};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::aws::Aws;
use crate::ui;

/// "Code: message" of an SDK error, for humans.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or("no message")
            )
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "could not reach AWS (network)".to_owned(),
        other => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        ),
    }
}

pub fn code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

fn fail<E, R>(what: &str, err: &SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    anyhow::anyhow!("{what} failed: {}", describe(err))
}

pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value set")
}

#[derive(Debug, Clone)]
pub struct UserInfo {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub tags: BTreeMap<String, String>,
}

impl UserInfo {
    pub fn owner(&self) -> Option<&str> {
        self.tags.get(documents::TAG_OWNER).map(String::as_str)
    }

    /// Values of a space-separated list tag, split over numbered tags if long.
    pub fn list_tag(&self, key: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(k, _)| {
                *k == key
                    || k.strip_prefix(key).is_some_and(|r| {
                        r.starts_with('-') && r[1..].chars().all(|c| c.is_ascii_digit())
                    })
            })
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }
}

/// Splits a list into tag values of at most 256 characters: `key`, `key-2`, `key-3`…
pub fn list_tags(key: &str, items: &[String]) -> Vec<Tag> {
    let mut chunks: Vec<String> = vec![String::new()];
    for item in items {
        let last = chunks.last_mut().expect("one chunk");
        if !last.is_empty() && last.len() + 1 + item.len() > 256 {
            chunks.push(item.clone());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(item);
        }
    }
    chunks
        .iter()
        .enumerate()
        .map(|(i, v)| {
            tag(
                &if i == 0 {
                    key.to_owned()
                } else {
                    format!("{key}-{}", i + 1)
                },
                v,
            )
        })
        .collect()
}

pub async fn get_user(aws: &Aws, name: &str) -> Result<Option<UserInfo>> {
    match aws.iam.get_user().user_name(name).send().await {
        Ok(out) => {
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
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(fail("iam:GetUser", &e)),
    }
}

pub async fn create_user(aws: &Aws, name: &str, tags: Vec<Tag>) -> Result<UserInfo> {
    aws.iam
        .create_user()
        .user_name(name)
        .path(documents::PATH)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| fail("iam:CreateUser", &e))?;
    get_user(aws, name)
        .await?
        .context("the new user is not visible yet")
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

pub async fn attached_policies(aws: &Aws, user: &str) -> Result<Vec<String>> {
    let out = aws
        .iam
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await
        .map_err(|e| fail("iam:ListAttachedUserPolicies", &e))?;
    Ok(out
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect())
}

pub async fn mfa_devices(aws: &Aws, user: &str) -> Result<Vec<String>> {
    let out = aws
        .iam
        .list_mfa_devices()
        .user_name(user)
        .send()
        .await
        .map_err(|e| fail("iam:ListMFADevices", &e))?;
    Ok(out
        .mfa_devices()
        .iter()
        .map(|d| d.serial_number().to_owned())
        .collect())
}

/// Creates a virtual MFA device and returns its serial and base32 seed.
pub async fn create_virtual_mfa(aws: &Aws, name: &str) -> Result<(String, Zeroizing<String>)> {
    let out = aws
        .iam
        .create_virtual_mfa_device()
        .virtual_mfa_device_name(name)
        .send()
        .await
        .map_err(|e| fail("iam:CreateVirtualMFADevice", &e))?;
    let dev = out
        .virtual_mfa_device()
        .context("no device in the answer")?;
    let seed = dev
        .base32_string_seed()
        .context("the answer carries no Base32StringSeed")?;
    let seed = Zeroizing::new(String::from_utf8_lossy(seed.as_ref()).into_owned());
    Ok((dev.serial_number().to_owned(), seed))
}

/// Deletes an unassigned virtual MFA device named `name` (left by an interrupted run).
pub async fn delete_stray_virtual_mfa(aws: &Aws, account: &str, name: &str) -> Result<bool> {
    let serial = format!("arn:aws:iam::{account}:mfa/{name}");
    let stray = aws
        .iam
        .list_virtual_mfa_devices()
        .assignment_status(aws_sdk_iam::types::AssignmentStatusType::Unassigned)
        .send()
        .await
        .map_err(|e| fail("iam:ListVirtualMFADevices", &e))?
        .virtual_mfa_devices()
        .iter()
        .any(|d| d.serial_number() == serial);
    if !stray {
        return Ok(false);
    }
    match aws
        .iam
        .delete_virtual_mfa_device()
        .serial_number(&serial)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(false),
        Err(e) => Err(fail("iam:DeleteVirtualMFADevice", &e)),
    }
}

pub async fn enable_mfa(aws: &Aws, user: &str, serial: &str, c1: &str, c2: &str) -> Result<()> {
    aws.iam
        .enable_mfa_device()
        .user_name(user)
        .serial_number(serial)
        .authentication_code1(c1)
        .authentication_code2(c2)
        .send()
        .await
        .map_err(|e| fail("iam:EnableMFADevice", &e))?;
    Ok(())
}

pub async fn remove_mfa(aws: &Aws, user: &str, serial: &str) -> Result<()> {
    match aws
        .iam
        .deactivate_mfa_device()
        .user_name(user)
        .serial_number(serial)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if code(&e) == Some("NoSuchEntity") => {}
        Err(e) => return Err(fail("iam:DeactivateMFADevice", &e)),
    }
    match aws
        .iam
        .delete_virtual_mfa_device()
        .serial_number(serial)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(()),
        Err(e) => Err(fail("iam:DeleteVirtualMFADevice", &e)),
    }
}

pub async fn group_exists(aws: &Aws, group: &str) -> Result<bool> {
    match aws.iam.get_group().group_name(group).send().await {
        Ok(_) => Ok(true),
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(false),
        Err(e) => Err(fail("iam:GetGroup", &e)),
    }
}

pub async fn groups_for_user(aws: &Aws, user: &str) -> Result<Vec<String>> {
    let out = aws
        .iam
        .list_groups_for_user()
        .user_name(user)
        .send()
        .await
        .map_err(|e| fail("iam:ListGroupsForUser", &e))?;
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
    match aws
        .iam
        .remove_user_from_group()
        .user_name(user)
        .group_name(group)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(()),
        Err(e) => Err(fail(&format!("iam:RemoveUserFromGroup {group}"), &e)),
    }
}

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
}

pub async fn access_keys(aws: &Aws, user: &str) -> Result<Vec<KeyInfo>> {
    let out = aws
        .iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map_err(|e| fail("iam:ListAccessKeys", &e))?;
    Ok(out
        .access_key_metadata()
        .iter()
        .map(|k| KeyInfo {
            id: k.access_key_id().unwrap_or_default().to_owned(),
        })
        .collect())
}

pub async fn create_access_key(aws: &Aws, user: &str) -> Result<(String, Zeroizing<String>)> {
    let out = aws
        .iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .map_err(|e| fail("iam:CreateAccessKey", &e))?;
    let k = out.access_key().context("no key in the answer")?;
    Ok((
        k.access_key_id().to_owned(),
        Zeroizing::new(k.secret_access_key().to_owned()),
    ))
}

pub async fn deactivate_access_key(aws: &Aws, user: &str, id: &str) -> Result<()> {
    match aws
        .iam
        .update_access_key()
        .user_name(user)
        .access_key_id(id)
        .status(StatusType::Inactive)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(()),
        Err(e) => Err(fail("iam:UpdateAccessKey", &e)),
    }
}

pub async fn delete_access_key(aws: &Aws, user: &str, id: &str) -> Result<()> {
    match aws
        .iam
        .delete_access_key()
        .user_name(user)
        .access_key_id(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(()),
        Err(e) => Err(fail("iam:DeleteAccessKey", &e)),
    }
}

pub async fn key_last_used(aws: &Aws, id: &str) -> Option<String> {
    let out = aws
        .iam
        .get_access_key_last_used()
        .access_key_id(id)
        .send()
        .await
        .ok()?;
    out.access_key_last_used()?
        .last_used_date()
        .map(ToString::to_string)
}

/// Where keyward writes a principal: a bucket policy or a KMS key policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyHome {
    Bucket(String),
    Key(String),
}

impl std::fmt::Display for PolicyHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyHome::Bucket(b) => write!(f, "bucket policy of s3://{b}"),
            PolicyHome::Key(k) => write!(f, "key policy of {k}"),
        }
    }
}

impl PolicyHome {
    pub fn target(&self) -> policy::Target {
        match self {
            PolicyHome::Bucket(b) => policy::Target::Bucket(b.clone()),
            PolicyHome::Key(_) => policy::Target::KmsKey,
        }
    }
}

/// The policy text, `Ok(None)` when there is none yet. Err(NotFound) when the bucket
/// or key itself does not exist.
pub async fn read_policy(aws: &Aws, home: &PolicyHome) -> Result<Option<String>, ReadError> {
    match home {
        PolicyHome::Bucket(b) => match aws.s3.get_bucket_policy().bucket(b).send().await {
            Ok(out) => Ok(out.policy().map(str::to_owned)),
            Err(e) if code(&e) == Some("NoSuchBucketPolicy") => Ok(None),
            Err(e) if code(&e) == Some("NoSuchBucket") => Err(ReadError::NotFound),
            Err(e) => Err(ReadError::Other(describe(&e))),
        },
        PolicyHome::Key(k) => match aws
            .kms
            .get_key_policy()
            .key_id(k)
            .policy_name("default")
            .send()
            .await
        {
            Ok(out) => Ok(out.policy().map(str::to_owned)),
            Err(e) if code(&e) == Some("NotFoundException") => Err(ReadError::NotFound),
            Err(e) => Err(ReadError::Other(describe(&e))),
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it does not exist")]
    NotFound,
    #[error("{0}")]
    Other(String),
}

async fn write_policy(aws: &Aws, home: &PolicyHome, doc: &Value) -> Result<()> {
    match home {
        PolicyHome::Bucket(b) if policy::is_empty(doc) => {
            aws.s3
                .delete_bucket_policy()
                .bucket(b)
                .send()
                .await
                .map_err(|e| fail("s3:DeleteBucketPolicy", &e))?;
        }
        PolicyHome::Bucket(b) => {
            aws.s3
                .put_bucket_policy()
                .bucket(b)
                .policy(policy::to_text(doc))
                .send()
                .await
                .map_err(|e| fail("s3:PutBucketPolicy", &e))?;
        }
        PolicyHome::Key(k) => {
            aws.kms
                .put_key_policy()
                .key_id(k)
                .policy_name("default")
                .policy(policy::to_text(doc))
                .send()
                .await
                .map_err(|e| fail("kms:PutKeyPolicy", &e))?;
        }
    }
    Ok(())
}

/// The full ARN of a KMS key given as id, alias or ARN; None when it does not exist.
pub async fn kms_key_arn(aws: &Aws, key: &str) -> Result<Option<String>> {
    match aws.kms.describe_key().key_id(key).send().await {
        Ok(out) => Ok(out.key_metadata().and_then(|m| m.arn()).map(str::to_owned)),
        Err(e) if code(&e) == Some("NotFoundException") => Ok(None),
        Err(e) => Err(fail("kms:DescribeKey", &e)),
    }
}

pub async fn bucket_exists(aws: &Aws, bucket: &str) -> Result<bool> {
    match read_policy(aws, &PolicyHome::Bucket(bucket.to_owned())).await {
        Ok(_) => Ok(true),
        Err(ReadError::NotFound) => Ok(false),
        Err(ReadError::Other(m)) => bail!("cannot read the policy of bucket {bucket}: {m}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Changed,
    Unchanged,
    /// The bucket or key is gone: nothing to edit.
    Gone,
}

/// Read-modify-write of one policy: shows the diff, asks unless `yes`, and re-reads
/// just before writing; if someone changed it meanwhile, the edit is redone on their
/// version so their change is kept.
pub async fn edit_policy(
    aws: &Aws,
    home: &PolicyHome,
    yes: bool,
    edit: impl Fn(&Value) -> Value,
) -> Result<Edit> {
    for _attempt in 0..4 {
        let text = match read_policy(aws, home).await {
            Ok(t) => t,
            Err(ReadError::NotFound) => return Ok(Edit::Gone),
            Err(ReadError::Other(m)) => bail!("cannot read the {home}: {m}"),
        };
        let old = policy::parse(text.as_deref())
            .with_context(|| format!("the {home} cannot be edited safely"))?;
        let new = edit(&old);
        if new == old {
            return Ok(Edit::Unchanged);
        }
        if !policy::foreign_statements(&new).eq(&policy::foreign_statements(&old)) {
            bail!("internal error: an edit of the {home} would change statements keyward does not own; nothing written");
        }
        ui::show_diff(&home.to_string(), &policy::diff(&old, &new));
        if !yes && !ui::confirm(&format!("apply this change to the {home}?"))? {
            bail!("not applied; re-run with --yes to apply without asking");
        }
        // Check what we read is still what is there.
        let now = match read_policy(aws, home).await {
            Ok(t) => t,
            Err(ReadError::NotFound) => return Ok(Edit::Gone),
            Err(ReadError::Other(m)) => bail!("cannot re-read the {home}: {m}"),
        };
        if policy::parse(now.as_deref()).ok().as_ref() != Some(&old) {
            ui::note(&format!(
                "the {home} changed while we worked; redoing the edit on the new version"
            ));
            continue;
        }
        write_policy(aws, home, &new).await?;
        return Ok(Edit::Changed);
    }
    bail!("the {home} keeps changing under us; try again later")
}

/// Managed policy document of the current default version, URL-decoded.
pub async fn managed_policy_document(aws: &Aws, arn: &str) -> Result<Option<Value>> {
    let pol = match aws.iam.get_policy().policy_arn(arn).send().await {
        Ok(p) => p,
        Err(e) if code(&e) == Some("NoSuchEntity") => return Ok(None),
        Err(e) => return Err(fail("iam:GetPolicy", &e)),
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

/// IAM returns policy documents URL-encoded.
pub fn decode_document(raw: &str) -> Result<Value> {
    let text = if raw.trim_start().starts_with('{') {
        raw.to_owned()
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned()
    };
    serde_json::from_str(&text).context("unreadable IAM policy document")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_split_over_numbered_tags() {
        let items: Vec<String> = (0..40).map(|i| format!("bucket-number-{i:03}")).collect();
        let tags = list_tags(documents::TAG_BUCKETS, &items);
        assert!(tags.len() > 1);
        assert!(tags.iter().all(|t| t.value().len() <= 256));
        assert_eq!(tags[1].key(), "keyward-buckets-2");
        let user = UserInfo {
            name: "u".into(),
            arn: "a".into(),
            path: "/keyward/".into(),
            tags: tags
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
        };
        let mut back = user.list_tag(documents::TAG_BUCKETS);
        back.sort();
        let mut want = items.clone();
        want.sort();
        assert_eq!(back, want);
    }

    #[test]
    fn url_encoded_documents_are_decoded() {
        let v = decode_document("%7B%22Version%22%3A%222012-10-17%22%7D").unwrap();
        assert_eq!(v["Version"], "2012-10-17");
        assert_eq!(decode_document("{\"a\":1}").unwrap()["a"], 1);
    }
}
