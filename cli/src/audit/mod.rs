//! `keyward audit`: the account checked against the article's rules. Read-only; every
//! finding says what, where, and the exact fix (a keyward command where one exists).
//! Prowler's checks on the same themes are the floor (see the README's table).

pub mod account;
pub mod data;
pub mod fix;
pub mod local;
pub mod rights;

use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use crate::iam::snapshot::Snapshot;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
        }
    }
}

/// One problem: severity, a stable check id, what, where, and the exact fix.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub check: &'static str,
    pub what: String,
    #[serde(rename = "where")]
    pub location: String,
    pub fix: String,
    /// The step(s) `--fix` plans for it, when keyward can fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_plan: Option<fix::FixPlan>,
}

impl Finding {
    pub fn new(
        severity: Severity,
        check: &'static str,
        what: impl Into<String>,
        location: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            check,
            what: what.into(),
            location: location.into(),
            fix: fix.into(),
            fix_plan: None,
        }
    }

    #[must_use]
    pub fn fixable(mut self, f: fix::FixPlan) -> Self {
        self.fix_plan = Some(f);
        self
    }

    #[must_use]
    pub fn repair(self, r: fix::Repair) -> Self {
        self.fixable(fix::FixPlan::Repair(r))
    }
}

/// A check that could not read what it needs: reported, never passed silently.
pub fn not_checked(what: &str, e: &anyhow::Error) -> Finding {
    let denied = match crate::iam::aws_error(e).filter(|a| a.is_denied()) {
        Some(a) => format!("AccessDenied on {}", a.operation()),
        None => format!("{e:#}"),
    };
    Finding::new(
        Severity::Medium,
        "not-checked",
        format!("{what}: not checked ({denied})"),
        "the auditor's credentials",
        "audit with credentials that can read IAM, S3 and KMS: an admin computer, or `--admin-profile P`",
    )
}

/// The thresholds of `--max-key-age` and `--max-idle`, and the clock they use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_key_age: Duration,
    pub max_idle: Duration,
    pub now: SystemTime,
}

/// Days between `t` and `now` (0 for the future).
pub fn days_since(now: SystemTime, t: SystemTime) -> u64 {
    now.duration_since(t).unwrap_or_default().as_secs() / 86_400
}

/// An IAM id AWS leaves in a policy when the user or role it named was deleted.
pub fn is_dangling_id(p: &str) -> bool {
    let known = ["AIDA", "AROA", "AIPA", "ANPA", "AGPA"];
    p.len() >= 16
        && known.iter().any(|k| p.starts_with(k))
        && p.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_ids_are_told_from_arns_and_names() {
        assert!(is_dangling_id("AIDAJQABLZS4A3QDU576Q"));
        assert!(is_dangling_id("AROAEXAMPLEID1234567"));
        assert!(!is_dangling_id("arn:aws:iam::123456789012:user/alice"));
        assert!(!is_dangling_id("*"));
        assert!(!is_dangling_id("AIDA-short"));
        assert!(!is_dangling_id("123456789012"));
    }
}
