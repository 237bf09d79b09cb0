//! Steps on the account's pieces: keyward's policies and roles, the roles it guards,
//! the designated admin computers, and the upgrade of an account made by an earlier
//! version. Only the account's bootstrap admin runs these (`keyward init`).

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use super::{Cx, FlowStep, Needs, State, StepId};
use crate::clients::Aws;
use crate::iam::documents::{self as docs, Arns};
use crate::iam::resources::{self, Edit, PolicyHome, ReadError};
use crate::iam::{policy, roles, users};

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

/// A step on the account's pieces (`keyward init`, a bootstrap `setup`, and taking a
/// revoked computer out of the admin computers).
#[derive(Debug, Clone)]
pub enum AccountStep {
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
}

impl FlowStep for AccountStep {
    fn id(&self) -> StepId {
        match self {
            AccountStep::ManagedPolicy { policy, .. } => match policy {
                Managed::Machine => StepId::MachinePolicy,
                Managed::DenyAll => StepId::DenyAllPolicy,
                Managed::RoleGuard => StepId::RoleGuardPolicy,
            },
            AccountStep::Role { role, .. } => match role {
                KeywardRole::Admin => StepId::AdminRole,
                KeywardRole::Enroller => StepId::EnrollerRole,
            },
            AccountStep::GuardRole { .. } => StepId::GuardRole,
            AccountStep::UpgradeMachine { .. } => StepId::UpgradeMachine,
            AccountStep::UpgradeRevoked { .. } => StepId::UpgradeRevoked,
            AccountStep::RemoveOldPolicy => StepId::RemoveOldPolicy,
            AccountStep::UpgradeResourcePolicy { .. } => StepId::UpgradeResourcePolicy,
            AccountStep::DesignateAdmin { .. } => StepId::DesignateAdmin,
            AccountStep::UndesignateAdmin { .. } => StepId::UndesignateAdmin,
        }
    }

    fn needs(&self) -> Needs {
        Needs::Bootstrap
    }

    fn label(&self) -> String {
        match self {
            AccountStep::ManagedPolicy { policy, .. } => {
                format!("policy {}", managed_name(*policy))
            }
            AccountStep::Role { role, .. } => format!("role {}", role_name(*role)),
            AccountStep::GuardRole { role } => {
                format!("guard role {role} (its sessions can be revoked)")
            }
            AccountStep::UpgradeMachine { user } => {
                format!("{user}: the machine policy instead of the old self-service one")
            }
            AccountStep::UpgradeRevoked { user } => {
                format!("{user}: the fixed deny-all instead of the old dated deny")
            }
            AccountStep::RemoveOldPolicy => "delete the old keyward-self-service policy".into(),
            AccountStep::UpgradeResourcePolicy { home } => {
                format!("keyward's statements in the {home}: MFA required")
            }
            AccountStep::DesignateAdmin { user } => {
                format!("designate {user} as an admin computer")
            }
            AccountStep::UndesignateAdmin { user } => {
                format!("remove {user} from the admin computers")
            }
        }
    }

    async fn check(&self, cx: &Cx) -> Result<State> {
        let aws = cx.aws(self.needs())?;
        match self {
            AccountStep::ManagedPolicy { policy, doc } => {
                check_managed(aws, cx, *policy, doc).await
            }
            AccountStep::Role {
                role,
                trust,
                policy,
            } => check_role(aws, cx, *role, trust, policy).await,
            AccountStep::GuardRole { role } => check_guard(aws, cx, role).await,
            AccountStep::UpgradeMachine { user } => check_upgrade_machine(aws, cx, user).await,
            AccountStep::UpgradeRevoked { user } => check_upgrade_revoked(aws, cx, user).await,
            AccountStep::RemoveOldPolicy => check_old_policy(aws, cx).await,
            AccountStep::UpgradeResourcePolicy { home } => check_resource(aws, cx, home).await,
            AccountStep::DesignateAdmin { user } => check_designated(aws, user, true).await,
            AccountStep::UndesignateAdmin { user } => check_designated(aws, user, false).await,
        }
    }

    async fn apply(&self, cx: &Cx) -> Result<String> {
        let aws = cx.aws(self.needs())?;
        match self {
            AccountStep::ManagedPolicy { policy, doc } => {
                apply_managed(aws, cx, *policy, doc).await
            }
            AccountStep::Role {
                role,
                trust,
                policy,
            } => apply_role(aws, cx, *role, trust, policy).await,
            AccountStep::GuardRole { role } => apply_guard(aws, cx, role).await,
            AccountStep::UpgradeMachine { user } => apply_upgrade_machine(aws, cx, user).await,
            AccountStep::UpgradeRevoked { user } => apply_upgrade_revoked(aws, cx, user).await,
            AccountStep::RemoveOldPolicy => apply_old_policy(aws, cx).await,
            AccountStep::UpgradeResourcePolicy { home } => apply_resource(aws, cx, home).await,
            AccountStep::DesignateAdmin { user } => apply_designated(aws, cx, user, true).await,
            AccountStep::UndesignateAdmin { user } => apply_designated(aws, cx, user, false).await,
        }
    }
}

fn managed_name(p: Managed) -> &'static str {
    match p {
        Managed::Machine => docs::MACHINE_POLICY,
        Managed::DenyAll => docs::DENY_ALL_POLICY,
        Managed::RoleGuard => docs::ROLE_GUARD_POLICY,
    }
}

fn managed_description(p: Managed) -> &'static str {
    match p {
        Managed::Machine => "keyward: what every machine user may do (nothing without MFA; its own key; cutting off its owner's machines)",
        Managed::DenyAll => "keyward: attached to a revoked machine; denies everything",
        Managed::RoleGuard => "keyward: permissions boundary of guarded roles; denies sessions of revoked machines, grants nothing",
    }
}

fn role_name(r: KeywardRole) -> &'static str {
    match r {
        KeywardRole::Admin => docs::ADMIN_ROLE,
        KeywardRole::Enroller => docs::ENROLLER_ROLE,
    }
}

fn role_description(r: KeywardRole) -> &'static str {
    match r {
        KeywardRole::Admin => "keyward: whitelist edits, by designated admin computers with MFA",
        KeywardRole::Enroller => {
            "keyward: an enrollment code's session; registers one named computer"
        }
    }
}

async fn check_managed(aws: &Aws, cx: &Cx, p: Managed, doc: &Value) -> Result<State> {
    Ok(
        match roles::managed_policy(aws, &cx.arns.policy(managed_name(p))).await? {
            None => State::ToDo("create it".into()),
            Some(current) if current == *doc => State::Done("up to date".into()),
            Some(_) => State::ToDo("make the current text its default version".into()),
        },
    )
}

async fn apply_managed(aws: &Aws, cx: &Cx, p: Managed, doc: &Value) -> Result<String> {
    let arn = cx.arns.policy(managed_name(p));
    if roles::managed_policy(aws, &arn).await?.is_none() {
        roles::create_managed_policy(aws, managed_name(p), managed_description(p), doc).await?;
        Ok(format!("created {arn}"))
    } else {
        roles::set_managed_policy(aws, &arn, doc).await?;
        Ok(format!("updated {arn}"))
    }
}

/// What differs between the role as it is and as keyward writes it.
async fn role_differences(
    aws: &Aws,
    cx: &Cx,
    r: KeywardRole,
    trust: &Value,
    policy: &Value,
) -> Result<Option<Vec<&'static str>>> {
    let name = role_name(r);
    let Some(role) = roles::get_role(aws, name).await? else {
        return Ok(None);
    };
    let mut diff = Vec::new();
    if role.trust != *trust {
        diff.push("trust policy");
    }
    if roles::inline_policy(aws, name, name).await?.as_ref() != Some(policy) {
        diff.push("permissions");
    }
    if role.boundary.as_deref() != Some(cx.arns.policy(docs::ROLE_GUARD_POLICY).as_str()) {
        diff.push("permissions boundary");
    }
    Ok(Some(diff))
}

async fn check_role(
    aws: &Aws,
    cx: &Cx,
    r: KeywardRole,
    trust: &Value,
    policy: &Value,
) -> Result<State> {
    Ok(match role_differences(aws, cx, r, trust, policy).await? {
        None => State::ToDo("create it".into()),
        Some(d) if d.is_empty() => State::Done("up to date".into()),
        Some(d) => State::ToDo(format!("update its {}", d.join(", "))),
    })
}

async fn apply_role(
    aws: &Aws,
    cx: &Cx,
    r: KeywardRole,
    trust: &Value,
    policy: &Value,
) -> Result<String> {
    let name = role_name(r);
    let guard = cx.arns.policy(docs::ROLE_GUARD_POLICY);
    let Some(diff) = role_differences(aws, cx, r, trust, policy).await? else {
        roles::create_role(aws, name, role_description(r), trust, &guard).await?;
        roles::put_inline_policy(aws, name, name, policy).await?;
        return Ok(format!("created {}", cx.arns.role(name)));
    };
    if diff.contains(&"trust policy") {
        roles::set_trust(aws, name, trust).await?;
    }
    if diff.contains(&"permissions") {
        roles::put_inline_policy(aws, name, name, policy).await?;
    }
    if diff.contains(&"permissions boundary") {
        roles::set_boundary(aws, name, &guard).await?;
    }
    Ok(format!("updated its {}", diff.join(", ")))
}

async fn check_guard(aws: &Aws, cx: &Cx, role: &str) -> Result<State> {
    let Some(r) = roles::get_role(aws, role).await? else {
        bail!("there is no role {role}; check the name given to --guard-role");
    };
    let guard = cx.arns.policy(docs::ROLE_GUARD_POLICY);
    match r.boundary {
        Some(b) if b == guard => Ok(State::Done("guarded".into())),
        Some(other) => bail!(
            "role {role} already has the permissions boundary {other}; keyward will not replace it. Add this statement to that boundary by hand so that revocation reaches {role}'s sessions:\n{}",
            policy::to_text(&docs::role_guard(&[], &[]))
        ),
        None => Ok(State::ToDo("set keyward-role-guard as its permissions boundary (it denies revoked machines and grants nothing)".into())),
    }
}

async fn apply_guard(aws: &Aws, cx: &Cx, role: &str) -> Result<String> {
    roles::set_boundary(aws, role, &cx.arns.policy(docs::ROLE_GUARD_POLICY)).await?;
    Ok("keyward-role-guard is its permissions boundary".into())
}

async fn check_upgrade_machine(aws: &Aws, cx: &Cx, user: &str) -> Result<State> {
    let attached = users::attached_policies(aws, user).await?;
    let new = attached.contains(&cx.arns.policy(docs::MACHINE_POLICY));
    let old = attached.contains(&cx.arns.policy(docs::OLD_SELF_SERVICE_POLICY));
    let enrolled = users::get_user(aws, user)
        .await?
        .is_none_or(|u| u.is_enrolled());
    Ok(if new && !old && enrolled {
        State::Done("has the machine policy".into())
    } else {
        State::ToDo("attach keyward-machine, detach keyward-self-service, mark it enrolled".into())
    })
}

async fn apply_upgrade_machine(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    users::attach_policy(aws, user, &cx.arns.policy(docs::MACHINE_POLICY)).await?;
    users::detach_policy(aws, user, &cx.arns.policy(docs::OLD_SELF_SERVICE_POLICY)).await?;
    if users::get_user(aws, user)
        .await?
        .is_some_and(|u| !u.is_enrolled())
    {
        let now = cx.clock.rfc3339();
        users::tag_user(aws, user, vec![users::tag(docs::TAG_ENROLLED, &now)]).await?;
    }
    Ok("now under the machine policy".into())
}

async fn check_upgrade_revoked(aws: &Aws, cx: &Cx, user: &str) -> Result<State> {
    let denied = users::attached_policies(aws, user)
        .await?
        .contains(&cx.arns.policy(docs::DENY_ALL_POLICY));
    let old = users::inline_policies(aws, user)
        .await?
        .iter()
        .any(|p| p == docs::OLD_REVOKE_INLINE);
    Ok(if denied && !old {
        State::Done("denied by keyward-deny-all".into())
    } else {
        State::ToDo("attach keyward-deny-all, then drop the old dated deny".into())
    })
}

async fn apply_upgrade_revoked(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    // The fixed deny goes on before the old one comes off: never a moment without.
    users::attach_policy(aws, user, &cx.arns.policy(docs::DENY_ALL_POLICY)).await?;
    users::delete_inline_policy(aws, user, docs::OLD_REVOKE_INLINE).await?;
    Ok("denied by keyward-deny-all".into())
}

async fn check_old_policy(aws: &Aws, cx: &Cx) -> Result<State> {
    let arn = cx.arns.policy(docs::OLD_SELF_SERVICE_POLICY);
    Ok(match roles::managed_policy(aws, &arn).await? {
        Some(_) => State::ToDo("delete it; every machine has the machine policy now".into()),
        None => State::Done("not there".into()),
    })
}

async fn apply_old_policy(aws: &Aws, cx: &Cx) -> Result<String> {
    let arn = cx.arns.policy(docs::OLD_SELF_SERVICE_POLICY);
    roles::delete_managed_policy(aws, &arn).await?;
    Ok(format!("deleted {arn}"))
}

/// Who keeps access to a bucket keyward enforces: the root and the admin role.
pub fn keepers(arns: &Arns) -> (String, String) {
    (arns.root(), arns.role(docs::ADMIN_ROLE))
}

/// What the resource policy protects; a trust policy has no machines statement.
fn target(home: &PolicyHome) -> Result<policy::Target> {
    home.target()
        .with_context(|| format!("internal error: the {home} is not a resource policy"))
}

async fn check_resource(aws: &Aws, cx: &Cx, home: &PolicyHome) -> Result<State> {
    let text = match resources::read_policy(aws, home).await {
        Ok(t) => t,
        Err(ReadError::NotFound) => return Ok(State::Done("it no longer exists".into())),
        Err(ReadError::Other(e)) => return Err(home.unreadable(e)),
    };
    let doc = policy::parse(text.as_deref())?;
    let (root, admin) = keepers(&cx.arns);
    let keep = policy::Keepers {
        account_root: &root,
        admin_role: &admin,
    };
    Ok(if policy::is_current(&doc, &target(home)?, &keep) {
        State::Done("current".into())
    } else {
        State::ToDo(
            "rewrite keyward's statements: MFA required; aws:PrincipalArn, not NotPrincipal".into(),
        )
    })
}

async fn apply_resource(aws: &Aws, cx: &Cx, home: &PolicyHome) -> Result<String> {
    let (root, admin) = keepers(&cx.arns);
    let keep = policy::Keepers {
        account_root: &root,
        admin_role: &admin,
    };
    let t = target(home)?;
    let edit = |doc: &Value| {
        let enforce = policy::is_enforced(doc).then_some(&keep);
        policy::rebuild(doc, &t, &policy::machines(doc), enforce)
    };
    Ok(match resources::edit_policy(aws, home, cx, edit).await? {
        Edit::Changed => "rewritten".into(),
        Edit::Unchanged => "already current".into(),
        Edit::Gone => "it no longer exists".into(),
    })
}

async fn admin_trust(aws: &Aws) -> Result<Value> {
    Ok(roles::get_role(aws, docs::ADMIN_ROLE)
        .await?
        .map_or(Value::Null, |r| r.trust))
}

async fn check_designated(aws: &Aws, user: &str, want: bool) -> Result<State> {
    let is = docs::admin_trust_machines(&admin_trust(aws).await?).contains(&user.to_owned());
    Ok(match (is, want) {
        (true, true) => State::Done("may assume keyward-admin with MFA".into()),
        (false, false) => State::Done("not an admin computer".into()),
        (false, true) => State::ToDo("let it assume keyward-admin, with MFA, as itself".into()),
        (true, false) => State::ToDo("take it out of keyward-admin's trust policy".into()),
    })
}

async fn apply_designated(aws: &Aws, cx: &Cx, user: &str, want: bool) -> Result<String> {
    let mut admins = docs::admin_trust_machines(&admin_trust(aws).await?);
    admins.retain(|a| a != user);
    if want {
        admins.push(user.to_owned());
    }
    roles::set_trust(aws, docs::ADMIN_ROLE, &docs::admin_trust(&cx.arns, &admins)).await?;
    Ok(if want {
        format!("{user} may assume keyward-admin, with MFA, as itself")
    } else {
        format!("{user} is no longer an admin computer")
    })
}
