//! Every kind of step keyward takes, as one enum (their ids: `step_id.rs`). Each
//! variant's check and apply live in [`super::account`], [`super::register`],
//! [`super::revoke`], [`super::local`], and for apps, rotation and JIT access in their
//! own modules.

use serde_json::Value;

use super::{account, local, register, revoke, Cx, Needs, State};
use crate::iam::resources::PolicyHome;
use keyward_daemon::config::ProfileEntry;

/// keyward's customer-managed policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Managed {
    Machine,
    DenyAll,
    RoleGuard,
}

/// keyward's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywardRole {
    Admin,
    Enroller,
}

#[derive(Debug, Clone)]
pub enum Step {
    // The account's pieces (`keyward init`, and a bootstrap `setup`).
    ManagedPolicy {
        policy: Managed,
        doc: Value,
    },
    Role {
        role: KeywardRole,
        trust: Value,
        policy: Value,
    },
    GuardRole {
        role: String,
    },
    UpgradeMachine {
        user: String,
    },
    UpgradeRevoked {
        user: String,
    },
    RemoveOldPolicy,
    UpgradeResourcePolicy {
        home: PolicyHome,
    },
    DesignateAdmin {
        user: String,
    },
    UndesignateAdmin {
        user: String,
    },
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
    Repair(crate::audit::fix::Repair),
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
            Step::ManagedPolicy { .. }
            | Step::Role { .. }
            | Step::GuardRole { .. }
            | Step::UpgradeMachine { .. }
            | Step::UpgradeRevoked { .. }
            | Step::RemoveOldPolicy
            | Step::UpgradeResourcePolicy { .. }
            | Step::DesignateAdmin { .. }
            | Step::UndesignateAdmin { .. }
            // The admin role edits only the whitelists: the rest of what audit fixes
            // (Block Public Access, any policy, others' keys) is the account admin's.
            | Step::Repair(_) => Needs::Bootstrap,
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
            Step::ManagedPolicy { policy, .. } => {
                format!("policy {}", account::managed_name(*policy))
            }
            Step::Role { role, .. } => format!("role {}", account::role_name(*role)),
            Step::GuardRole { role } => format!("guard role {role} (its sessions can be revoked)"),
            Step::UpgradeMachine { user } => {
                format!("{user}: the machine policy instead of the old self-service one")
            }
            Step::UpgradeRevoked { user } => {
                format!("{user}: the fixed deny-all instead of the old dated deny")
            }
            Step::RemoveOldPolicy => "delete the old keyward-self-service policy".into(),
            Step::UpgradeResourcePolicy { home } => {
                format!("keyward's statements in the {home}: MFA required")
            }
            Step::DesignateAdmin { user } => format!("designate {user} as an admin computer"),
            Step::UndesignateAdmin { user } => format!("remove {user} from the admin computers"),
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
            Step::ManagedPolicy { policy, doc } => {
                account::check_managed(aws()?, cx, *policy, doc).await
            }
            Step::Role {
                role,
                trust,
                policy,
            } => account::check_role(aws()?, cx, *role, trust, policy).await,
            Step::GuardRole { role } => account::check_guard(aws()?, cx, role).await,
            Step::UpgradeMachine { user } => account::check_upgrade_machine(aws()?, cx, user).await,
            Step::UpgradeRevoked { user } => account::check_upgrade_revoked(aws()?, cx, user).await,
            Step::RemoveOldPolicy => account::check_old_policy(aws()?, cx).await,
            Step::UpgradeResourcePolicy { home } => account::check_resource(aws()?, cx, home).await,
            Step::DesignateAdmin { user } => {
                account::check_designated(aws()?, cx, user, true).await
            }
            Step::UndesignateAdmin { user } => {
                account::check_designated(aws()?, cx, user, false).await
            }
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
            Step::Repair(r) => r.check(aws()?, cx.clock).await,
            Step::App(a) => a.check(aws()?, cx).await,
            Step::Rotate(r) => r.check(cx).await,
            Step::Access(a) => a.check(aws()?, cx).await,
            Step::DeleteUser { user, .. } => revoke::check_deleted(aws()?, user).await,
            Step::ForgetLocal { profile } => local::check_forgotten(profile),
        }
    }

    pub async fn apply(&self, cx: &Cx) -> anyhow::Result<String> {
        let aws = || cx.aws(self.needs());
        match self {
            Step::ManagedPolicy { policy, doc } => {
                account::apply_managed(aws()?, cx, *policy, doc).await
            }
            Step::Role {
                role,
                trust,
                policy,
            } => account::apply_role(aws()?, cx, *role, trust, policy).await,
            Step::GuardRole { role } => account::apply_guard(aws()?, cx, role).await,
            Step::UpgradeMachine { user } => account::apply_upgrade_machine(aws()?, cx, user).await,
            Step::UpgradeRevoked { user } => account::apply_upgrade_revoked(aws()?, cx, user).await,
            Step::RemoveOldPolicy => account::apply_old_policy(aws()?, cx).await,
            Step::UpgradeResourcePolicy { home } => account::apply_resource(aws()?, cx, home).await,
            Step::DesignateAdmin { user } => {
                account::apply_designated(aws()?, cx, user, true).await
            }
            Step::UndesignateAdmin { user } => {
                account::apply_designated(aws()?, cx, user, false).await
            }
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
            Step::Repair(r) => r.apply(aws()?, cx.clock).await,
            Step::App(a) => a.apply(aws()?, cx).await,
            Step::Rotate(r) => r.apply(cx).await,
            Step::Access(a) => a.apply(aws()?, cx).await,
            Step::DeleteUser { user, .. } => revoke::delete_user(aws()?, cx, user).await,
            Step::ForgetLocal { profile } => local::forget(profile),
        }
    }
}
