//! Every kind of step keyward takes, as one enum (their ids: `step_id.rs`). Each
//! variant's check and apply live in [`super::account`], [`super::register`],
//! [`super::revoke`], [`super::local`], and for apps, rotation and JIT access in their
//! own modules.

use anyhow::Result;

use super::account::AccountStep;
use super::{local, register, revoke, Cx, Needs, State, StepId};
use crate::iam::resources::PolicyHome;
use keyward_daemon::config::ProfileEntry;

/// What each flow's step enum does: all the engine needs of a step. A flow owns its
/// steps' ids, rights, labels, checks and changes in one file under `plan/`.
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
    /// The account's pieces.
    Account(AccountStep),
    // Registering a computer (`keyward setup`, `keyward grant`).
    CreateUser {
        user: String,
        owner: String,
        machine: String,
    },
    AttachMachinePolicy {
        user: String,
    },
    EnableMfa {
        user: String,
    },
    StoreKey {
        user: String,
        profile: String,
    },
    AwaitKey {
        profile: String,
    },
    MarkEnrolled {
        user: String,
    },
    JoinGroup {
        user: String,
        group: String,
    },
    NameInPolicy {
        user: String,
        home: PolicyHome,
        enforce: bool,
    },
    WriteProfile {
        profile: String,
        entry: Box<ProfileEntry>,
        aws_config: bool,
    },
    StartDaemon,
    // Cutting a computer off (`keyward revoke`, `deregister`, `setup --abort`).
    AttachDenyAll {
        user: String,
    },
    MarkRoleSessions {
        user: String,
        owner: String,
    },
    DeleteKeys {
        user: String,
        needs: Needs,
    },
    RemoveMfa {
        user: String,
        needs: Needs,
    },
    TagRevoked {
        user: String,
    },
    LeaveGroups {
        user: String,
    },
    LeavePolicies {
        user: String,
        extra: Vec<PolicyHome>,
    },
    RecordRevokedSource {
        user: String,
    },
    /// A change only `keyward audit --fix` makes.
    Repair(super::repair::Repair),
    /// An application's pieces (`keyward app`).
    App(super::app::AppStep),
    /// A key rotation's steps (`keyward rotate`).
    Rotate(super::rotate::RotateStep),
    /// Just-in-time group access (`keyward access`).
    Access(super::access::AccessStep),
    /// The role guard gets a statement for this owner, so a sibling's revocation of
    /// one of its machines ends that machine's role sessions.
    GuardOwner {
        owner: String,
    },
    DeleteUser {
        user: String,
        needs: Needs,
    },
    ForgetLocal {
        profile: String,
    },
}

impl Step {
    /// Whether a failure of this step stops the plan. Marking role sessions does not:
    /// the keys and MFA device must go even when a role cannot be tagged.
    pub fn stops_on_failure(&self) -> bool {
        !matches!(self, Step::MarkRoleSessions { .. })
    }

    pub fn needs(&self) -> Needs {
        match self {
            Step::Repair(r) => r.needs(),
            Step::Account(s) => s.needs(),
            Step::CreateUser { .. }
            | Step::AttachMachinePolicy { .. }
            | Step::EnableMfa { .. }
            | Step::StoreKey { .. }
            | Step::MarkEnrolled { .. } => Needs::Registrar,
            Step::JoinGroup { .. }
            | Step::NameInPolicy { .. }
            | Step::LeaveGroups { .. }
            | Step::LeavePolicies { .. }
            | Step::RecordRevokedSource { .. }
            | Step::GuardOwner { .. } => Needs::Admin,
            Step::AttachDenyAll { .. }
            | Step::MarkRoleSessions { .. }
            | Step::TagRevoked { .. } => Needs::Machine,
            Step::App(a) => a.needs(),
            Step::Rotate(r) => r.needs(),
            Step::Access(a) => a.needs(),
            Step::DeleteKeys { needs, .. }
            | Step::RemoveMfa { needs, .. }
            | Step::DeleteUser { needs, .. } => *needs,
            Step::AwaitKey { .. }
            | Step::WriteProfile { .. }
            | Step::StartDaemon
            | Step::ForgetLocal { .. } => Needs::Local,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Step::CreateUser { user, .. } => format!("IAM user /keyward/{user}"),
            Step::AttachMachinePolicy { user } => format!("{user}: the machine policy"),
            Step::EnableMfa { user } => format!("{user}: virtual MFA device"),
            Step::StoreKey { user, .. } => {
                format!("{user}: access key, straight into the key store")
            }
            Step::AwaitKey { .. } => "STS accepts the new key".into(),
            Step::MarkEnrolled { user } => format!("{user}: mark the registration complete"),
            Step::JoinGroup { user, group } => format!("{user}: join group {group}"),
            Step::NameInPolicy { user, home, .. } => format!("{user}: named in the {home}"),
            Step::WriteProfile { profile, .. } => {
                format!("profile `{profile}` and its credential_process line")
            }
            Step::StartDaemon => "keywardd running".into(),
            Step::AttachDenyAll { user } => {
                format!("{user}: attach keyward-deny-all (every session, now)")
            }
            Step::MarkRoleSessions { user, .. } => {
                format!("{user}: deny its role sessions on keyward's guarded roles")
            }
            Step::DeleteKeys { user, .. } => {
                format!("{user}: deactivate and delete its access keys")
            }
            Step::RemoveMfa { user, .. } => format!("{user}: deactivate and delete its MFA device"),
            Step::TagRevoked { user } => format!("{user}: tag it revoked"),
            Step::LeaveGroups { user } => format!("{user}: leave every group"),
            Step::LeavePolicies { user, .. } => {
                format!("{user}: leave every managed bucket and key policy")
            }
            Step::RecordRevokedSource { user } => {
                format!("{user}: record it in the role guard for good")
            }
            Step::GuardOwner { owner } => {
                format!("role guard: revocations by {owner}'s computers end role sessions")
            }
            Step::Repair(r) => r.label(),
            Step::Account(s) => s.label(),
            Step::App(a) => a.label(),
            Step::Rotate(r) => r.label(),
            Step::Access(a) => a.label(),
            Step::DeleteUser { user, .. } => format!("{user}: delete the IAM user"),
            Step::ForgetLocal { profile } => {
                format!("this computer: keychain entry and profiles of `{profile}`")
            }
        }
    }

    pub async fn check(&self, cx: &Cx) -> anyhow::Result<State> {
        let aws = || cx.aws(self.needs());
        match self {
            Step::CreateUser { user, owner, .. } => register::check_user(aws()?, user, owner).await,
            Step::AttachMachinePolicy { user } => {
                register::check_machine_policy(aws()?, cx, user).await
            }
            Step::EnableMfa { user } => register::check_mfa(aws()?, user).await,
            Step::StoreKey { user, profile } => register::check_key(aws()?, user, profile).await,
            Step::AwaitKey { profile } => local::check_key_accepted(profile).await,
            Step::MarkEnrolled { user } => register::check_enrolled(aws()?, user).await,
            Step::JoinGroup { user, group } => register::check_group(aws()?, user, group).await,
            Step::NameInPolicy {
                user,
                home,
                enforce,
            } => register::check_named(aws()?, cx, user, home, *enforce).await,
            Step::WriteProfile { profile, entry, .. } => local::check_profile(profile, entry),
            Step::StartDaemon => Ok(local::check_daemon()),
            Step::AttachDenyAll { user } => revoke::check_deny_all(aws()?, cx, user).await,
            Step::MarkRoleSessions { user, owner } => {
                revoke::check_role_marks(aws()?, cx, user, owner).await
            }
            Step::DeleteKeys { user, .. } => revoke::check_keys(aws()?, user).await,
            Step::RemoveMfa { user, .. } => revoke::check_mfa(aws()?, cx, user).await,
            Step::TagRevoked { user } => revoke::check_tagged(aws()?, user).await,
            Step::LeaveGroups { user } => revoke::check_groups(aws()?, user).await,
            Step::LeavePolicies { user, extra } => {
                revoke::check_policies(aws()?, cx, user, extra).await
            }
            Step::RecordRevokedSource { user } => revoke::check_recorded(aws()?, cx, user).await,
            Step::GuardOwner { owner } => revoke::check_guarded_owner(aws()?, cx, owner).await,
            Step::Repair(r) => r.check(cx).await,
            Step::Account(s) => s.check(cx).await,
            Step::App(a) => a.check(cx).await,
            Step::Rotate(r) => r.check(cx).await,
            Step::Access(a) => a.check(cx).await,
            Step::DeleteUser { user, .. } => revoke::check_deleted(aws()?, user).await,
            Step::ForgetLocal { profile } => local::check_forgotten(profile),
        }
    }

    pub async fn apply(&self, cx: &Cx) -> anyhow::Result<String> {
        let aws = || cx.aws(self.needs());
        match self {
            Step::CreateUser {
                user,
                owner,
                machine,
            } => register::create_user(aws()?, cx, user, owner, machine).await,
            Step::AttachMachinePolicy { user } => {
                register::attach_machine_policy(aws()?, cx, user).await
            }
            Step::EnableMfa { user } => register::enable_mfa(aws()?, cx, user).await,
            Step::StoreKey { user, profile } => register::store_key(aws()?, user, profile).await,
            Step::AwaitKey { profile } => local::await_key(profile).await,
            Step::MarkEnrolled { user } => register::mark_enrolled(aws()?, cx, user).await,
            Step::JoinGroup { user, group } => register::join_group(aws()?, user, group).await,
            Step::NameInPolicy {
                user,
                home,
                enforce,
            } => register::name_in_policy(aws()?, cx, user, home, *enforce).await,
            Step::WriteProfile {
                profile,
                entry,
                aws_config,
            } => local::write_profile(profile, entry, *aws_config),
            Step::StartDaemon => local::start_daemon(),
            Step::AttachDenyAll { user } => revoke::deny_all(aws()?, cx, user).await,
            Step::MarkRoleSessions { user, owner } => {
                revoke::mark_roles(aws()?, cx, user, owner).await
            }
            Step::DeleteKeys { user, .. } => revoke::delete_keys(aws()?, user).await,
            Step::RemoveMfa { user, .. } => revoke::remove_mfa(aws()?, cx, user).await,
            Step::TagRevoked { user } => revoke::tag_revoked(aws()?, cx, user).await,
            Step::LeaveGroups { user } => revoke::leave_groups(aws()?, user).await,
            Step::LeavePolicies { user, extra } => {
                revoke::leave_policies(aws()?, cx, user, extra).await
            }
            Step::RecordRevokedSource { user } => revoke::record(aws()?, cx, user).await,
            Step::GuardOwner { owner } => revoke::guard_owner(aws()?, cx, owner).await,
            Step::Repair(r) => r.apply(cx).await,
            Step::Account(s) => s.apply(cx).await,
            Step::App(a) => a.apply(cx).await,
            Step::Rotate(r) => r.apply(cx).await,
            Step::Access(a) => a.apply(cx).await,
            Step::DeleteUser { user, .. } => revoke::delete_user(aws()?, cx, user).await,
            Step::ForgetLocal { profile } => local::forget(profile),
        }
    }
}
