//! What `keyward audit --fix` can change: a [`FixPlan`] per finding. Revoking an idle
//! machine and taking a revoked one out of its groups reuse revocation's steps; the
//! rest are [`Repair`] steps (`plan/repair.rs`).

use serde::Serialize;

pub use crate::plan::repair::Repair;

/// Where a policy lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Home {
    Bucket(String),
    Key(String),
    Trust(String),
}

impl std::fmt::Display for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Home::Bucket(b) => write!(f, "bucket policy of s3://{b}"),
            Home::Key(k) => write!(f, "key policy of {k}"),
            Home::Trust(r) => write!(f, "trust policy of role {r}"),
        }
    }
}

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
