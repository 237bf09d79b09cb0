//! `keyward grant MACHINE`: an admin adds a registered computer to groups, bucket
//! policies and key policies (the whitelists; bucket and key policies cannot name
//! groups, so each computer is named there one by one).

use anyhow::{bail, Result};
use clap::Args;

use super::{execute, Rights, RunMode};
use crate::actor::{self, Who};
use crate::iam::documents::Whitelists;
use crate::iam::resources;
use crate::iam::users;
use crate::names;
use crate::plan::{lists, Plan};

#[derive(Args)]
pub struct GrantArgs {
    #[command(flatten)]
    run: RunMode,
    /// The machine (`work`) or its IAM user (`alice-work`)
    machine: String,
    /// Its owner (default: this computer's owner)
    #[arg(long)]
    owner: Option<String>,
    #[command(flatten)]
    rights: Rights,
    /// Also deny uploads without aws:kms, and everyone not on the bucket's whitelist
    #[arg(long)]
    enforce_encryption: bool,
    #[command(flatten)]
    who: Who,
}

pub fn grant(a: &GrantArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let actor = actor::as_machine(&a.who, a.run.yes, a.run.json).await?;
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
        let mut kms_keys = Vec::new();
        for k in &a.rights.kms_keys {
            let arn = resources::kms_key_arn(admin, k).await?;
            kms_keys.push(arn.unwrap_or_else(|| k.clone()));
        }
        let w = Whitelists {
            groups: a.rights.groups.clone(),
            buckets: a.rights.buckets.clone(),
            kms_keys,
        };
        if w.groups.is_empty() && w.buckets.is_empty() && w.kms_keys.is_empty() {
            bail!("nothing to grant: give --group, --bucket or --kms-key");
        }
        let plan = Plan::of(
            format!("grant {user}"),
            lists::grant(&user, &w, a.enforce_encryption, target.owner()),
        );
        let mode = a.run;
        let report = execute(&plan, &actor.cx, mode).await?;
        if report.failed() {
            bail!("granting stopped at a failed step; run `keyward grant` again to finish");
        }
        Ok(())
    })
}
