//! Bucket and KMS key policies: read, edited read-modify-write through the pure
//! editor in [`super::policy`], and written back. Nothing here asks the user: an
//! edit takes an approval callback from the command.

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{fail, found, policy, roles, AwsError};
use crate::clients::Aws;

/// Where a policy lives: a bucket policy or a KMS key policy (where keyward names
/// machines), or a role's trust policy (which the audit cleans of deleted principals).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum PolicyHome {
    Bucket(String),
    Key(String),
    Trust(String),
}

impl std::fmt::Display for PolicyHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyHome::Bucket(b) => write!(f, "bucket policy of s3://{b}"),
            PolicyHome::Key(k) => write!(f, "key policy of {k}"),
            PolicyHome::Trust(r) => write!(f, "trust policy of role {r}"),
        }
    }
}

impl PolicyHome {
    /// What the policy protects, for the editor; `None` for a trust policy, where
    /// keyward never writes a machines statement.
    pub fn target(&self) -> Option<policy::Target> {
        match self {
            PolicyHome::Bucket(b) => Some(policy::Target::Bucket(b.clone())),
            PolicyHome::Key(_) => Some(policy::Target::KmsKey),
            PolicyHome::Trust(_) => None,
        }
    }

    /// "cannot read the <home>: <code>: <message>", still an [`AwsError`].
    pub fn unreadable(&self, e: AwsError) -> anyhow::Error {
        e.reworded(|d| format!("cannot read the {self}: {d}"))
            .into()
    }
}

/// The policy text, `Ok(None)` when there is none yet. Err(NotFound) when the bucket,
/// key or role itself does not exist.
pub async fn read_policy(aws: &Aws, home: &PolicyHome) -> Result<Option<String>, ReadError> {
    let text = match home {
        PolicyHome::Bucket(b) => match aws.s3.get_bucket_policy().bucket(b).send().await {
            Ok(out) => Some(out.policy().map(str::to_owned)),
            Err(e) => match AwsError::new("s3:GetBucketPolicy", &e) {
                e if e.is_no_bucket_policy() => Some(None),
                e if e.is_gone() => None,
                e => return Err(ReadError::Other(e)),
            },
        },
        PolicyHome::Key(k) => {
            let get = aws.kms.get_key_policy().key_id(k).policy_name("default");
            found(get.send().await, "kms:GetKeyPolicy")?.map(|out| out.policy().map(str::to_owned))
        }
        PolicyHome::Trust(r) => found(aws.iam.get_role().role_name(r).send().await, "iam:GetRole")?
            .map(|out| {
                out.role()
                    .and_then(|r| r.assume_role_policy_document())
                    .map(roles::decode_text)
            }),
    };
    text.ok_or(ReadError::NotFound)
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it does not exist")]
    NotFound,
    #[error("{}", .0.detail())]
    Other(#[from] AwsError),
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
        PolicyHome::Trust(r) => {
            anyhow::ensure!(!policy::is_empty(doc), "the trust policy of role {r} names only deleted principals: delete the role, or name who should assume it");
            roles::set_trust(aws, r, doc).await?;
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
    let out = found(
        aws.kms.describe_key().key_id(key).send().await,
        "kms:DescribeKey",
    )?;
    Ok(out.and_then(|out| out.key_metadata().and_then(|m| m.arn()).map(str::to_owned)))
}

pub async fn bucket_exists(aws: &Aws, bucket: &str) -> Result<bool> {
    match read_policy(aws, &PolicyHome::Bucket(bucket.to_owned())).await {
        Ok(_) => Ok(true),
        Err(ReadError::NotFound) => Ok(false),
        Err(ReadError::Other(e)) => Err(e
            .reworded(|d| format!("cannot read the policy of bucket {bucket}: {d}"))
            .into()),
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
            Err(ReadError::Other(e)) => return Err(home.unreadable(e)),
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
            Err(ReadError::Other(e)) => {
                return Err(e
                    .reworded(|d| format!("cannot re-read the {home}: {d}"))
                    .into())
            }
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
