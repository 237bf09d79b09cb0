//! Bucket and KMS key policies: read, edited read-modify-write through the pure
//! editor in [`super::policy`], and written back. Nothing here asks the user: an
//! edit takes an approval callback from the command.

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{code, describe, fail, policy};
use crate::clients::Aws;

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

pub async fn write_policy(aws: &Aws, home: &PolicyHome, doc: &Value) -> Result<()> {
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

/// Who approves a policy edit: it sees the diff, and hears about concurrent edits.
pub trait Approve {
    /// `Ok(false)` leaves the policy as it is.
    fn approve(&self, home: &PolicyHome, diff: &str) -> Result<bool>;
    fn note(&self, message: &str);
}

/// Read-modify-write of one policy: the approver sees the diff, and the policy is
/// re-read just before writing; if someone changed it meanwhile, the edit is redone
/// on their version so their change is kept.
pub async fn edit_policy(
    aws: &Aws,
    home: &PolicyHome,
    approver: &dyn Approve,
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
        if !approver.approve(home, &policy::diff(&old, &new))? {
            bail!("the change to the {home} was not approved; nothing was written there");
        }
        // Check what we read is still what is there.
        let now = match read_policy(aws, home).await {
            Ok(t) => t,
            Err(ReadError::NotFound) => return Ok(Edit::Gone),
            Err(ReadError::Other(m)) => bail!("cannot re-read the {home}: {m}"),
        };
        if policy::parse(now.as_deref()).ok().as_ref() != Some(&old) {
            approver.note(&format!(
                "the {home} changed while we worked; redoing the edit on the new version"
            ));
            continue;
        }
        write_policy(aws, home, &new).await?;
        return Ok(Edit::Changed);
    }
    bail!("the {home} keeps changing under us; try again later")
}
