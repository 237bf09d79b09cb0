//! What `keyward audit --fix` can change: a [`FixPlan`] per finding. Revoking an idle
//! machine and taking a revoked one out of its groups reuse revocation's steps; the
//! rest are [`Repair`] steps (`plan/repair.rs`).

use serde::Serialize;

pub use crate::plan::repair::Repair;

/// What a finding's fix does, in the plan `--fix` builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FixPlan {
    Repair(Repair),
    /// Revoke an idle machine (asked per machine).
    Revoke {
        user: String,
        owner: String,
    },
    /// Take a revoked machine out of its groups.
    LeaveGroups {
        user: String,
    },
}
