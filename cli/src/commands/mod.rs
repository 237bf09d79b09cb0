//! The commands. Each is thin: parse, build a plan (or read), show it, run it.
//! A command module never imports another one; what they share lives in `plan`,
//! `iam`, `local` and `actor`.

pub mod demo;
pub mod deregister;
pub mod docs;
pub mod doctor;
pub mod enroll;
pub mod grant;
pub mod init;
pub mod key;
pub mod machines;
pub mod profile;
pub mod revoke;
pub mod session;
pub mod setup;

use anyhow::{bail, Result};

use crate::plan::{self, Cx, Plan, Report};
use crate::ui;

/// How a command wants its plan run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunMode {
    pub dry_run: bool,
    /// Skip the question before changes (and the policy diffs' questions).
    pub yes: bool,
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
