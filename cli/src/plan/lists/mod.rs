//! Every command's step list. A command reads what it needs (from AWS, its flags,
//! this computer), then asks here for its plan's steps; these functions make no call
//! and read no clock, so a test can build any command's list from plain values, and
//! [`ids`] gives the step ids it holds (what `--json` reports).

mod account;
mod app;
mod cut_off;
mod setup;

pub use account::init;
pub use app::{app_add, app_grant, app_remove, app_revoke};
pub use cut_off::{cut_off, CutOff};
pub use setup::{setup_bootstrap, setup_enrolled, Registration};

use super::access::AccessStep;
use super::register::RegisterStep;
use super::repair::Repair;
use super::rotate::{RotateStep, Rotation};
use super::{RevokeStep, Step, StepId};
use crate::audit::fix::FixPlan;
use crate::iam::documents::Whitelists;
use crate::iam::jit::Grant;
use crate::iam::resources::PolicyHome;

/// The step ids of a list, in order.
pub fn ids(steps: &[Step]) -> Vec<StepId> {
    steps.iter().map(Step::id).collect()
}

/// The steps that put `user` on the whitelists: its groups, then each bucket and key
/// policy (`enforce` adds the bucket's encryption and outsider denies).
pub fn whitelists(user: &str, w: &Whitelists, enforce: bool) -> Vec<Step> {
    let groups = w.groups.iter().map(|g| RegisterStep::JoinGroup {
        user: user.to_owned(),
        group: g.clone(),
    });
    let buckets = w.buckets.iter().map(|b| RegisterStep::NameInPolicy {
        user: user.to_owned(),
        home: PolicyHome::Bucket(b.clone()),
        enforce,
    });
    let keys = w.kms_keys.iter().map(|k| RegisterStep::NameInPolicy {
        user: user.to_owned(),
        home: PolicyHome::Key(k.clone()),
        enforce: false,
    });
    groups.chain(buckets).chain(keys).map(Step::from).collect()
}

/// `keyward grant`: the whitelists, then the role guard's statement for its owner.
pub fn grant(user: &str, w: &Whitelists, enforce: bool, owner: Option<&str>) -> Vec<Step> {
    let mut out = whitelists(user, w, enforce);
    out.extend(owner.map(guard_owner));
    out
}

/// The role guard's statement for `owner`, so a revocation by any of its computers
/// ends role sessions (`keyward enroll` adds it before the first computer exists).
pub fn guard_owner(owner: &str) -> Step {
    RegisterStep::GuardOwner {
        owner: owner.to_owned(),
    }
    .into()
}

/// `keyward rotate`: a new key staged, accepted and switched to before the old goes.
pub fn rotate(r: &Rotation) -> Vec<Step> {
    [
        RotateStep::Tidy(r.clone()),
        RotateStep::NewKey(r.clone()),
        RotateStep::Accepted(r.clone()),
        RotateStep::Switch(r.clone()),
        RotateStep::DeleteOld(r.clone()),
        RotateStep::DropStaging(r.clone()),
    ]
    .into_iter()
    .map(Step::from)
    .collect()
}

/// `keyward access enable GROUP`: the JIT role, then the admin role's whitelist.
pub fn access_enable(group: &str) -> Vec<Step> {
    let group = group.to_owned();
    vec![
        AccessStep::Role {
            group: group.clone(),
        }
        .into(),
        AccessStep::Whitelist { group }.into(),
    ]
}

/// `keyward access grant|revoke`: the expiry first (a trust written without it would
/// be a grant with no end), then the trust, with the grant or without the machine.
pub fn access_change(grant: &Grant, granted: bool) -> Vec<Step> {
    vec![
        AccessStep::Guard {
            grant: grant.clone(),
        }
        .into(),
        AccessStep::Trust {
            group: grant.group.clone(),
            machine: grant.machine.clone(),
            grant: granted.then(|| grant.clone()),
        }
        .into(),
    ]
}

/// `keyward audit --fix`: the chosen fixes, each step once (an idle machine revoked
/// and also to leave its groups leaves them once). `admins`: the admin computers.
pub fn audit_fix<'a>(fixes: impl IntoIterator<Item = &'a FixPlan>, admins: &[String]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    for fix in fixes {
        let steps = match fix {
            FixPlan::Repair(r) => vec![r.clone().into()],
            FixPlan::LeaveGroups { user } => {
                vec![RevokeStep::LeaveGroups { user: user.clone() }.into()]
            }
            FixPlan::Revoke { user, owner } => {
                let how = CutOff::Revoke {
                    owner: owner.clone(),
                    designated: admins.contains(user),
                    extra: Vec::new(),
                    purge: false,
                };
                cut_off(user, how)
            }
        };
        for step in steps {
            if !out.iter().any(|s| s.label() == step.label()) {
                out.push(step);
            }
        }
    }
    out
}

/// The second plan of `audit --fix`: the keys it deactivated, deleted.
pub fn audit_delete_inactive(users: Vec<String>) -> Vec<Step> {
    users
        .into_iter()
        .map(|user| Repair::DeleteInactiveKeys { user }.into())
        .collect()
}

#[cfg(test)]
mod tests;
