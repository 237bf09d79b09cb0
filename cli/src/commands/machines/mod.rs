//! `keyward machines`: the computers of this owner (or, as an admin, of everyone):
//! key, age, last use, MFA, groups, admin, and what a revocation still leaves pending.

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::actor::{self, Actor, Who};
use crate::clients::Aws;
use crate::iam::users::UserInfo;
use crate::iam::{account, credentials, users};
use crate::plan::Needs;

#[derive(Args)]
pub struct MachinesArgs {
    #[command(flatten)]
    who: Who,
    /// As an admin: only this owner's machines (default: every owner)
    #[arg(long)]
    owner: Option<String>,
    /// Print JSON on stdout (for scripts)
    #[arg(long)]
    json: bool,
}

mod bulk;

#[derive(Serialize)]
struct Row {
    machine: String,
    user: String,
    owner: String,
    created: String,
    access_key: Option<String>,
    key_age_days: Option<u64>,
    key_last_used: Option<String>,
    mfa: bool,
    groups: Vec<String>,
    admin: bool,
    /// `this computer`, `active`, `unfinished` or `revoked`.
    status: String,
    revoked: Option<String>,
    /// What a revocation of it still leaves to do (empty when nothing).
    pending: Vec<String>,
    this_computer: bool,
}

pub fn machines(a: &MachinesArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let actor = actor::as_machine(&a.who, true, true).await?;
        let aws = actor.cx.aws_for(Needs::Machine).expect("an identity");
        let owner = if actor.is_admin() {
            a.owner.clone()
        } else {
            actor.owner().map(str::to_owned)
        };
        let admins = account::admins(aws).await.unwrap_or_default();
        let recorded = account::recorded_revocations(aws, &actor.cx.arns)
            .await
            .unwrap_or_default();
        let rows = if let Some(admin) = actor.cx.admin.as_ref() {
            // Whoever may read the account reads it in bulk: calls grow with pages.
            bulk::rows(&actor, admin, owner.as_deref(), &admins, &recorded).await?
        } else {
            let mut rows = Vec::new();
            for u in users::machine_users(aws, owner.as_deref()).await? {
                rows.push(row(&actor, aws, &u, &admins, &recorded).await?);
            }
            rows
        };
        if a.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print_table(&rows, owner.as_deref());
        }
        Ok(())
    })
}

async fn row(
    actor: &Actor,
    aws: &Aws,
    u: &UserInfo,
    admins: &[String],
    recorded: &[String],
) -> Result<Row> {
    let keys = credentials::access_keys(aws, &u.name).await?;
    let first = keys.first();
    let last_used = match first {
        Some(k) => credentials::key_last_used(aws, &k.id).await,
        None => None,
    };
    let groups = users::groups_for_user(aws, &u.name).await?;
    let mfa = !credentials::mfa_devices(aws, &u.name).await?.is_empty();
    let this_computer = actor.me.as_ref().is_some_and(|m| m.name == u.name);
    let designated = admins.contains(&u.name);
    let pending = if u.revoked_at().is_some() {
        pending(&Left {
            keys: !keys.is_empty(),
            mfa,
            groups: &groups,
            // Only an admin reads bucket and key policies; the bulk path does.
            policies: None,
            recorded: recorded.contains(&u.name),
            designated,
        })
    } else {
        Vec::new()
    };
    let status = status(u, this_computer);
    Ok(Row {
        machine: u.machine().unwrap_or_default().to_owned(),
        user: u.name.clone(),
        owner: u.owner().unwrap_or_default().to_owned(),
        created: u
            .tags
            .get(crate::iam::documents::TAG_CREATED)
            .cloned()
            .unwrap_or_default(),
        access_key: first.map(|k| k.id[k.id.len().saturating_sub(4)..].to_owned()),
        key_age_days: first
            .and_then(|k| k.created)
            .map(|c| age_days(actor.cx.clock, c)),
        key_last_used: last_used,
        mfa,
        groups,
        admin: designated,
        status: status.to_owned(),
        revoked: u.revoked_at().map(str::to_owned),
        pending,
        this_computer,
    })
}

/// What a revocation of a machine still leaves to do.
struct Left<'a> {
    keys: bool,
    mfa: bool,
    groups: &'a [String],
    /// The managed policies that still name it; `None` when they could not be read.
    policies: Option<Vec<String>>,
    recorded: bool,
    designated: bool,
}

fn pending(l: &Left) -> Vec<String> {
    let mut out = Vec::new();
    if l.keys {
        out.push("delete its keys".to_owned());
    }
    if l.mfa {
        out.push("delete its MFA device".to_owned());
    }
    if !l.groups.is_empty() {
        out.push(format!("leave {} (admin)", l.groups.join(", ")));
    }
    match &l.policies {
        Some(homes) => out.extend(homes.iter().map(|h| format!("leave the {h} (admin)"))),
        None => out.push("check bucket and key policies (admin)".to_owned()),
    }
    if !l.recorded {
        out.push("record in the role guard (admin)".to_owned());
    }
    if l.designated {
        out.push("leave keyward-admin's trust (`keyward init`)".to_owned());
    }
    out
}

fn status(u: &UserInfo, this_computer: bool) -> &'static str {
    match (u.revoked_at(), this_computer, u.is_enrolled()) {
        (Some(_), _, _) => "revoked",
        (None, true, _) => "this computer",
        (None, false, false) => "unfinished",
        (None, false, true) => "active",
    }
}

pub(super) fn age_days(clock: keyward_daemon::clock::Clock, created: SystemTime) -> u64 {
    clock.since(created).as_secs() / 86_400
}

fn print_table(rows: &[Row], owner: Option<&str>) {
    if rows.is_empty() {
        println!(
            "no keyward machines{}",
            owner.map(|o| format!(" of {o}")).unwrap_or_default()
        );
        return;
    }
    println!(
        "{:<22} {:<20} {:<6} {:>5} {:<20} {:<4} {:<16} STATUS",
        "USER", "CREATED", "KEY", "AGE", "LAST USED", "MFA", "GROUPS"
    );
    for r in rows {
        let mut status = r.status.clone();
        if r.admin {
            status.push_str(" (admin)");
        }
        if let Some(at) = &r.revoked {
            status = format!("REVOKED {at}");
        }
        if !r.pending.is_empty() {
            let _ = write!(status, "; pending: {}", r.pending.join("; "));
        }
        println!(
            "{:<22} {:<20} {:<6} {:>5} {:<20} {:<4} {:<16} {status}",
            r.user,
            r.created,
            r.access_key
                .as_ref()
                .map_or_else(|| "-".to_owned(), |k| format!("…{k}")),
            r.key_age_days
                .map_or_else(|| "-".to_owned(), |d| format!("{d}d")),
            r.key_last_used.clone().unwrap_or_else(|| "never".into()),
            if r.mfa { "yes" } else { "NO" },
            if r.groups.is_empty() {
                "-".into()
            } else {
                r.groups.join(",")
            },
        );
    }
}
