//! Each step's kind ([`StepId`]), the stable name `--json` reports. A flow's step
//! enum maps its variants here (`FlowStep::id`); the strings are a contract.

use serde::Serialize;

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

impl std::fmt::Display for StepId {
    /// The `--json` name (`attach_deny_all`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(name.as_str().unwrap_or_default())
    }
}
