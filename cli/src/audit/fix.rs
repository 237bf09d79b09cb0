//! What `keyward audit --fix` changes: Block Public Access on a bucket, and dangling
//! principal ids out of bucket, key and trust policies. Each is read-modify-write and
//! idempotent; every other statement stays as it is.

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::Value;

use crate::clients::Aws;
use crate::iam::{describe, fail, policy, roles};

/// Where a policy lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Home {
    Bucket(String),
    Key(String),
    Trust(String),
}

impl std::fmt::Display for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Home::Bucket(b) => write!(f, "bucket policy of s3://{b}"),
            Home::Key(k) => write!(f, "key policy of {k}"),
            Home::Trust(r) => write!(f, "trust policy of role {r}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AutoFix {
    BlockPublicAccess { bucket: String },
    RemoveDanglingPrincipals { home: Home, ids: Vec<String> },
}

impl std::fmt::Display for AutoFix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AutoFix::BlockPublicAccess { bucket } => {
                write!(f, "turn on Block Public Access for s3://{bucket}")
            }
            AutoFix::RemoveDanglingPrincipals { home, ids } => {
                write!(f, "remove {} from the {home}", ids.join(", "))
            }
        }
    }
}

/// `doc` without the principal strings in `ids`; a statement left with no principal
/// is dropped. Everything else is kept as it was.
pub fn strip_ids(doc: &Value, ids: &[String]) -> Value {
    let mut out = doc.clone();
    let Some(sts) = out.get_mut("Statement") else {
        return out;
    };
    if sts.is_object() {
        *sts = Value::Array(vec![sts.take()]);
    }
    let Some(list) = sts.as_array_mut() else {
        return out;
    };
    list.retain_mut(|st| {
        let Some(principal) = st.get_mut("Principal").and_then(Value::as_object_mut) else {
            return true;
        };
        for v in principal.values_mut() {
            match v {
                Value::String(s) if ids.contains(s) => *v = Value::Array(Vec::new()),
                Value::Array(a) => {
                    a.retain(|x| !x.as_str().is_some_and(|s| ids.iter().any(|i| i == s)));
                }
                _ => {}
            }
        }
        principal.retain(|_, v| !matches!(v, Value::Array(a) if a.is_empty()));
        !principal.is_empty()
    });
    out
}

/// Applies one fix; returns what it did.
pub async fn apply(aws: &Aws, fix: &AutoFix) -> Result<String> {
    match fix {
        AutoFix::BlockPublicAccess { bucket } => {
            let conf = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            aws.s3
                .put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(conf)
                .send()
                .await
                .map_err(|e| fail("s3:PutBucketPublicAccessBlock", &e))?;
        }
        AutoFix::RemoveDanglingPrincipals { home, ids } => strip(aws, home, ids).await?,
    }
    Ok(fix.to_string())
}

async fn strip(aws: &Aws, home: &Home, ids: &[String]) -> Result<()> {
    match home {
        Home::Bucket(b) => {
            let text = aws
                .s3
                .get_bucket_policy()
                .bucket(b)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the {home}: {}", describe(&e)))?;
            let doc: Value = serde_json::from_str(text.policy().unwrap_or("{}"))?;
            let new = strip_ids(&doc, ids);
            if policy::is_empty(&new) {
                aws.s3
                    .delete_bucket_policy()
                    .bucket(b)
                    .send()
                    .await
                    .map_err(|e| fail("s3:DeleteBucketPolicy", &e))?;
            } else {
                aws.s3
                    .put_bucket_policy()
                    .bucket(b)
                    .policy(new.to_string())
                    .send()
                    .await
                    .map_err(|e| fail("s3:PutBucketPolicy", &e))?;
            }
        }
        Home::Key(k) => {
            let text = aws
                .kms
                .get_key_policy()
                .key_id(k)
                .policy_name("default")
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the {home}: {}", describe(&e)))?;
            let doc: Value = serde_json::from_str(text.policy().unwrap_or("{}"))?;
            let new = strip_ids(&doc, ids);
            aws.kms
                .put_key_policy()
                .key_id(k)
                .policy_name("default")
                .policy(new.to_string())
                .send()
                .await
                .map_err(|e| fail("kms:PutKeyPolicy", &e))?;
        }
        Home::Trust(r) => {
            let role = roles::get_role(aws, r)
                .await?
                .with_context(|| format!("role {r} is gone"))?;
            let new = strip_ids(&role.trust, ids);
            anyhow::ensure!(!policy::is_empty(&new), "the trust policy of role {r} names only deleted principals: delete the role, or name who should assume it");
            roles::set_trust(aws, r, &new).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strip_ids_keeps_everything_else() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Mixed", "Effect": "Allow", "Principal": {"AWS": ["AIDAGONEUSER00000001", "arn:aws:iam::1:user/a"]}, "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": "OnlyGone", "Effect": "Allow", "Principal": {"AWS": "AROAGONEROLE00000001"}, "Action": "s3:*", "Resource": "*"},
            {"Sid": "Service", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]});
        let ids = vec![
            "AIDAGONEUSER00000001".to_owned(),
            "AROAGONEROLE00000001".to_owned(),
        ];
        let out = strip_ids(&doc, &ids);
        let sts = out["Statement"].as_array().unwrap();
        assert_eq!(sts.len(), 2, "{out}");
        assert_eq!(sts[0]["Principal"]["AWS"], json!(["arn:aws:iam::1:user/a"]));
        assert_eq!(sts[1]["Sid"], "Service");
        assert_eq!(strip_ids(&out, &ids), out, "idempotent");
    }
}
