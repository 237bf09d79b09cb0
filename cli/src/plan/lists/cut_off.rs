//! The one list of cut-off steps, in the order each way of cutting a computer off
//! needs.

use crate::iam::resources::PolicyHome;
use crate::plan::{AccountStep, LocalStep, Needs, RevokeStep, Step};

/// How a computer is cut off.
#[derive(Debug, Clone)]
pub enum CutOff {
    /// `keyward revoke`: another computer denies everything at once and marks its role
    /// sessions, then takes its keys, MFA and tags; an admin then takes it out of groups
    /// and resource policies (while its ARN still resolves) and records it for good.
    Revoke {
        owner: String,
        /// It is an admin computer: it leaves keyward-admin's trust.
        designated: bool,
        /// Bucket and key policies named on the command line.
        extra: Vec<PolicyHome>,
        /// Also delete the IAM user.
        purge: bool,
    },
    /// `keyward deregister`: the computer revokes itself. Admin steps first (while its
    /// admin role session still works); the deny-all last, since it ends the session
    /// doing the work; then everything local goes.
    Deregister { owner: String, profile: String },
    /// `keyward setup --abort`: the registrar undoes an unfinished registration; the
    /// bootstrap admin also takes it out of groups and policies first.
    Abort { bootstrap: bool, profile: String },
}

/// The steps that cut `user` off, `how` says which and in what order.
pub fn cut_off(user: &str, how: CutOff) -> Vec<Step> {
    let user = || user.to_owned();
    let deny_all = || RevokeStep::AttachDenyAll { user: user() }.into();
    let mark_roles = |owner: &str| {
        let owner = owner.to_owned();
        RevokeStep::MarkRoleSessions {
            user: user(),
            owner,
        }
        .into()
    };
    let keys = |needs| {
        RevokeStep::DeleteKeys {
            user: user(),
            needs,
        }
        .into()
    };
    let mfa = |needs| {
        RevokeStep::RemoveMfa {
            user: user(),
            needs,
        }
        .into()
    };
    let tag = || RevokeStep::TagRevoked { user: user() }.into();
    let groups = || RevokeStep::LeaveGroups { user: user() }.into();
    let policies = |extra| {
        RevokeStep::LeavePolicies {
            user: user(),
            extra,
        }
        .into()
    };
    let record = || RevokeStep::RecordRevokedSource { user: user() }.into();
    let delete = |needs| {
        RevokeStep::DeleteUser {
            user: user(),
            needs,
        }
        .into()
    };
    let forget = |profile| LocalStep::ForgetLocal { profile }.into();
    match how {
        CutOff::Revoke {
            owner,
            designated,
            extra,
            purge,
        } => {
            let mut out: Vec<Step> = vec![
                deny_all(),
                mark_roles(&owner),
                keys(Needs::Machine),
                mfa(Needs::Machine),
                tag(),
                groups(),
                policies(extra),
                record(),
            ];
            if designated {
                out.push(AccountStep::UndesignateAdmin { user: user() }.into());
            }
            if purge {
                out.push(delete(Needs::Admin));
            }
            out
        }
        CutOff::Deregister { owner, profile } => vec![
            groups(),
            policies(Vec::new()),
            tag(),
            mfa(Needs::Machine),
            mark_roles(&owner),
            keys(Needs::Machine),
            deny_all(),
            forget(profile),
        ],
        CutOff::Abort { bootstrap, profile } => {
            let mut out: Vec<Step> = Vec::new();
            if bootstrap {
                out.extend([groups(), policies(Vec::new())]);
            }
            out.extend([
                keys(Needs::Registrar),
                mfa(Needs::Registrar),
                delete(Needs::Registrar),
                forget(profile),
            ]);
            out
        }
    }
}
