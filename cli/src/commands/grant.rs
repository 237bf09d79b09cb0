//! `keyward grant MACHINE`: an admin adds a registered computer to groups, bucket
//! policies and key policies (the whitelists; bucket and key policies cannot name
//! groups, so each computer is named there one by one).

use anyhow::{bail, Result};
use clap::Args;

use super::{execute, RunMode};
use crate::actor::{self, Who};
use crate::iam::resources::{self, PolicyHome};
use crate::iam::users;
use crate::names;
use crate::plan::{Plan, Step};

#[derive(Args)]
pub struct GrantArgs {
    /// The machine (`work`) or its IAM user (`alice-work`)
    machine: String,
    /// Its owner (default: this computer's owner)
    #[arg(long)]
    owner: Option<String>,
    /// Group to add it to (repeatable): groups are the whitelist of rights
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    /// Bucket whose policy should name it (repeatable)
    #[arg(long = "bucket", value_name = "B")]
    buckets: Vec<String>,
    /// KMS key whose policy should name it (repeatable)
    #[arg(long = "kms-key", value_name = "K")]
    kms_keys: Vec<String>,
    /// Also deny uploads without aws:kms, and everyone not on the bucket's whitelist
    #[arg(long)]
    enforce_encryption: bool,
    #[command(flatten)]
    who: Who,
    /// Show the plan and every document; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Apply without asking
    #[arg(long)]
    yes: bool,
    /// Print JSON on stdout (for scripts)
    #[arg(long)]
    json: bool,
}

pub fn grant(a: &GrantArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let actor = actor::as_machine(&a.who, a.yes, a.json).await?;
        let Some(admin) = actor.cx.admin.as_ref() else {
            bail!("granting needs an admin: run it on an admin computer, or with --admin-profile");
        };
        let owner = a.owner.clone().or_else(|| actor.owner().map(str::to_owned));
        let user = names::resolve_machine(owner.as_deref(), &a.machine);
        let Some(target) = users::get_user(admin, &user).await? else {
            bail!("there is no machine {user}; see `keyward machines`");
        };
        if !target.is_machine() || target.revoked_at().is_some() || !target.is_enrolled() {
            bail!("{user} is not a registered, active keyward machine; nothing was granted");
        }
        let mut plan = Plan::new(format!("grant {user}"));
        for g in &a.groups {
            plan.push(Step::JoinGroup {
                user: user.clone(),
                group: g.clone(),
            });
        }
        for b in &a.buckets {
            plan.push(Step::NameInPolicy {
                user: user.clone(),
                home: PolicyHome::Bucket(b.clone()),
                enforce: a.enforce_encryption,
            });
        }
        for k in &a.kms_keys {
            let arn = resources::kms_key_arn(admin, k)
                .await?
                .unwrap_or_else(|| k.clone());
            plan.push(Step::NameInPolicy {
                user: user.clone(),
                home: PolicyHome::Key(arn),
                enforce: false,
            });
        }
        if plan.steps.is_empty() {
            bail!("nothing to grant: give --group, --bucket or --kms-key");
        }
        let mode = RunMode {
            dry_run: a.dry_run,
            yes: a.yes,
            json: a.json,
        };
        let report = execute(&plan, &actor.cx, mode).await?;
        if report.failed() {
            bail!("granting stopped at a failed step; run `keyward grant` again to finish");
        }
        Ok(())
    })
}
