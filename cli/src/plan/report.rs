//! What a plan did, for people (one line per step) and for scripts (`--json`).

use serde::Serialize;

use super::{Needs, Status, StepId};
use crate::ui;

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: StepId,
    pub label: String,
    pub needs: Needs,
    pub status: Status,
    pub detail: String,
}

impl StepReport {
    /// One line on stderr: `✓` done, `·` already done, `→` would do, `…` pending.
    pub fn print(&self) {
        let line = if self.detail.is_empty() {
            self.label.clone()
        } else {
            format!("{}: {}", self.label, self.detail)
        };
        match self.status {
            Status::Done => ui::done(&line),
            Status::AlreadyDone => ui::skipped(&line),
            Status::WouldDo => ui::would(&line),
            Status::Pending => ui::pending(&line),
            Status::Unknown => ui::note(&format!("{line} (could not check)")),
            Status::Failed => ui::failed(&line),
            Status::NotRun => ui::skipped(&format!("{} (not run)", self.label)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plan: String,
    pub dry_run: bool,
    pub steps: Vec<StepReport>,
}

impl Report {
    pub fn new(title: &str, dry_run: bool) -> Self {
        Self {
            plan: title.to_owned(),
            dry_run,
            steps: Vec::new(),
        }
    }

    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == Status::Failed)
    }

    /// Steps someone with other rights must still run.
    pub fn pending(&self) -> Vec<&StepReport> {
        self.steps
            .iter()
            .filter(|s| s.status == Status::Pending)
            .collect()
    }

    /// Whether anything changed (or, in a dry run, would change).
    pub fn changed(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.status, Status::Done | Status::WouldDo))
    }

    /// Everything ran or was already done.
    pub fn complete(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.status, Status::Done | Status::AlreadyDone))
    }

    /// The JSON document of `--json`: the report plus `complete`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("reports serialize");
        v["complete"] = serde_json::Value::Bool(self.complete());
        v["pending"] = serde_json::Value::Array(
            self.pending()
                .iter()
                .map(|s| serde_json::to_value(s.id).expect("ids serialize"))
                .collect(),
        );
        v
    }
}
