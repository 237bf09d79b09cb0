//! The steps only `keyward audit --fix` takes ([`Repair`]): Block Public Access on a
//! bucket, dangling principal ids out of bucket, key and trust policies, the
//! encryption deny on a bucket, and old keys of users outside keyward deactivated
//! (then, after a confirmation, deleted). Each is read-modify-write and idempotent;
//! every other statement stays as it was.

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::{json, Value};

use super::{Cx, FlowStep, Needs, State, StepId};
use crate::clients::Aws;
use crate::iam::resources::{read_policy, write_policy, PolicyHome, ReadError};
use crate::iam::{credentials, fail, roles};
use keyward_daemon::clock::Clock;

/// One change `--fix` makes that no other command makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "repair", rename_all = "snake_case")]
pub enum Repair {
    BlockPublicAccess {
        bucket: String,
    },
    StripPrincipals {
        home: PolicyHome,
        ids: Vec<String>,
    },
    DenyUnencrypted {
        bucket: String,
    },
    DeactivateOldKeys {
        user: String,
        max_age_days: u64,
    },
    DeleteInactiveKeys {
        user: String,
    },
    /// Expired just-in-time grants of a group out of its role's trust and the guard.
    PruneJit {
        group: String,
        account: String,
    },
}

pub const ENCRYPTION_SID: &str = "KeywardDenyUnencryptedUploads";

impl FlowStep for Repair {
    fn id(&self) -> StepId {
        match self {
            Repair::BlockPublicAccess { .. } => StepId::BlockPublicAccess,
            Repair::StripPrincipals { .. } => StepId::StripPrincipals,
            Repair::DenyUnencrypted { .. } => StepId::DenyUnencrypted,
            Repair::DeactivateOldKeys { .. } => StepId::DeactivateOldKeys,
            Repair::DeleteInactiveKeys { .. } => StepId::DeleteInactiveKeys,
            Repair::PruneJit { .. } => StepId::PruneJit,
        }
    }

    /// The admin role edits only the whitelists: the rest of what audit fixes (Block
    /// Public Access, any policy, others' keys) is the account admin's.
    fn needs(&self) -> Needs {
        Needs::Bootstrap
    }

    fn label(&self) -> String {
        match self {
            Repair::BlockPublicAccess { bucket } => {
                format!("s3://{bucket}: Block Public Access on")
            }
            Repair::StripPrincipals { home, ids } => format!("{home}: remove {}", ids.join(", ")),
            Repair::DenyUnencrypted { bucket } => {
                format!("s3://{bucket}: deny uploads without aws:kms")
            }
            Repair::DeactivateOldKeys { user, max_age_days } => {
                format!("{user}: deactivate keys older than {max_age_days} days")
            }
            Repair::DeleteInactiveKeys { user } => format!("{user}: delete its inactive keys"),
            Repair::PruneJit { group, .. } => {
                format!(
                    "{}: remove expired just-in-time grants",
                    crate::iam::jit::role_name(group)
                )
            }
        }
    }

    async fn check(&self, cx: &Cx) -> Result<State> {
        let (aws, clock) = (cx.aws(self.needs())?, cx.clock);
        let todo = |s: &str| Ok(State::ToDo(s.to_owned()));
        let done = |s: &str| Ok(State::Done(s.to_owned()));
        match self {
            Repair::BlockPublicAccess { bucket } => {
                if bpa_on(aws, bucket).await {
                    done("on")
                } else {
                    todo("turn all four settings on")
                }
            }
            Repair::StripPrincipals { home, ids } => {
                let doc = read(aws, home).await?;
                if crate::audit::data::dangling(&doc)
                    .iter()
                    .any(|d| ids.contains(d))
                {
                    todo("rewrite it")
                } else {
                    done("none left")
                }
            }
            Repair::DenyUnencrypted { bucket } => {
                let doc = read(aws, &PolicyHome::Bucket(bucket.clone())).await?;
                if crate::audit::data::enforces_encryption(&doc) {
                    done("denied")
                } else {
                    todo("add the deny statement")
                }
            }
            Repair::DeactivateOldKeys { user, max_age_days } => {
                let n = old_active(aws, user, *max_age_days, clock).await?.len();
                if n == 0 {
                    done("none active")
                } else {
                    todo(&format!("{n} key(s)"))
                }
            }
            Repair::DeleteInactiveKeys { user } => {
                let n = inactive(aws, user).await?.len();
                if n == 0 {
                    done("none")
                } else {
                    todo(&format!("{n} key(s)"))
                }
            }
            Repair::PruneJit { group, account } => {
                let (trust, guard, new_trust, new_guard) =
                    jit_docs(aws, group, account, clock).await?;
                if trust == new_trust && guard == new_guard {
                    done("none expired")
                } else {
                    todo("remove them")
                }
            }
        }
    }

    async fn apply(&self, cx: &Cx) -> Result<String> {
        let (aws, clock) = (cx.aws(self.needs())?, cx.clock);
        match self {
            Repair::BlockPublicAccess { bucket } => {
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
                Ok("on".into())
            }
            Repair::StripPrincipals { home, ids } => {
                let doc = read(aws, home).await?;
                write_policy(aws, home, &strip_ids(&doc, ids)).await?;
                Ok(format!("removed {}", ids.join(", ")))
            }
            Repair::DenyUnencrypted { bucket } => {
                let home = PolicyHome::Bucket(bucket.clone());
                let mut doc = read(aws, &home).await?;
                if doc.get("Statement").is_none() {
                    doc = json!({"Version": "2012-10-17", "Statement": []});
                }
                if let Some(list) = doc["Statement"].as_array_mut() {
                    list.push(json!({"Sid": ENCRYPTION_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                        "Resource": format!("arn:aws:s3:::{bucket}/*"),
                        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}));
                }
                write_policy(aws, &home, &doc).await?;
                Ok("added".into())
            }
            Repair::DeactivateOldKeys { user, max_age_days } => {
                let keys = old_active(aws, user, *max_age_days, clock).await?;
                for k in &keys {
                    credentials::deactivate_access_key(aws, user, k).await?;
                }
                Ok(format!("deactivated {}", keys.len()))
            }
            Repair::DeleteInactiveKeys { user } => {
                let keys = inactive(aws, user).await?;
                for k in &keys {
                    credentials::delete_access_key(aws, user, k).await?;
                }
                Ok(format!("deleted {}", keys.len()))
            }
            Repair::PruneJit { group, account } => {
                let (_, _, trust, guard) = jit_docs(aws, group, account, clock).await?;
                let arns = crate::iam::documents::Arns::new(account);
                roles::set_trust(aws, &crate::iam::jit::role_name(group), &trust).await?;
                roles::set_managed_policy(
                    aws,
                    &arns.policy(crate::iam::documents::ROLE_GUARD_POLICY),
                    &guard,
                )
                .await?;
                Ok("removed".into())
            }
        }
    }
}

/// A JIT role's trust and the role guard, as they are and without expired grants.
async fn jit_docs(
    aws: &Aws,
    group: &str,
    account: &str,
    clock: Clock,
) -> Result<(Value, Value, Value, Value)> {
    use crate::iam::{documents as docs, jit};
    let arns = docs::Arns::new(account);
    let now = clock.utc();
    let role = roles::get_role(aws, &jit::role_name(group))
        .await?
        .context("the JIT role is gone")?;
    let grants: Vec<jit::Grant> = jit::trust_grants(group, &role.trust)
        .into_iter()
        .filter(|g| !g.prunable(now))
        .collect();
    let guard = roles::managed_policy(aws, &arns.policy(docs::ROLE_GUARD_POLICY))
        .await?
        .context("keyward-role-guard is missing")?;
    let (new_trust, new_guard) = (jit::trust(&arns, &grants), jit::prune_guard(&guard, now));
    Ok((role.trust, guard, new_trust, new_guard))
}

async fn bpa_on(aws: &Aws, bucket: &str) -> bool {
    aws.s3
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .is_ok_and(|o| {
            o.public_access_block_configuration().is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            })
        })
}

async fn keys_with_status(
    aws: &Aws,
    user: &str,
) -> Result<Vec<(String, bool, Option<SystemTime>)>> {
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
        .map(|k| {
            let active = k.status().is_some_and(|s| s.as_str() == "Active");
            let created = k.create_date().and_then(|d| SystemTime::try_from(*d).ok());
            (
                k.access_key_id().unwrap_or_default().to_owned(),
                active,
                created,
            )
        })
        .collect())
}

/// Active keys older than the limit. The age comes from IAM, or from the credential
/// report when IAM's says the key is new (an emulator's aged keys).
async fn old_active(aws: &Aws, user: &str, max_age_days: u64, clock: Clock) -> Result<Vec<String>> {
    let limit = Duration::from_secs(max_age_days * 86_400);
    let report = crate::audit::account::credential_report(aws)
        .await
        .unwrap_or_default();
    let rotated = report
        .iter()
        .find(|r| r.get("user").is_some_and(|u| u == user))
        .and_then(|r| crate::audit::account::date(r, "access_key_1_last_rotated"));
    let now = clock.now();
    Ok(keys_with_status(aws, user)
        .await?
        .into_iter()
        .filter(|(_, active, created)| {
            let born = match (created, rotated) {
                (Some(c), Some(r)) => (*c).min(r),
                (c, r) => c.or(r).unwrap_or(now),
            };
            *active && now.duration_since(born).unwrap_or_default() > limit
        })
        .map(|(id, _, _)| id)
        .collect())
}

async fn inactive(aws: &Aws, user: &str) -> Result<Vec<String>> {
    Ok(keys_with_status(aws, user)
        .await?
        .into_iter()
        .filter(|(_, a, _)| !a)
        .map(|(id, _, _)| id)
        .collect())
}

async fn read(aws: &Aws, home: &PolicyHome) -> Result<Value> {
    match read_policy(aws, home).await {
        Ok(Some(text)) => Ok(serde_json::from_str(&text)?),
        Ok(None) => Ok(json!({})),
        Err(ReadError::NotFound) => anyhow::bail!("the {home} is gone"),
        Err(ReadError::Other(e)) => Err(home.unreadable(e)),
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

#[cfg(test)]
mod tests {
    use super::*;

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
