//! `keyward machines` for an admin: the whole account from the bulk reader (a few
//! pages of GetAccountAuthorizationDetails and one credential report), and each
//! managed bucket and key policy read once, whatever the number of machines.

use anyhow::Result;
use serde_json::Value;

use super::{age_days, Row};
use crate::actor::Actor;
use crate::audit::account::{active_keys, credential_report, yes};
use crate::clients::Aws;
use crate::iam::documents::{PATH, TAG_CREATED, TAG_OWNER};
use crate::iam::resources::{self, PolicyHome, ReadError};
use crate::iam::snapshot::Snapshot;
use crate::iam::users::UserInfo;
use crate::iam::{account, policy};

/// The managed bucket and key policies, read once.
async fn managed_docs(aws: &Aws) -> Result<Vec<(PolicyHome, Value)>> {
    let mut out = Vec::new();
    for home in account::managed_homes(aws, &[]).await? {
        match resources::read_policy(aws, &home).await {
            Ok(text) => {
                if let Ok(doc) = policy::parse(text.as_deref()) {
                    out.push((home, doc));
                }
            }
            Err(ReadError::NotFound) => {}
            Err(ReadError::Other(e)) => return Err(home.unreadable(e)),
        }
    }
    Ok(out)
}

pub async fn rows(
    actor: &Actor,
    aws: &Aws,
    owner: Option<&str>,
    admins: &[String],
    recorded: &[String],
) -> Result<Vec<Row>> {
    let snap = Snapshot::read(aws, &actor.cx.arns.account).await?;
    let report = credential_report(aws).await?;
    let machines: Vec<_> = snap
        .users
        .iter()
        .filter(|u| u.path == PATH && u.tags.contains_key(TAG_OWNER))
        .filter(|u| owner.is_none_or(|o| u.tags.get(TAG_OWNER).is_some_and(|t| t == o)))
        .collect();
    let any_revoked = machines
        .iter()
        .any(|u| u.tags.contains_key(crate::iam::documents::TAG_REVOKED_AT));
    let docs = if any_revoked {
        managed_docs(aws).await?
    } else {
        Vec::new()
    };
    let mine = actor.me.as_ref().map(|m| m.name.clone());
    let local_key = actor
        .profile
        .as_deref()
        .and_then(|p| crate::local::keychain::stored_key_id(p).ok().flatten());
    let mut rows = Vec::new();
    for p in machines {
        let u = UserInfo {
            name: p.name.clone(),
            arn: p.arn.clone(),
            path: p.path.clone(),
            tags: p.tags.clone(),
        };
        let row = report.iter().find(|r| r.get("user") == Some(&u.name));
        let keys = row.map(active_keys).unwrap_or_default();
        let mfa = row.is_some_and(|r| yes(r, "mfa_active"));
        let this_computer = mine.as_deref() == Some(u.name.as_str());
        let designated = admins.contains(&u.name);
        let pending = if u.revoked_at().is_some() {
            let naming = docs
                .iter()
                .filter(|(_, doc)| policy::contains_principal(doc, &u.arn))
                .map(|(home, _)| home.to_string())
                .collect();
            super::pending(&super::Left {
                keys: !keys.is_empty(),
                mfa,
                groups: &p.groups,
                policies: Some(naming),
                recorded: recorded.contains(&u.name),
                designated,
            })
        } else {
            Vec::new()
        };
        let status = super::status(&u, this_computer);
        let first = keys.first();
        rows.push(Row {
            machine: u.machine().unwrap_or_default().to_owned(),
            user: u.name.clone(),
            owner: u.owner().unwrap_or_default().to_owned(),
            created: u.tags.get(TAG_CREATED).cloned().unwrap_or_default(),
            // Only this computer's key id is known without a call per machine.
            access_key: local_key
                .as_ref()
                .filter(|_| this_computer && first.is_some())
                .map(|k| k[k.len().saturating_sub(4)..].to_owned()),
            key_age_days: first
                .and_then(|(_, rotated, _)| *rotated)
                .map(|c| age_days(actor.cx.clock, c)),
            key_last_used: first
                .and_then(|(_, _, used)| *used)
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            mfa,
            groups: p.groups.clone(),
            admin: designated,
            status: status.to_owned(),
            revoked: u.revoked_at().map(str::to_owned),
            pending,
            this_computer,
        });
    }
    Ok(rows)
}
