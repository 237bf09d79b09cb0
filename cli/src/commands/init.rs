//! `keyward init`: the account's pieces (the machine policy, the deny-all, the role
//! guard, the admin and enroller roles), what an admin may edit, which computers are
//! admins, which roles are guarded; and the upgrade of an account made by an earlier
//! version. Run with the account's admin credentials. Idempotent.

use anyhow::Result;
use clap::Args;

use super::{execute, RunMode};
use crate::account::{self, AccountState, Request};
use crate::actor::{self, Who};
use crate::iam::documents::Whitelists;
use crate::plan::Plan;

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    run: RunMode,
    /// AWS profile with the account's admin credentials (default: the standard chain)
    #[arg(long, value_name = "P")]
    admin_profile: Option<String>,
    /// A group admin computers may add machines to (repeatable)
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    /// A bucket whose policy admin computers may edit (repeatable)
    #[arg(long = "bucket", value_name = "B")]
    buckets: Vec<String>,
    /// A KMS key whose policy admin computers may edit (repeatable)
    #[arg(long = "kms-key", value_name = "K")]
    kms_keys: Vec<String>,
    /// Designate this machine user (e.g. alice-laptop) as an admin computer (repeatable)
    #[arg(long = "admin-machine", value_name = "USER")]
    admin_machines: Vec<String>,
    /// Guard this role: revoking a machine then ends its sessions of the role (repeatable)
    #[arg(long = "guard-role", value_name = "ROLE")]
    guard_roles: Vec<String>,
    /// AWS region for STS and the API calls (default: the profile's, else us-east-1)
    #[arg(long, value_name = "R")]
    region: Option<String>,
}

pub fn init(a: &InitArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let who = Who { admin: true, admin_profile: a.admin_profile.clone(), ..Who::default() };
        let actor = actor::as_bootstrap(&who, a.region.as_deref(), a.run.yes, a.run.json).await?;
        let aws = actor.cx.admin.as_ref().expect("bootstrap");
        let whitelists = account::resolve(
            aws,
            Whitelists { groups: a.groups.clone(), buckets: a.buckets.clone(), kms_keys: a.kms_keys.clone() },
        )
        .await?;
        let state = AccountState::read(aws, &actor.cx.arns).await?;
        for m in &a.admin_machines {
            if !state.machines.iter().any(|r| r.user.name == *m && r.user.revoked_at().is_none()) {
                anyhow::bail!("--admin-machine {m}: there is no active machine user {m}; see `keyward machines --admin`. Nothing was changed.");
            }
        }
        let req = Request {
            whitelists,
            admins: a.admin_machines.clone(),
            guard_roles: a.guard_roles.clone(),
            owner: None,
        };
        let plan = Plan::of(
            format!("keyward's pieces in account {}", actor.cx.arns.account),
            crate::plan::lists::init(&state, &req, actor.cx.clock),
        );
        if a.run.dry_run && !a.run.json {
            print_documents(&plan);
        }
        let mode = a.run;
        let report = execute(&plan, &actor.cx, mode).await?;
        if report.failed() {
            anyhow::bail!("init stopped at a failed step; run `keyward init` again to finish");
        }
        if !a.run.json && !a.run.dry_run {
            if report.changed() {
                println!("account {}: keyward is set up", actor.cx.arns.account);
            } else {
                println!("nothing changed: everything was already in place");
            }
            println!("next: `keyward setup --owner YOU --admin` on your first computer");
        }
        Ok(())
    })
}

/// The documents a dry run would write, for review.
fn print_documents(plan: &Plan) {
    use crate::plan::{AccountStep, Step};
    for step in &plan.steps {
        match step {
            Step::Account(AccountStep::ManagedPolicy { doc, .. }) => {
                println!("# {}\n{}", step.label(), crate::iam::policy::to_text(doc));
            }
            Step::Account(AccountStep::Role { trust, policy, .. }) => {
                println!(
                    "# {} trust policy\n{}",
                    step.label(),
                    crate::iam::policy::to_text(trust)
                );
                println!(
                    "# {} permissions\n{}",
                    step.label(),
                    crate::iam::policy::to_text(policy)
                );
            }
            _ => {}
        }
    }
}
