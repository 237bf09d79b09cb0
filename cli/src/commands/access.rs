//! `keyward access`: just-in-time group rights whose expiry AWS enforces.
//! - `keyward access enable GROUP` (the account's admin): the group's JIT role;
//! - `keyward access grant GROUP --for 2h [--machine M]` (an admin computer);
//! - `keyward access revoke GROUP [--machine M]` (an admin computer): ends it now;
//! - `keyward access` lists what is granted until when.
//!
//! Only an admin grants: a grant is a whitelist edit (property 5). A machine that
//! could grant itself a group would make every group a machine's own right.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::{execute, RunMode};
use crate::actor::{self, Actor, Who};
use crate::iam::jit::{self, Grant};
use crate::iam::roles;
use crate::names;
use crate::plan::{lists, Plan};

#[derive(Args)]
pub struct AccessArgs {
    #[command(subcommand)]
    command: Option<AccessCommand>,
    /// Print JSON on stdout (the list)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    who: Who,
}

#[derive(Subcommand)]
pub enum AccessCommand {
    /// Make a group grantable for a while (its JIT role), with the account's admin
    Enable {
        /// The group
        group: String,
        #[command(flatten)]
        run: RunMode,
        #[command(flatten)]
        who: Who,
    },
    /// Give a computer a group's rights until an expiry AWS enforces
    Grant {
        /// The group
        group: String,
        /// How long, e.g. 2h (1m to 7d)
        #[arg(long = "for", value_name = "D")]
        duration: String,
        /// The machine (`work`) or its IAM user (default: this computer)
        #[arg(long)]
        machine: Option<String>,
        #[command(flatten)]
        run: RunMode,
        #[command(flatten)]
        who: Who,
    },
    /// End a computer's grant now
    Revoke {
        /// The group
        group: String,
        /// The machine (default: this computer)
        #[arg(long)]
        machine: Option<String>,
        #[command(flatten)]
        run: RunMode,
        #[command(flatten)]
        who: Who,
    },
}

pub fn access(a: &AccessArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let yes = |run: &RunMode| run.yes;
        match &a.command {
            None => list(a).await,
            Some(AccessCommand::Enable { group, run, who }) => {
                let actor = actor::as_machine(who, yes(run), run.json).await?;
                let plan = Plan::of(
                    format!("just-in-time access to {group}"),
                    lists::access_enable(group),
                );
                finish(
                    &execute(&plan, &actor.cx, *run).await?,
                    &format!("keyward access enable {group}"),
                )
            }
            Some(AccessCommand::Grant {
                group,
                duration,
                machine,
                run,
                who,
            }) => {
                let d =
                    keyward_daemon::config::parse_duration(duration).map_err(anyhow::Error::msg)?;
                if !(60..=7 * 86_400).contains(&d.as_secs()) {
                    bail!("--for must be between 1m and 7d. Nothing was changed.");
                }
                change(who, group, machine.as_deref(), Some(d), *run).await
            }
            Some(AccessCommand::Revoke {
                group,
                machine,
                run,
                who,
            }) => change(who, group, machine.as_deref(), None, *run).await,
        }
    })
}

fn finish(report: &crate::plan::Report, again: &str) -> Result<()> {
    if report.failed() {
        bail!("stopped at a failed step; run `{again}` again to finish");
    }
    if !report.pending().is_empty() {
        bail!("some steps need another identity (see above): granting needs an admin computer, enabling a group the account's admin (`{again} --admin-profile P`)");
    }
    Ok(())
}

fn target(actor: &Actor, machine: Option<&str>) -> Result<String> {
    match machine {
        Some(m) => Ok(names::resolve_machine(actor.owner(), m)),
        None => actor
            .me
            .as_ref()
            .map(|u| u.name.clone())
            .context("name the computer with --machine M"),
    }
}

async fn change(
    who: &Who,
    group: &str,
    machine: Option<&str>,
    length: Option<std::time::Duration>,
    run: RunMode,
) -> Result<()> {
    let actor = actor::as_machine(who, run.yes, run.json).await?;
    let now = actor.cx.clock.utc();
    let until = length
        .map(|d| {
            Ok::<_, anyhow::Error>(now + chrono::Duration::seconds(i64::try_from(d.as_secs())?))
        })
        .transpose()?;
    if actor.cx.admin.is_none() {
        bail!("only an admin computer grants or ends group access (it is a whitelist edit): run it on an admin computer, or with --admin-profile");
    }
    let machine = target(&actor, machine)?;
    let grant = Grant {
        group: group.to_owned(),
        machine: machine.clone(),
        until: until.unwrap_or(now),
    };
    let plan = Plan::of(
        format!("{group} for {machine}"),
        lists::access_change(&grant, until.is_some()),
    );
    let verb = if until.is_some() { "grant" } else { "revoke" };
    finish(
        &execute(&plan, &actor.cx, run).await?,
        &format!("keyward access {verb} {group}"),
    )?;
    if let (Some(u), false) = (until, run.json || run.dry_run) {
        let role = actor.cx.arns.role(&jit::role_name(group));
        println!("{machine} has {group}'s rights until {} (AWS enforces it, whatever happens to the computer)", u.format("%Y-%m-%d %H:%M UTC"));
        println!("on {machine}: `keyward profile add {group} --role-arn {role} --source {machine}`, then `aws --profile {group} ...`");
    }
    Ok(())
}

async fn list(a: &AccessArgs) -> Result<()> {
    let actor = actor::as_machine(&a.who, true, true).await?;
    let aws = actor.reader();
    let now = actor.cx.clock.utc();
    let mut rows = Vec::new();
    for role in roles::guarded_roles(aws, &[]).await? {
        let Some(group) = role.strip_prefix(jit::PREFIX) else {
            continue;
        };
        let Some(r) = roles::get_role(aws, &role).await? else {
            continue;
        };
        rows.extend(jit::trust_grants(group, &r.trust));
    }
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|g| serde_json::json!({"group": g.group, "machine": g.machine, "until": g.until, "active": g.until > now}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "no group is granted for a while; `keyward access grant GROUP --for 2h` grants one"
        );
    }
    for g in rows {
        let state = if g.until > now { "until" } else { "expired" };
        println!(
            "{:<16} {:<24} {state} {}",
            g.group,
            g.machine,
            g.until.format("%Y-%m-%d %H:%M UTC")
        );
    }
    Ok(())
}
