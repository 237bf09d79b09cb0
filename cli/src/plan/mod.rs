//! The plan engine. Every change keyward makes, in AWS or on this computer, is a
//! [`Plan`]: a list of typed [`Step`]s, built by [`lists`]. Each step belongs to a
//! flow (the account, registering, this computer, revoking, apps, rotation, JIT
//! access, audit fixes) whose enum, in its own file here, knows the step's id, its
//! label, who it needs (this computer, an admin, the account's bootstrap admin),
//! whether it is already done, and how to do it. One plan value prints the dry run, drives the run
//! and renders `--json` for both, so what is shown is what runs. A re-run after a
//! failure skips what is done and continues where it stopped.

pub mod access;
mod account;
pub mod app;
pub mod lists;
pub mod local;
mod register;
pub mod repair;
mod report;
pub mod revoke;
pub mod rotate;
mod step;
mod step_id;

use serde::Serialize;

pub use account::{AccountStep, KeywardRole, Managed};
pub use local::LocalStep;
pub use register::RegisterStep;
pub use report::{Report, StepReport};
pub use revoke::RevokeStep;
pub(crate) use step::FlowStep;
pub use step::Step;
pub use step_id::StepId;

use crate::clients::Aws;
use crate::iam::documents::Arns;
use crate::iam::resources::{Approve, PolicyHome};
use crate::ui;

/// Whose rights a step needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Needs {
    /// Only this computer (keychain, config files, the daemon).
    Local,
    /// This computer's MFA session (an admin may stand in).
    Machine,
    /// An enrollment session or the bootstrap admin: creating this computer's user.
    Registrar,
    /// An admin: the admin role, or the bootstrap admin.
    Admin,
    /// The account's own admin credentials (`--admin-profile`, or the environment).
    Bootstrap,
}

impl Needs {
    /// What to do when nobody here has these rights.
    pub fn hint(self) -> &'static str {
        match self {
            Needs::Local | Needs::Machine => "this computer's MFA session: run `keyward login`",
            Needs::Registrar => "an enrollment code from `keyward enroll`, or --admin-profile",
            Needs::Admin => {
                "an admin: run the same command on an admin computer, or with --admin-profile"
            }
            Needs::Bootstrap => {
                "the account's admin credentials: run the same command with --admin-profile P"
            }
        }
    }
}

/// What a step found when it looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Done(String),
    ToDo(String),
}

/// What happened to a step in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    AlreadyDone,
    /// A dry run: it would be done.
    WouldDo,
    /// Nobody here has the rights; someone else must run it (see the detail).
    Pending,
    /// A dry run could not tell (for example, reading was denied).
    Unknown,
    Failed,
    /// An earlier step failed.
    NotRun,
}

/// The identities a plan acts with, and how it asks the user.
pub struct Cx {
    pub arns: Arns,
    /// This computer's MFA session.
    pub machine: Option<Aws>,
    /// The admin role's session, or the bootstrap admin.
    pub admin: Option<Aws>,
    /// Whether `admin` is the account's bootstrap admin (not the admin role).
    pub bootstrap: bool,
    /// An enrollment session, or the bootstrap admin, for creating this computer.
    pub registrar: Option<Aws>,
    /// Apply policy edits without asking.
    pub yes: bool,
    /// Say nothing while running (JSON output).
    pub quiet: bool,
    /// Who acts, for the revoked-by tag.
    pub actor: String,
    /// The command that prints the MFA code (setup reads two codes).
    pub mfa_process: Option<Vec<String>>,
    /// What time it is, for tags, expiries and ages.
    pub clock: keyward_daemon::clock::Clock,
}

impl Cx {
    /// The AWS identity that can do what `needs` asks, if any here can.
    pub fn aws_for(&self, needs: Needs) -> Option<&Aws> {
        match needs {
            Needs::Local | Needs::Machine => self.machine.as_ref().or(self.admin.as_ref()),
            Needs::Registrar => self.registrar.as_ref(),
            Needs::Admin => self.admin.as_ref(),
            Needs::Bootstrap => self.admin.as_ref().filter(|_| self.bootstrap),
        }
    }

    fn can(&self, needs: Needs) -> bool {
        needs == Needs::Local || self.aws_for(needs).is_some()
    }

    /// The identity for `needs`; steps only run when [`Cx::can`] said yes.
    pub(crate) fn aws(&self, needs: Needs) -> anyhow::Result<&Aws> {
        self.aws_for(needs)
            .ok_or_else(|| anyhow::anyhow!("this step needs {}", needs.hint()))
    }
}

impl Approve for Cx {
    fn approve(&self, home: &PolicyHome, diff: &str) -> anyhow::Result<bool> {
        if !self.quiet {
            ui::show_diff(&home.to_string(), diff);
        }
        if self.yes {
            return Ok(true);
        }
        ui::confirm(&format!("apply this change to the {home}?"))
    }

    fn note(&self, message: &str) {
        if !self.quiet {
            ui::note(message);
        }
    }
}

/// A titled list of steps.
pub struct Plan {
    pub title: String,
    pub steps: Vec<Step>,
}

impl Plan {
    /// A plan of `steps` (a list from [`lists`]).
    pub fn of(title: impl Into<String>, steps: Vec<Step>) -> Self {
        Self {
            title: title.into(),
            steps,
        }
    }
}

/// What the engine found or did with one step, and why.
#[derive(Debug)]
enum Outcome {
    /// An earlier step failed.
    NotRun,
    /// Nobody here has the rights the step needs.
    Pending(Needs),
    AlreadyDone(String),
    /// A dry run: the step is to do.
    WouldDo(String),
    Done(String),
    /// A dry run could not check.
    Unknown(anyhow::Error),
    Failed(anyhow::Error),
}

impl Outcome {
    fn status(&self) -> Status {
        match self {
            Outcome::NotRun => Status::NotRun,
            Outcome::Pending(_) => Status::Pending,
            Outcome::AlreadyDone(_) => Status::AlreadyDone,
            Outcome::WouldDo(_) => Status::WouldDo,
            Outcome::Done(_) => Status::Done,
            Outcome::Unknown(_) => Status::Unknown,
            Outcome::Failed(_) => Status::Failed,
        }
    }

    /// The report's detail: what the step said, or the error with its causes.
    fn into_detail(self) -> String {
        match self {
            Outcome::NotRun => String::new(),
            Outcome::Pending(needs) => format!("needs {}", needs.hint()),
            Outcome::AlreadyDone(d) | Outcome::WouldDo(d) | Outcome::Done(d) => d,
            Outcome::Unknown(e) | Outcome::Failed(e) => format!("{e:#}"),
        }
    }
}

/// Checks one step and, unless `dry_run`, does it when it is to do.
async fn take(step: &Step, cx: &Cx, dry_run: bool) -> Outcome {
    if !cx.can(step.needs()) {
        return Outcome::Pending(step.needs());
    }
    match step.check(cx).await {
        Ok(State::Done(d)) => Outcome::AlreadyDone(d),
        Ok(State::ToDo(d)) if dry_run => Outcome::WouldDo(d),
        Ok(State::ToDo(_)) => match step.apply(cx).await {
            Ok(d) => Outcome::Done(d),
            Err(e) => Outcome::Failed(e),
        },
        Err(e) if dry_run => Outcome::Unknown(e),
        Err(e) => Outcome::Failed(e),
    }
}

/// Looks at every step and, unless `dry_run`, does what is not done yet. A failure
/// stops the run: the steps after it are reported as not run. Each step's id and
/// status go to the debug log, never its detail: that may quote an AWS answer.
pub async fn run(plan: &Plan, cx: &Cx, dry_run: bool) -> Report {
    let ids: Vec<String> = lists::ids(&plan.steps)
        .iter()
        .map(ToString::to_string)
        .collect();
    tracing::debug!(dry_run, steps = %ids.join(","), "plan");
    let mut report = Report::new(&plan.title, dry_run);
    let mut failed = false;
    for step in &plan.steps {
        let outcome = if failed {
            Outcome::NotRun
        } else {
            take(step, cx, dry_run).await
        };
        let status = outcome.status();
        tracing::debug!(step = %step.id(), outcome = ?status, "step");
        failed |= status == Status::Failed && step.stops_on_failure();
        let r = StepReport {
            id: step.id(),
            label: step.label(),
            needs: step.needs(),
            status,
            detail: outcome.into_detail(),
        };
        if !cx.quiet {
            r.print();
        }
        report.steps.push(r);
    }
    report
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Log lines, as the CLI's subscriber writes them.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn nobody() -> Cx {
        Cx {
            arns: Arns::new("123456789012"),
            machine: None,
            admin: None,
            bootstrap: false,
            registrar: None,
            yes: false,
            quiet: true,
            actor: "test".into(),
            mfa_process: None,
            clock: keyward_daemon::clock::Clock::at("2030-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn the_debug_log_has_each_steps_id_and_status_only() {
        let plan = Plan::of(
            "revoke",
            vec![RevokeStep::LeaveGroups {
                user: "alice-secret-name".into(),
            }
            .into()],
        );
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let report = tracing::subscriber::with_default(subscriber, || {
            rt.block_on(run(&plan, &nobody(), true))
        });
        assert_eq!(report.steps[0].status, Status::Pending);
        let log = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("steps=leave_groups"), "{log}");
        assert!(log.contains("step=leave_groups outcome=Pending"), "{log}");
        assert!(
            !log.contains("alice-secret-name"),
            "labels and details stay out: {log}"
        );
    }
}
