//! `keyward audit`: the account against the article's rules. Read-only unless `--fix`;
//! one line per finding with the exact fix. Run it weekly by hand, daily in CI.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use super::{execute, RunMode};
use crate::actor::{self, Actor, Who};
use crate::audit::fix::{FixPlan, Repair};
use crate::audit::{self, Finding, Limits, Severity, Snapshot};
use crate::clients::Aws;
use crate::plan::{lists, Needs, Plan, Status, Step};
use crate::ui;

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    who: Who,
    /// Print the findings as JSON on stdout (for CI jobs)
    #[arg(long)]
    json: bool,
    /// Fix what keyward can, as one plan shown first: Block Public Access, dangling
    /// principal ids, the encryption deny, old keys, revoked machines' groups, idle
    /// machines (asked one by one); root findings never (their console steps are printed)
    #[arg(long)]
    fix: bool,
    /// Apply the fixes without asking (idle machines and key deletion included)
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
    /// The fix plan's report: every step, done, pending (with who can run it) or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix_report: Option<serde_json::Value>,
}

#[derive(Serialize, Default)]
struct Counts {
    high: usize,
    medium: usize,
    low: usize,
}

pub fn audit(a: &AuditArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let mut actor = actor::as_machine(&a.who, a.yes, a.json).await?;
        let Some(aws) = actor.cx.aws_for(Needs::Admin).cloned() else {
            bail!("the audit reads the whole account: run it on an admin computer, or with `--admin-profile P` (any credentials that can read IAM, S3 and KMS)");
        };
        let started = Instant::now();
        let limits = Limits { max_key_age: a.max_key_age, max_idle: a.max_idle, now: actor.cx.clock.now() };
        let mut findings = collect(&aws, &actor.cx, &limits, a).await?;
        let mut fixed = Vec::new();
        let mut fix_report = None;
        if a.fix {
            // As revoke does: an admin computer fixes as the admin role, for every owner.
            if actor.cx.admin.is_some() {
                actor.cx.machine = None;
            }
            (fixed, fix_report) = apply_fixes(&actor, &aws, &findings, a).await?;
            if !fixed.is_empty() {
                findings = collect(&aws, &actor.cx, &limits, a).await?;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let run = Run { account: &actor.cx.arns.account, auditor: &actor.cx.actor, seconds };
        report(&run, &findings, fixed, fix_report, a.json)?;
        if let Some(level) = a.fail_on.level() {
            if findings.iter().any(|f| f.severity >= level) {
                std::process::exit(1);
            }
        }
        Ok(())
    })
}

async fn collect(
    aws: &Aws,
    cx: &crate::plan::Cx,
    l: &Limits,
    a: &AuditArgs,
) -> Result<Vec<Finding>> {
    let spinner = (!a.json).then(|| ui::Spinner::start("reading the account"));
    let account = cx.arns.account.clone();
    let mut out = Vec::new();
    // A check that cannot read what it needs says so; it never passes silently, and
    // the others still run.
    let mut checked = |what: &'static str, r: Result<Vec<Finding>>| match r {
        Ok(f) => out.extend(f),
        Err(e) => out.push(audit::not_checked(what, &e)),
    };
    let snap = Snapshot::read(aws, &account).await;
    let report = audit::account::credential_report(aws).await;
    checked(
        "root",
        audit::account::root(aws, report.as_deref().unwrap_or(&[]), &account).await,
    );
    match (&snap, &report) {
        (Ok(snap), Ok(report)) => {
            checked("users", Ok(audit::account::outsiders(snap, report, l)));
            checked("machines", Ok(audit::account::machines(snap, report, l)));
        }
        (_, Err(e)) | (Err(e), _) => checked("users and machines", Err(anyhow::anyhow!("{e:#}"))),
    }
    match &snap {
        Ok(snap) => {
            checked("rights", Ok(audit::rights::findings(snap)));
            checked("trust policies", Ok(audit::data::trusts(snap)));
            checked(
                "just-in-time grants",
                Ok(audit::data::expired_jit(snap, l.now)),
            );
        }
        Err(e) => checked("rights", Err(anyhow::anyhow!("{e:#}"))),
    }
    if let Ok(snap) = &snap {
        checked(
            "keyward's documents",
            audit::rights::drift(aws, cx, snap).await,
        );
    }
    checked("buckets", audit::data::buckets(aws, &account).await);
    checked("KMS keys", audit::data::kms_keys(aws, &account).await);
    if !a.no_local {
        out.extend(audit::local::findings());
    }
    out.sort_by(|x, y| y.severity.cmp(&x.severity).then(x.check.cmp(y.check)));
    if let Some(s) = spinner {
        s.clear();
    }
    Ok(out)
}

/// One plan from the fixable findings, shown and run like every keyward change; idle
/// machines are revoked only when confirmed one by one. Deactivated keys are deleted
/// in a second plan, after a confirmation. Returns the labels of the steps done.
async fn apply_fixes(
    actor: &Actor,
    aws: &Aws,
    findings: &[Finding],
    a: &AuditArgs,
) -> Result<(Vec<String>, Option<serde_json::Value>)> {
    let admins = crate::iam::account::admins(aws).await.unwrap_or_default();
    let mut chosen = Vec::new();
    for f in findings {
        match &f.fix_plan {
            Some(FixPlan::Revoke { user, .. })
                if !a.yes && !ui::confirm(&format!("revoke {user}? {}", f.what))? => {}
            Some(fix) => chosen.push(fix),
            None => {}
        }
    }
    let plan = Plan::of(
        "fix what the audit found",
        lists::audit_fix(chosen, &admins),
    );
    if plan.steps.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mode = RunMode {
        dry_run: false,
        yes: a.yes,
        json: false,
    };
    let report = execute(&plan, &actor.cx, mode).await?;
    let mut done: Vec<String> = report
        .steps
        .iter()
        .filter(|s| s.status == Status::Done)
        .map(|s| s.label.clone())
        .collect();
    if report.failed() {
        eprintln!("a fix failed (above); the others were applied. Fix that one by hand, or run `keyward audit --fix` again");
    }
    let retired: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Repair(Repair::DeactivateOldKeys { user, .. }) => Some(user.clone()),
            _ => None,
        })
        .collect();
    if !retired.is_empty()
        && (a.yes
            || ui::confirm(&format!(
                "delete the deactivated keys of {} now? Nothing can use them any more",
                retired.join(", ")
            ))?)
    {
        let second = Plan::of(
            "delete the deactivated keys",
            lists::audit_delete_inactive(retired),
        );
        let r = execute(&second, &actor.cx, mode).await?;
        done.extend(
            r.steps
                .iter()
                .filter(|s| s.status == Status::Done)
                .map(|s| s.label.clone()),
        );
    }
    Ok((done, Some(report.to_json())))
}

/// Who audited which account, and how long it took.
struct Run<'a> {
    account: &'a str,
    auditor: &'a str,
    seconds: f64,
}

fn report(
    run: &Run,
    findings: &[Finding],
    fixed: Vec<String>,
    fix_report: Option<serde_json::Value>,
    json: bool,
) -> Result<()> {
    let Run {
        account,
        auditor,
        seconds,
    } = *run;
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
            fix_report,
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
