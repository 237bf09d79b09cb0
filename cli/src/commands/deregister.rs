//! `keyward deregister`: this computer revokes itself and forgets everything local.
//! Admin steps run first (while an admin role session of this computer still works);
//! the deny-all goes on last, because it ends the session doing the work.

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{execute, RunMode};
use crate::actor::{self, Who};
use crate::plan::lists::{self, CutOff};
use crate::plan::Plan;
use crate::ui;

#[derive(Args)]
pub struct DeregisterArgs {
    #[command(flatten)]
    run: RunMode,
    /// This computer's keyward profile (default: the only base profile)
    #[arg(long)]
    profile: Option<String>,
}

pub fn deregister(a: &DeregisterArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let who = Who { profile: a.profile.clone(), ..Who::default() };
        let actor = actor::as_machine(&who, a.run.yes, a.run.json).await?;
        let me = actor.me.clone().context("not a machine user")?;
        let profile = actor.profile.clone().context("no profile")?;
        let user = me.name.clone();
        let how = CutOff::Deregister { owner: me.owner().unwrap_or_default().to_owned(), profile };
        let plan = Plan::of(format!("decommission this computer: {} ({})", user, me.arn), lists::cut_off(&user, how));
        let mode = a.run;
        let report = execute(&plan, &actor.cx, mode).await?;
        if report.failed() {
            bail!("deregistration is incomplete; run `keyward deregister --yes` again to finish");
        }
        if !a.run.json && !a.run.dry_run {
            println!("{user} is deregistered: its key, MFA device and sessions are gone, and nothing of it is left on this computer");
            ui::note(&format!("an admin finishes with `keyward revoke {user} --purge` (groups and policies it may still be in, the role guard, the user itself)"));
        }
        Ok(())
    })
}
