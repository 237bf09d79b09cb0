//! A step of a plan: one variant per flow, each delegating to its flow's enum. A flow
//! owns its steps' ids, rights, labels, checks and changes in its own file under
//! `plan/` ([`FlowStep`]); their ids are in `step_id.rs`.

use anyhow::Result;

use super::access::AccessStep;
use super::account::AccountStep;
use super::app::AppStep;
use super::local::LocalStep;
use super::register::RegisterStep;
use super::repair::Repair;
use super::revoke::RevokeStep;
use super::rotate::RotateStep;
use super::{Cx, Needs, State, StepId};

/// What each flow's step enum does: all the engine needs of a step.
pub(crate) trait FlowStep {
    /// The stable name `--json` reports.
    fn id(&self) -> StepId;
    /// Whose rights it needs; the engine reports it pending when nobody here has them.
    fn needs(&self) -> Needs;
    fn label(&self) -> String;
    /// Looks and changes nothing: whether it is done (a dry run calls only this).
    async fn check(&self, cx: &Cx) -> Result<State>;
    /// Does it; called only after `check` said it is to do.
    async fn apply(&self, cx: &Cx) -> Result<String>;
    /// Whether a failure of this step stops the plan.
    fn stops_on_failure(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone)]
pub enum Step {
    /// keyward's policies and roles, guarded roles, admin computers, upgrades.
    Account(AccountStep),
    /// A computer's user, MFA device and key; its whitelists.
    Register(RegisterStep),
    /// This computer's profiles, keywardd, its key's acceptance.
    Local(LocalStep),
    /// Cutting a computer off.
    Revoke(RevokeStep),
    /// An application's pieces (`keyward app`).
    App(AppStep),
    /// A key rotation (`keyward rotate`).
    Rotate(RotateStep),
    /// Just-in-time group access (`keyward access`).
    Access(AccessStep),
    /// A change only `keyward audit --fix` makes.
    Repair(Repair),
}

/// `$body` with `$s` bound to the flow step inside `$step`: the one match on flows.
macro_rules! on_flow {
    ($step:expr, $s:ident => $body:expr) => {
        match $step {
            Step::Account($s) => $body,
            Step::Register($s) => $body,
            Step::Local($s) => $body,
            Step::Revoke($s) => $body,
            Step::App($s) => $body,
            Step::Rotate($s) => $body,
            Step::Access($s) => $body,
            Step::Repair($s) => $body,
        }
    };
}

impl Step {
    pub fn id(&self) -> StepId {
        on_flow!(self, s => s.id())
    }

    pub fn needs(&self) -> Needs {
        on_flow!(self, s => s.needs())
    }

    pub fn label(&self) -> String {
        on_flow!(self, s => s.label())
    }

    pub fn stops_on_failure(&self) -> bool {
        on_flow!(self, s => s.stops_on_failure())
    }

    pub async fn check(&self, cx: &Cx) -> Result<State> {
        on_flow!(self, s => s.check(cx).await)
    }

    pub async fn apply(&self, cx: &Cx) -> Result<String> {
        on_flow!(self, s => s.apply(cx).await)
    }
}

macro_rules! from_flow {
    ($($flow:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Step {
            fn from(s: $ty) -> Self {
                Step::$flow(s)
            }
        })*
    };
}

from_flow!(
    Account(AccountStep),
    Register(RegisterStep),
    Local(LocalStep),
    Revoke(RevokeStep),
    App(AppStep),
    Rotate(RotateStep),
    Access(AccessStep),
    Repair(Repair),
);
