//! Taking a machine user apart, in the order that keeps every policy readable:
//! cut live sessions, kill keys, leave groups, leave bucket and key policies (while
//! the ARN still resolves), drop MFA, then tag or delete the user. Every step is
//! idempotent; after a failure the report says what is done and what is not.

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::aws::Aws;
use crate::iam::{self, documents, policy, Edit, PolicyHome, UserInfo};
use crate::ui;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    AlreadyDone,
    Skipped,
    Failed,
    NotRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: String,
    pub status: Status,
    pub detail: String,
}

pub struct Plan {
    pub user: UserInfo,
    pub account: String,
    /// Policies the user was added to (from its tags, plus any named on the command line).
    pub homes: Vec<PolicyHome>,
    /// Revocation cuts live sessions first and leaves a tagged tombstone; abort does not.
    pub revoke: Option<Revocation>,
    pub purge: bool,
    pub yes: bool,
}

pub struct Revocation {
    pub now_rfc3339: String,
    pub by: String,
}

/// The policies a user was recorded in by setup.
pub fn recorded_homes(user: &UserInfo) -> Vec<PolicyHome> {
    let mut homes: Vec<PolicyHome> = user
        .list_tag(documents::TAG_BUCKETS)
        .into_iter()
        .map(PolicyHome::Bucket)
        .collect();
    homes.extend(
        user.list_tag(documents::TAG_KMS_KEYS)
            .into_iter()
            .map(PolicyHome::Key),
    );
    homes
}

/// The ordering guard: a user may only be deleted once its ARN is in none of the
/// policies keyward knows about (after deletion it would turn into an unreadable id).
pub fn check_deletable(arn: &str, policies: &[(PolicyHome, Option<Value>)]) -> Result<(), String> {
    let still: Vec<String> = policies
        .iter()
        .filter(|(_, doc)| {
            doc.as_ref()
                .is_some_and(|d| policy::contains_principal(d, arn))
        })
        .map(|(h, _)| h.to_string())
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{arn} is still in the {}; not deleting the user",
            still.join(", ")
        ))
    }
}

type StepResult = Result<(Status, String)>;

pub async fn run(aws: &Aws, plan: &Plan) -> (Vec<Step>, bool) {
    let mut steps = Vec::new();
    let names: Vec<&str> = {
        let mut n = Vec::new();
        if plan.revoke.is_some() {
            n.push("cut live sessions");
        }
        n.extend([
            "delete access keys",
            "leave groups",
            "leave bucket and key policies",
            "delete MFA device",
        ]);
        if plan.revoke.is_some() {
            n.push("tag as revoked");
        }
        if plan.purge {
            n.push("delete the user");
        }
        n
    };
    let mut failed = false;
    for name in names {
        if failed {
            steps.push(Step {
                step: name.to_owned(),
                status: Status::NotRun,
                detail: String::new(),
            });
            continue;
        }
        let r: StepResult = match name {
            "cut live sessions" => cut_sessions(aws, plan).await,
            "delete access keys" => delete_keys(aws, plan).await,
            "leave groups" => leave_groups(aws, plan).await,
            "leave bucket and key policies" => leave_policies(aws, plan).await,
            "delete MFA device" => delete_mfa(aws, plan).await,
            "tag as revoked" => tag_revoked(aws, plan).await,
            _ => delete_user(aws, plan).await,
        };
        let (status, detail) = r.unwrap_or_else(|e| {
            failed = true;
            (Status::Failed, format!("{e:#}"))
        });
        match status {
            Status::Done => ui::done(&format!("{name}: {detail}")),
            Status::Failed => ui::note(&format!("{name}: FAILED: {detail}")),
            _ => ui::skipped(&format!("{name}: {detail}")),
        }
        steps.push(Step {
            step: name.to_owned(),
            status,
            detail,
        });
    }
    (steps, !failed)
}

async fn cut_sessions(aws: &Aws, plan: &Plan) -> StepResult {
    let Some(rev) = &plan.revoke else {
        return Ok((Status::Skipped, "not a revocation".into()));
    };
    let user = &plan.user.name;
    // Re-running keeps the first cut-off time: sessions issued since then are new ones.
    if let Ok(out) = aws
        .iam
        .get_user_policy()
        .user_name(user)
        .policy_name(documents::REVOKE_POLICY)
        .send()
        .await
    {
        let doc = iam::decode_document(out.policy_document())?;
        if doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string() {
            return Ok((
                Status::AlreadyDone,
                "the deny-all policy is attached".into(),
            ));
        }
    }
    let doc = documents::deny_sessions_before(&rev.now_rfc3339);
    aws.iam
        .put_user_policy()
        .user_name(user)
        .policy_name(documents::REVOKE_POLICY)
        .policy_document(doc.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("iam:PutUserPolicy failed: {}", iam::describe(&e)))?;
    Ok((
        Status::Done,
        format!("denied every session issued before {}", rev.now_rfc3339),
    ))
}

async fn delete_keys(aws: &Aws, plan: &Plan) -> StepResult {
    let keys = iam::access_keys(aws, &plan.user.name).await?;
    if keys.is_empty() {
        return Ok((Status::AlreadyDone, "no access keys".into()));
    }
    for k in &keys {
        iam::deactivate_access_key(aws, &plan.user.name, &k.id).await?;
    }
    for k in &keys {
        iam::delete_access_key(aws, &plan.user.name, &k.id).await?;
    }
    let ids: Vec<String> = keys
        .iter()
        .map(|k| format!("…{}", &k.id[k.id.len().saturating_sub(4)..]))
        .collect();
    Ok((
        Status::Done,
        format!("deactivated and deleted {}", ids.join(", ")),
    ))
}

async fn leave_groups(aws: &Aws, plan: &Plan) -> StepResult {
    let groups = iam::groups_for_user(aws, &plan.user.name).await?;
    if groups.is_empty() {
        return Ok((Status::AlreadyDone, "in no group".into()));
    }
    for g in &groups {
        iam::remove_from_group(aws, &plan.user.name, g).await?;
    }
    Ok((Status::Done, format!("removed from {}", groups.join(", "))))
}

async fn leave_policies(aws: &Aws, plan: &Plan) -> StepResult {
    if plan.homes.is_empty() {
        return Ok((Status::AlreadyDone, "in no bucket or key policy".into()));
    }
    let arn = plan.user.arn.clone();
    let mut changed = Vec::new();
    let mut gone = Vec::new();
    for home in &plan.homes {
        match iam::edit_policy(aws, home, plan.yes, |doc| {
            policy::remove_principal(doc, &arn)
        })
        .await?
        {
            Edit::Changed => changed.push(home.to_string()),
            Edit::Unchanged => {}
            Edit::Gone => gone.push(home.to_string()),
        }
    }
    let mut detail = if changed.is_empty() {
        "already in none".to_owned()
    } else {
        format!("removed from the {}", changed.join(", "))
    };
    if !gone.is_empty() {
        let _ = std::fmt::Write::write_fmt(
            &mut detail,
            format_args!("; skipped (no longer exists): {}", gone.join(", ")),
        );
    }
    let status = if changed.is_empty() && gone.is_empty() {
        Status::AlreadyDone
    } else if changed.is_empty() {
        Status::Skipped
    } else {
        Status::Done
    };
    Ok((status, detail))
}

async fn delete_mfa(aws: &Aws, plan: &Plan) -> StepResult {
    let mut serials = iam::mfa_devices(aws, &plan.user.name).await?;
    for s in &serials {
        iam::remove_mfa(aws, &plan.user.name, s).await?;
    }
    // A device created by an interrupted setup but never enabled is not listed above.
    if iam::delete_stray_virtual_mfa(aws, &plan.account, &plan.user.name).await? {
        serials.push(format!(
            "arn:aws:iam::{}:mfa/{} (never enabled)",
            plan.account, plan.user.name
        ));
    }
    if serials.is_empty() {
        Ok((Status::AlreadyDone, "no MFA device".into()))
    } else {
        Ok((Status::Done, format!("deleted {}", serials.join(", "))))
    }
}

async fn tag_revoked(aws: &Aws, plan: &Plan) -> StepResult {
    let Some(rev) = &plan.revoke else {
        return Ok((Status::Skipped, String::new()));
    };
    if plan.user.tags.contains_key(documents::TAG_REVOKED_AT) {
        return Ok((Status::AlreadyDone, "already tagged".into()));
    }
    iam::tag_user(
        aws,
        &plan.user.name,
        vec![
            iam::tag(documents::TAG_REVOKED_AT, &rev.now_rfc3339),
            iam::tag(documents::TAG_REVOKED_BY, &rev.by),
        ],
    )
    .await?;
    Ok((
        Status::Done,
        format!(
            "{} = {}, {} = {}",
            documents::TAG_REVOKED_AT,
            rev.now_rfc3339,
            documents::TAG_REVOKED_BY,
            rev.by
        ),
    ))
}

async fn delete_user(aws: &Aws, plan: &Plan) -> StepResult {
    let user = &plan.user.name;
    if iam::get_user(aws, user).await?.is_none() {
        return Ok((Status::AlreadyDone, "no such user".into()));
    }
    let mut current = Vec::new();
    for home in &plan.homes {
        let doc = match iam::read_policy(aws, home).await {
            Ok(text) => policy::parse(text.as_deref()).ok(),
            Err(_) => None,
        };
        current.push((home.clone(), doc));
    }
    check_deletable(&plan.user.arn, &current).map_err(anyhow::Error::msg)?;
    for arn in iam::attached_policies(aws, user).await? {
        aws.iam
            .detach_user_policy()
            .user_name(user)
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("iam:DetachUserPolicy failed: {}", iam::describe(&e)))?;
    }
    let inline = aws
        .iam
        .list_user_policies()
        .user_name(user)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("iam:ListUserPolicies failed: {}", iam::describe(&e)))?;
    for name in inline.policy_names() {
        aws.iam
            .delete_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("iam:DeleteUserPolicy failed: {}", iam::describe(&e)))?;
    }
    aws.iam
        .delete_user()
        .user_name(user)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("iam:DeleteUser failed: {}", iam::describe(&e)))?;
    Ok((Status::Done, format!("deleted {}", plan.user.arn)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ARN: &str = "arn:aws:iam::123456789012:user/keyward/alice-laptop";

    #[test]
    fn no_delete_user_while_the_arn_is_in_a_known_policy() {
        let with = policy::add_principal(
            &policy::parse(None).unwrap(),
            &policy::Target::KmsKey,
            ARN,
            None,
        );
        let without = json!({"Statement": [{"Sid": "Other", "Effect": "Allow", "Principal": {"AWS": ARN}, "Action": "s3:GetObject", "Resource": "*"}]});
        let err = check_deletable(
            ARN,
            &[
                (PolicyHome::Bucket("b".into()), Some(without.clone())),
                (PolicyHome::Key("k".into()), Some(with)),
            ],
        )
        .unwrap_err();
        assert!(
            err.contains("key policy of k") && !err.contains("bucket"),
            "{err}"
        );
        // Foreign statements are not ours to judge, and gone policies do not block.
        assert!(check_deletable(
            ARN,
            &[
                (PolicyHome::Bucket("b".into()), Some(without)),
                (PolicyHome::Key("k".into()), None)
            ]
        )
        .is_ok());
    }

    #[test]
    fn recorded_homes_come_from_the_tags() {
        let user = UserInfo {
            name: "alice-laptop".into(),
            arn: ARN.into(),
            path: "/keyward/".into(),
            tags: [
                (documents::TAG_BUCKETS.to_owned(), "data logs".to_owned()),
                (
                    documents::TAG_KMS_KEYS.to_owned(),
                    "arn:aws:kms:us-east-1:123456789012:key/k1".to_owned(),
                ),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            recorded_homes(&user),
            vec![
                PolicyHome::Bucket("data".into()),
                PolicyHome::Bucket("logs".into()),
                PolicyHome::Key("arn:aws:kms:us-east-1:123456789012:key/k1".into())
            ]
        );
    }
}
