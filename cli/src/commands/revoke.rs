//! `keyward revoke MACHINE`: cuts a lost computer off from another one. Any computer
//! of the same owner cuts it off at once (deny-all, its role sessions, keys, MFA,
//! tags); an admin also takes it out of groups and resource policies and records the
//! revocation for good. Run by a non-admin, those admin steps are listed as pending.

use anyhow::{bail, Result};
use clap::Args;

use super::{execute, RunMode};
use crate::actor::{self, Actor, Who};
use crate::iam::resources::{self, PolicyHome};
use crate::iam::{account, is_denied, users};
use crate::names;
use crate::plan::lists::{self, CutOff};
use crate::plan::{Needs, Plan, Report};
use crate::ui;

#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    run: RunMode,
    /// The machine (`laptop`) or its IAM user (`alice-laptop`)
    machine: String,
    #[command(flatten)]
    who: Who,
    /// Also delete the IAM user (an admin; default: keep a tagged tombstone)
    #[arg(long)]
    purge: bool,
    /// Also remove it from this bucket's policy (repeatable)
    #[arg(long = "bucket", value_name = "B")]
    buckets: Vec<String>,
    /// Also remove it from this KMS key's policy (repeatable)
    #[arg(long = "kms-key", value_name = "K")]
    kms_keys: Vec<String>,
}

pub fn revoke(a: &RevokeArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let mut actor = actor::as_machine(&a.who, a.run.yes, a.run.json).await?;
        if actor.cx.admin.is_some() {
            // An admin computer revokes as the admin role, which reaches every owner's
            // machines; this computer's own rights stop at its owner's.
            actor.cx.machine = None;
        }
        let target = find_target(&actor, &a.machine).await?;
        let owner = target.owner().unwrap_or_default().to_owned();
        let user = target.name.clone();
        let reader = actor.cx.aws_for(Needs::Machine).expect("an identity");
        let mut extra: Vec<PolicyHome> =
            a.buckets.iter().cloned().map(PolicyHome::Bucket).collect();
        for k in &a.kms_keys {
            extra.push(PolicyHome::Key(
                resources::kms_key_arn(reader, k)
                    .await?
                    .unwrap_or_else(|| k.clone()),
            ));
        }
        let designated = account::admins(reader)
            .await
            .unwrap_or_default()
            .contains(&user);
        let how = CutOff::Revoke {
            owner,
            designated,
            extra,
            purge: a.purge,
        };
        let plan = Plan::of(
            format!("revoke {user} ({}) as {}", target.arn, actor.cx.actor),
            lists::cut_off(&user, how),
        );
        let mode = a.run;
        let report = execute(&plan, &actor.cx, mode).await?;
        conclude(&report, &user, &a.machine, a.run.json || a.run.dry_run)
    })
}

async fn find_target(actor: &Actor, machine: &str) -> Result<users::UserInfo> {
    let reader = actor.cx.aws_for(Needs::Machine).expect("an identity");
    let own = names::resolve_machine(actor.owner(), machine);
    let lookup = match users::get_user(reader, &own).await {
        Ok(None) if own != machine => users::get_user(reader, machine).await,
        Err(e) if is_denied(&e) && own != machine => users::get_user(reader, machine).await,
        other => other,
    };
    // Another owner's machines are walled off: this computer may not even read them, so
    // "denied" means "not one of ours" (it may not exist at all).
    let (found, walled) = match lookup {
        Ok(u) => (u, false),
        Err(e) if is_denied(&e) => (None, true),
        Err(e) => return Err(e),
    };
    let Some(target) = found.filter(users::UserInfo::is_machine) else {
        let known: Vec<String> = users::machine_users(reader, actor.owner())
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|u| u.name)
            .collect();
        let admin_hint = if walled {
            "; another owner's machine can only be revoked by an admin (on an admin computer, or with --admin-profile)"
        } else {
            ""
        };
        bail!(
            "no machine `{machine}`{}; known: {}{admin_hint}",
            actor
                .owner()
                .map(|o| format!(" of {o}"))
                .unwrap_or_default(),
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        );
    };
    if actor.me.as_ref().is_some_and(|m| m.name == target.name) {
        bail!(
            "{} is this computer; to decommission it run `keyward deregister`",
            target.name
        );
    }
    if !actor.is_admin() && target.owner() != actor.owner() {
        bail!("{} belongs to owner {}, not {}; only an admin can revoke it (on an admin computer, or with --admin-profile)", target.name, target.owner().unwrap_or("?"), actor.owner().unwrap_or("?"));
    }
    Ok(target)
}

fn conclude(report: &Report, user: &str, machine: &str, quiet: bool) -> Result<()> {
    if report.failed() {
        bail!("revocation of {user} is incomplete; run `keyward revoke {machine} --yes` again to finish");
    }
    if quiet {
        return Ok(());
    }
    let pending = report.pending();
    if pending.is_empty() {
        println!("{user} is revoked");
    } else {
        println!("{user} is cut off: it can no longer use AWS");
        let what: Vec<String> = pending.iter().map(|s| s.label.clone()).collect();
        ui::note(&format!("pending for an admin (run `keyward revoke {user}` on an admin computer; `keyward machines` lists it meanwhile): {}", what.join("; ")));
    }
    ui::note(&format!("roles keyward does not guard keep sessions {user} assumed until they expire; to end them now, add to each such role's policy: {{\"Effect\": \"Deny\", \"Action\": \"*\", \"Resource\": \"*\", \"Condition\": {{\"StringEquals\": {{\"aws:SourceIdentity\": \"{user}\"}}}}}}"));
    Ok(())
}
