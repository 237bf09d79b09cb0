//! `keyward audit`: the account against the article's rules. Read-only unless `--fix`;
//! one line per finding with the exact fix. Run it weekly by hand, daily in CI.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::actor::{self, Who};
use crate::audit::{self, fix, Finding, Limits, Severity, Snapshot};
use crate::clients::Aws;
use crate::plan::Needs;
use crate::ui;

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    who: Who,
    /// Print the findings as JSON on stdout (for CI jobs)
    #[arg(long)]
    json: bool,
    /// Apply the fixes keyward can make (Block Public Access, dangling principal ids),
    /// after showing them; the rest are printed with their command
    #[arg(long)]
    fix: bool,
    /// Apply the fixes without asking
    #[arg(long, requires = "fix")]
    yes: bool,
    /// A key older than this is a finding
    #[arg(long, value_name = "D", default_value = "90d", value_parser = humantime::parse_duration)]
    max_key_age: Duration,
    /// A machine or key unused for this long is a finding
    #[arg(long, value_name = "D", default_value = "30d", value_parser = humantime::parse_duration)]
    max_idle: Duration,
    /// Exit 1 when a finding of this severity or worse remains: low, medium, high, never
    #[arg(long, value_name = "S", value_enum, default_value_t = FailOn::High)]
    fail_on: FailOn,
    /// Skip the checks of this computer (plaintext keys, credential_process lines)
    #[arg(long)]
    no_local: bool,
}

/// When the audit exits 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    Low,
    Medium,
    High,
    Never,
}

impl FailOn {
    fn level(self) -> Option<Severity> {
        match self {
            Self::Low => Some(Severity::Low),
            Self::Medium => Some(Severity::Medium),
            Self::High => Some(Severity::High),
            Self::Never => None,
        }
    }
}

/// `keyward audit --json`.
#[derive(Serialize)]
struct AuditOutput<'a> {
    account: &'a str,
    auditor: &'a str,
    seconds: f64,
    counts: Counts,
    findings: &'a [Finding],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixed: Vec<String>,
}

#[derive(Serialize, Default)]
struct Counts {
    high: usize,
    medium: usize,
    low: usize,
}

pub fn audit(a: &AuditArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let actor = actor::as_machine(&a.who, true, true).await?;
        let Some(aws) = actor.cx.aws_for(Needs::Admin).cloned() else {
            bail!("the audit reads the whole account: run it on an admin computer, or with `--admin-profile P` (any credentials that can read IAM, S3 and KMS)");
        };
        let started = Instant::now();
        let spinner = (!a.json).then(|| ui::Spinner::start("reading the account"));
        let limits = Limits { max_key_age: a.max_key_age, max_idle: a.max_idle, now: SystemTime::now() };
        let mut findings = collect(&aws, &actor.cx, &limits).await?;
        if !a.no_local {
            findings.extend(audit::local::findings());
        }
        findings.sort_by(|x, y| y.severity.cmp(&x.severity).then(x.check.cmp(y.check)));
        if let Some(s) = spinner {
            s.clear();
        }
        let fixed = if a.fix { apply_fixes(&aws, &findings, a.yes, a.json).await? } else { Vec::new() };
        let remaining: Vec<Finding> = findings
            .into_iter()
            .filter(|f| !f.auto_fix.as_ref().is_some_and(|x| fixed.contains(&x.to_string())))
            .collect();
        let seconds = started.elapsed().as_secs_f64();
        report(&actor.cx.arns.account, &actor.cx.actor, seconds, &remaining, fixed, a.json)?;
        if let Some(level) = a.fail_on.level() {
            if remaining.iter().any(|f| f.severity >= level) {
                std::process::exit(1);
            }
        }
        Ok(())
    })
}

async fn collect(aws: &Aws, cx: &crate::plan::Cx, l: &Limits) -> Result<Vec<Finding>> {
    let account = cx.arns.account.clone();
    let snap = Snapshot::read(aws, &account).await?;
    let report = audit::account::credential_report(aws).await?;
    let mut out = audit::account::root(aws, &report, &account).await?;
    out.extend(audit::account::outsiders(&snap, &report, l));
    out.extend(audit::account::machines(&snap, &report, l));
    out.extend(audit::rights::findings(&snap));
    out.extend(audit::rights::drift(aws, cx).await?);
    out.extend(audit::data::buckets(aws, &account).await?);
    out.extend(audit::data::kms_keys(aws, &account).await?);
    out.extend(audit::data::trusts(&snap));
    Ok(out)
}

/// Shows the fixes keyward can make, asks (unless `--yes`), applies them.
async fn apply_fixes(
    aws: &Aws,
    findings: &[Finding],
    yes: bool,
    json: bool,
) -> Result<Vec<String>> {
    let mut fixes: Vec<&fix::AutoFix> = findings
        .iter()
        .filter_map(|f| f.auto_fix.as_ref())
        .collect();
    fixes.dedup();
    fixes.sort_by_key(ToString::to_string);
    fixes.dedup_by_key(|f| f.to_string());
    if fixes.is_empty() {
        return Ok(Vec::new());
    }
    if !json {
        ui::heading("fixes keyward can make");
        for f in &fixes {
            ui::would(&f.to_string());
        }
    }
    if !yes && !ui::confirm("apply these fixes?")? {
        bail!("nothing was changed; re-run with --fix --yes to apply without asking");
    }
    let mut done = Vec::new();
    for f in fixes {
        match fix::apply(aws, f).await {
            Ok(what) => {
                if !json {
                    ui::done(&what);
                }
                done.push(what);
            }
            Err(e) => {
                ui::failed(&format!("{f}: {e:#}"));
                eprintln!("the fixes above it were applied; fix this one by hand, or run `keyward audit --fix` again");
            }
        }
    }
    Ok(done)
}

fn report(
    account: &str,
    auditor: &str,
    seconds: f64,
    findings: &[Finding],
    fixed: Vec<String>,
    json: bool,
) -> Result<()> {
    let mut counts = Counts::default();
    for f in findings {
        match f.severity {
            Severity::High => counts.high += 1,
            Severity::Medium => counts.medium += 1,
            Severity::Low => counts.low += 1,
        }
    }
    if json {
        let out = AuditOutput {
            account,
            auditor,
            seconds,
            counts,
            findings,
            fixed,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for f in findings {
        println!(
            "{:<6} {:<32} {} ({})",
            f.severity.label(),
            f.check,
            f.what,
            f.location
        );
        println!("{:<39} fix: {}", "", f.fix);
    }
    println!(
        "account {account}: {} high, {} medium, {} low finding(s) in {seconds:.1}s{}",
        counts.high,
        counts.medium,
        counts.low,
        if fixed.is_empty() {
            String::new()
        } else {
            format!("; {} fixed", fixed.len())
        }
    );
    Ok(())
}
