//! Each step's kind ([`StepId`]), the stable name `--json` reports.

use serde::Serialize;

use super::step::{KeywardRole, Managed, Step};

/// A step's kind, stable in `--json` (snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    MachinePolicy,
    DenyAllPolicy,
    RoleGuardPolicy,
    AdminRole,
    EnrollerRole,
    GuardRole,
    UpgradeMachine,
    UpgradeRevoked,
    RemoveOldPolicy,
    UpgradeResourcePolicy,
    DesignateAdmin,
    UndesignateAdmin,
    CreateUser,
    AttachMachinePolicy,
    EnableMfa,
    StoreKey,
    AwaitKey,
    MarkEnrolled,
    JoinGroup,
    NameInPolicy,
    WriteProfile,
    StartDaemon,
    AttachDenyAll,
    MarkRoleSessions,
    DeleteKeys,
    RemoveMfa,
    TagRevoked,
    LeaveGroups,
    LeavePolicies,
    RecordRevokedSource,
    GuardOwner,
    BlockPublicAccess,
    StripPrincipals,
    DenyUnencrypted,
    DeactivateOldKeys,
    DeleteInactiveKeys,
    PruneJit,
    DeleteUser,
    ForgetLocal,
    AppKey,
    AppBucket,
    AppGroup,
    AppRole,
    AppTrust,
    AppUnwhitelist,
    AppInstanceProfile,
    AppKeyPolicy,
    AppBucketPolicy,
    AppWhitelist,
    LeaveGroup,
    LeavePolicy,
    AppStripPolicy,
    AppDeleteRole,
    AppDeleteGroup,
    AppRetireKey,
    RotateTidy,
    RotateNewKey,
    RotateAccepted,
    RotateSwitch,
    RotateDeleteOld,
    RotateDropStaging,
    JitRole,
    JitWhitelist,
    JitTrust,
    JitGuard,
}

impl Step {
    pub fn id(&self) -> StepId {
        match self {
            Step::ManagedPolicy {
                policy: Managed::Machine,
                ..
            } => StepId::MachinePolicy,
            Step::ManagedPolicy {
                policy: Managed::DenyAll,
                ..
            } => StepId::DenyAllPolicy,
            Step::ManagedPolicy {
                policy: Managed::RoleGuard,
                ..
            } => StepId::RoleGuardPolicy,
            Step::Role {
                role: KeywardRole::Admin,
                ..
            } => StepId::AdminRole,
            Step::Role {
                role: KeywardRole::Enroller,
                ..
            } => StepId::EnrollerRole,
            Step::GuardRole { .. } => StepId::GuardRole,
            Step::UpgradeMachine { .. } => StepId::UpgradeMachine,
            Step::UpgradeRevoked { .. } => StepId::UpgradeRevoked,
            Step::RemoveOldPolicy => StepId::RemoveOldPolicy,
            Step::UpgradeResourcePolicy { .. } => StepId::UpgradeResourcePolicy,
            Step::DesignateAdmin { .. } => StepId::DesignateAdmin,
            Step::UndesignateAdmin { .. } => StepId::UndesignateAdmin,
            Step::CreateUser { .. } => StepId::CreateUser,
            Step::AttachMachinePolicy { .. } => StepId::AttachMachinePolicy,
            Step::EnableMfa { .. } => StepId::EnableMfa,
            Step::StoreKey { .. } => StepId::StoreKey,
            Step::AwaitKey { .. } => StepId::AwaitKey,
            Step::MarkEnrolled { .. } => StepId::MarkEnrolled,
            Step::JoinGroup { .. } => StepId::JoinGroup,
            Step::NameInPolicy { .. } => StepId::NameInPolicy,
            Step::WriteProfile { .. } => StepId::WriteProfile,
            Step::StartDaemon => StepId::StartDaemon,
            Step::AttachDenyAll { .. } => StepId::AttachDenyAll,
            Step::MarkRoleSessions { .. } => StepId::MarkRoleSessions,
            Step::DeleteKeys { .. } => StepId::DeleteKeys,
            Step::RemoveMfa { .. } => StepId::RemoveMfa,
            Step::TagRevoked { .. } => StepId::TagRevoked,
            Step::LeaveGroups { .. } => StepId::LeaveGroups,
            Step::LeavePolicies { .. } => StepId::LeavePolicies,
            Step::RecordRevokedSource { .. } => StepId::RecordRevokedSource,
            Step::GuardOwner { .. } => StepId::GuardOwner,
            Step::Repair(r) => r.id(),
            Step::App(a) => a.id(),
            Step::Rotate(r) => r.id(),
            Step::Access(a) => a.id(),
            Step::DeleteUser { .. } => StepId::DeleteUser,
            Step::ForgetLocal { .. } => StepId::ForgetLocal,
        }
    }
}
