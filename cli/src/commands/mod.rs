//! The commands. Each is thin: parse, build a plan (or read), show it, run it.
//! A command module never imports another one; what they share lives in `plan`,
//! `iam`, `local` and `actor`.

pub mod access;
pub mod app;
pub mod audit;
pub mod demo;
pub mod deregister;
pub mod docs;
pub mod doctor;
pub mod enroll;
pub mod exec;
pub mod grant;
pub mod init;
pub mod key;
pub mod machines;
pub mod profile;
pub mod revoke;
pub mod rotate;
pub mod session;
pub mod setup;
pub mod unlock;

use anyhow::{bail, Result};

use crate::plan::{self, Cx, Plan, Report};
use crate::ui;

/// The whitelists a computer is put on: the same three options wherever rights are
/// granted (setup, enroll, grant).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Rights {
    /// Group the computer joins (repeatable): groups are the whitelist of rights
    #[arg(long = "group", value_name = "G")]
    pub groups: Vec<String>,
    /// Bucket whose policy names the computer (repeatable)
    #[arg(long = "bucket", value_name = "B")]
    pub buckets: Vec<String>,
    /// KMS key whose policy names the computer (repeatable)
    #[arg(long = "kms-key", value_name = "K")]
    pub kms_keys: Vec<String>,
}

impl Rights {
    pub fn whitelists(&self) -> crate::iam::documents::Whitelists {
        crate::iam::documents::Whitelists {
            groups: self.groups.clone(),
            buckets: self.buckets.clone(),
            kms_keys: self.kms_keys.clone(),
        }
    }
}

/// How a command wants its plan run: the same three flags on every command that
/// changes IAM.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct RunMode {
    /// Show the plan and every document; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking (policy edits included)
    #[arg(long)]
    pub yes: bool,
    /// Print the plan's report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// Shows the plan, asks (unless `--yes`), runs it, and prints `--json` if asked.
/// A dry run only looks.
pub async fn execute(plan: &Plan, cx: &Cx, mode: RunMode) -> Result<Report> {
    if !cx.quiet {
        ui::heading(&plan.title);
    }
    if mode.dry_run {
        let report = plan::run(plan, cx, true).await;
        finish(&report, mode)?;
        return Ok(report);
    }
    if !mode.yes {
        let preview = plan::run(plan, cx, true).await;
        if !preview.changed() {
            finish(&preview, mode)?;
            return Ok(preview);
        }
        if !ui::confirm("apply these changes?")? {
            bail!("nothing was changed; re-run with --yes to apply without asking");
        }
    }
    let report = plan::run(plan, cx, false).await;
    finish(&report, mode)?;
    Ok(report)
}

fn finish(report: &Report, mode: RunMode) -> Result<()> {
    if mode.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    }
    if report.dry_run && !mode.json {
        eprintln!("dry run: nothing changed");
    }
    Ok(())
}
