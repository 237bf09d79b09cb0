//! Steps that cut a computer off, in the order that keeps every policy readable: deny
//! everything at once (user sessions) and mark its role sessions, then its keys, MFA
//! and tags; an admin then takes it out of groups and resource policies (while its ARN
//! still resolves), records it in the role guard for good, and may delete the user.

use anyhow::{bail, Result};

use super::{Cx, FlowStep, Needs, State, StepId};
use crate::clients::Aws;
use crate::iam::documents::{self as docs};
use crate::iam::resources::{self, Edit, PolicyHome};
use crate::iam::{account, credentials, key_suffix, policy, roles, users};

/// A step that cuts a computer off (`keyward revoke`, `deregister`, `setup --abort`);
/// `needs` is given where the registrar or the computer itself may take it.
#[derive(Debug, Clone)]
pub enum RevokeStep {
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
    DeleteUser {
        user: String,
        needs: Needs,
    },
}

impl FlowStep for RevokeStep {
    fn id(&self) -> StepId {
        match self {
            RevokeStep::AttachDenyAll { .. } => StepId::AttachDenyAll,
            RevokeStep::MarkRoleSessions { .. } => StepId::MarkRoleSessions,
            RevokeStep::DeleteKeys { .. } => StepId::DeleteKeys,
            RevokeStep::RemoveMfa { .. } => StepId::RemoveMfa,
            RevokeStep::TagRevoked { .. } => StepId::TagRevoked,
            RevokeStep::LeaveGroups { .. } => StepId::LeaveGroups,
            RevokeStep::LeavePolicies { .. } => StepId::LeavePolicies,
            RevokeStep::RecordRevokedSource { .. } => StepId::RecordRevokedSource,
            RevokeStep::DeleteUser { .. } => StepId::DeleteUser,
        }
    }

    fn needs(&self) -> Needs {
        match self {
            RevokeStep::AttachDenyAll { .. }
            | RevokeStep::MarkRoleSessions { .. }
            | RevokeStep::TagRevoked { .. } => Needs::Machine,
            RevokeStep::LeaveGroups { .. }
            | RevokeStep::LeavePolicies { .. }
            | RevokeStep::RecordRevokedSource { .. } => Needs::Admin,
            RevokeStep::DeleteKeys { needs, .. }
            | RevokeStep::RemoveMfa { needs, .. }
            | RevokeStep::DeleteUser { needs, .. } => *needs,
        }
    }

    fn label(&self) -> String {
        match self {
            RevokeStep::AttachDenyAll { user } => {
                format!("{user}: attach keyward-deny-all (every session, now)")
            }
            RevokeStep::MarkRoleSessions { user, .. } => {
                format!("{user}: deny its role sessions on keyward's guarded roles")
            }
            RevokeStep::DeleteKeys { user, .. } => {
                format!("{user}: deactivate and delete its access keys")
            }
            RevokeStep::RemoveMfa { user, .. } => {
                format!("{user}: deactivate and delete its MFA device")
            }
            RevokeStep::TagRevoked { user } => format!("{user}: tag it revoked"),
            RevokeStep::LeaveGroups { user } => format!("{user}: leave every group"),
            RevokeStep::LeavePolicies { user, .. } => {
                format!("{user}: leave every managed bucket and key policy")
            }
            RevokeStep::RecordRevokedSource { user } => {
                format!("{user}: record it in the role guard for good")
            }
            RevokeStep::DeleteUser { user, .. } => format!("{user}: delete the IAM user"),
        }
    }

    async fn check(&self, cx: &Cx) -> Result<State> {
        let aws = cx.aws(self.needs())?;
        match self {
            RevokeStep::AttachDenyAll { user } => check_deny_all(aws, cx, user).await,
            RevokeStep::MarkRoleSessions { user, owner } => {
                check_role_marks(aws, cx, user, owner).await
            }
            RevokeStep::DeleteKeys { user, .. } => check_keys(aws, user).await,
            RevokeStep::RemoveMfa { user, .. } => check_mfa(aws, cx, user).await,
            RevokeStep::TagRevoked { user } => check_tagged(aws, user).await,
            RevokeStep::LeaveGroups { user } => check_groups(aws, user).await,
            RevokeStep::LeavePolicies { user, extra } => check_policies(aws, cx, user, extra).await,
            RevokeStep::RecordRevokedSource { user } => check_recorded(aws, cx, user).await,
            RevokeStep::DeleteUser { user, .. } => check_deleted(aws, user).await,
        }
    }

    async fn apply(&self, cx: &Cx) -> Result<String> {
        let aws = cx.aws(self.needs())?;
        match self {
            RevokeStep::AttachDenyAll { user } => deny_all(aws, cx, user).await,
            RevokeStep::MarkRoleSessions { user, owner } => mark_roles(aws, cx, user, owner).await,
            RevokeStep::DeleteKeys { user, .. } => delete_keys(aws, user).await,
            RevokeStep::RemoveMfa { user, .. } => remove_mfa(aws, cx, user).await,
            RevokeStep::TagRevoked { user } => tag_revoked(aws, cx, user).await,
            RevokeStep::LeaveGroups { user } => leave_groups(aws, user).await,
            RevokeStep::LeavePolicies { user, extra } => leave_policies(aws, cx, user, extra).await,
            RevokeStep::RecordRevokedSource { user } => record(aws, cx, user).await,
            RevokeStep::DeleteUser { user, .. } => delete_user(aws, cx, user).await,
        }
    }

    /// Marking role sessions does not stop the plan: the keys and MFA device must go
    /// even when a role cannot be tagged.
    fn stops_on_failure(&self) -> bool {
        !matches!(self, RevokeStep::MarkRoleSessions { .. })
    }
}

async fn check_deny_all(aws: &Aws, cx: &Cx, user: &str) -> Result<State> {
    let attached = users::attached_policies(aws, user).await?;
    Ok(
        if attached.contains(&cx.arns.policy(docs::DENY_ALL_POLICY)) {
            State::Done("every request of it and its sessions is denied".into())
        } else {
            State::ToDo("attach it".into())
        },
    )
}

async fn deny_all(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    users::attach_policy(aws, user, &cx.arns.policy(docs::DENY_ALL_POLICY)).await?;
    Ok("denied: every session of its own ends now".into())
}

/// The value the owner's mark should have: `user` and every other revoked machine of
/// the owner that the admin has not yet recorded in the guard for good. It is computed
/// from IAM and written whole, so a mark some machine filled in beforehand is replaced,
/// never appended to.
async fn mark_value(aws: &Aws, cx: &Cx, user: &str, owner: &str) -> Result<String> {
    let guard = roles::managed_policy(aws, &cx.arns.policy(docs::ROLE_GUARD_POLICY))
        .await?
        .unwrap_or_default();
    let (recorded, _) = docs::role_guard_contents(&guard);
    let mut names = vec![user.to_owned()];
    for u in users::machine_users(aws, Some(owner)).await? {
        if u.revoked_at().is_some() && u.name != user && !recorded.contains(&u.name) {
            names.push(u.name);
        }
    }
    let mut value = String::from("/");
    for n in names {
        // A tag value holds 256 characters; the oldest marks wait for the admin's record.
        if value.len() + n.len() + 1 > 256 {
            break;
        }
        value.push_str(&n);
        value.push('/');
    }
    Ok(value)
}

/// The guarded roles, the value the owner's mark should have, and whether the current
/// mark already names `user`.
async fn role_marks(
    aws: &Aws,
    cx: &Cx,
    user: &str,
    owner: &str,
) -> Result<Vec<(String, String, bool)>> {
    let machine_doc = roles::managed_policy(aws, &cx.arns.policy(docs::MACHINE_POLICY))
        .await?
        .unwrap_or_default();
    let extra = docs::machine_policy_guarded_roles(&machine_doc);
    let key = format!("{}{owner}", docs::TAG_ROLE_REVOKED_PREFIX);
    let entry = format!("/{user}/");
    let value = mark_value(aws, cx, user, owner).await?;
    let mut out = Vec::new();
    for role in roles::guarded_roles(aws, &extra).await? {
        let Some(r) = roles::get_role(aws, &role).await? else {
            continue;
        };
        let marked = r.tags.get(&key).is_some_and(|v| v.contains(&entry));
        out.push((role, value.clone(), marked));
    }
    Ok(out)
}

async fn check_role_marks(aws: &Aws, cx: &Cx, user: &str, owner: &str) -> Result<State> {
    let marks = role_marks(aws, cx, user, owner).await?;
    let todo: Vec<&str> = marks
        .iter()
        .filter(|m| !m.2)
        .map(|m| m.0.as_str())
        .collect();
    Ok(if todo.is_empty() {
        State::Done(format!("denied on {} guarded role(s)", marks.len()))
    } else {
        State::ToDo(format!("mark it on {}", todo.join(", ")))
    })
}

async fn mark_roles(aws: &Aws, cx: &Cx, user: &str, owner: &str) -> Result<String> {
    let key = format!("{}{owner}", docs::TAG_ROLE_REVOKED_PREFIX);
    let mut done = Vec::new();
    for (role, value, marked) in role_marks(aws, cx, user, owner).await? {
        if marked {
            continue;
        }
        roles::tag_role(aws, &role, &key, &value).await?;
        done.push(role);
    }
    Ok(format!(
        "its sessions are denied on {}",
        if done.is_empty() {
            "no new role".into()
        } else {
            done.join(", ")
        }
    ))
}

async fn check_keys(aws: &Aws, user: &str) -> Result<State> {
    let keys = credentials::access_keys(aws, user).await?;
    Ok(if keys.is_empty() {
        State::Done("no access keys".into())
    } else {
        let ids: Vec<String> = keys.iter().map(|k| key_suffix(&k.id)).collect();
        State::ToDo(format!("delete {}", ids.join(", ")))
    })
}

async fn delete_keys(aws: &Aws, user: &str) -> Result<String> {
    let keys = credentials::access_keys(aws, user).await?;
    for k in &keys {
        credentials::deactivate_access_key(aws, user, &k.id).await?;
    }
    for k in &keys {
        credentials::delete_access_key(aws, user, &k.id).await?;
    }
    let ids: Vec<String> = keys.iter().map(|k| key_suffix(&k.id)).collect();
    Ok(format!("deactivated and deleted {}", ids.join(", ")))
}

async fn mfa_serials(aws: &Aws, cx: &Cx, user: &str) -> Result<(Vec<String>, bool)> {
    let serials = credentials::mfa_devices(aws, user).await?;
    let stray = credentials::stray_virtual_mfa(aws, &cx.arns.account, user).await?;
    Ok((serials, stray))
}

async fn check_mfa(aws: &Aws, cx: &Cx, user: &str) -> Result<State> {
    let (serials, stray) = mfa_serials(aws, cx, user).await?;
    Ok(if serials.is_empty() && !stray {
        State::Done("no MFA device".into())
    } else {
        State::ToDo("deactivate and delete it".into())
    })
}

async fn remove_mfa(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    let (serials, _) = mfa_serials(aws, cx, user).await?;
    for s in &serials {
        credentials::remove_mfa(aws, user, s).await?;
    }
    let stray = credentials::delete_stray_virtual_mfa(aws, &cx.arns.account, user).await?;
    let mut gone = serials;
    if stray {
        gone.push(format!("{} (never enabled)", cx.arns.mfa(user)));
    }
    Ok(format!("deleted {}", gone.join(", ")))
}

async fn check_tagged(aws: &Aws, user: &str) -> Result<State> {
    Ok(match users::get_user(aws, user).await? {
        Some(u) if u.revoked_at().is_some() => {
            State::Done(format!("revoked at {}", u.revoked_at().unwrap_or_default()))
        }
        Some(_) => State::ToDo(format!(
            "{} and {}",
            docs::TAG_REVOKED_AT,
            docs::TAG_REVOKED_BY
        )),
        None => State::Done("the user is gone".into()),
    })
}

async fn tag_revoked(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    let now = cx.clock.rfc3339();
    users::tag_user(
        aws,
        user,
        vec![
            users::tag(docs::TAG_REVOKED_AT, &now),
            users::tag(docs::TAG_REVOKED_BY, &cx.actor),
        ],
    )
    .await?;
    Ok(format!("revoked at {now} by {}", cx.actor))
}

async fn check_groups(aws: &Aws, user: &str) -> Result<State> {
    let groups = users::groups_for_user(aws, user).await?;
    Ok(if groups.is_empty() {
        State::Done("in no group".into())
    } else {
        State::ToDo(format!("leave {}", groups.join(", ")))
    })
}

async fn leave_groups(aws: &Aws, user: &str) -> Result<String> {
    let groups = users::groups_for_user(aws, user).await?;
    for g in &groups {
        users::remove_from_group(aws, user, g).await?;
    }
    Ok(format!("left {}", groups.join(", ")))
}

async fn check_policies(aws: &Aws, cx: &Cx, user: &str, extra: &[PolicyHome]) -> Result<State> {
    let naming = account::homes_naming(aws, &cx.arns.user(user), extra).await?;
    Ok(if naming.is_empty() {
        State::Done("in no managed bucket or key policy".into())
    } else {
        let names: Vec<String> = naming.iter().map(ToString::to_string).collect();
        State::ToDo(format!("leave the {}", names.join(", ")))
    })
}

async fn leave_policies(aws: &Aws, cx: &Cx, user: &str, extra: &[PolicyHome]) -> Result<String> {
    let arn = cx.arns.user(user);
    let mut left = Vec::new();
    for home in account::homes_naming(aws, &arn, extra).await? {
        if resources::edit_policy(aws, &home, cx, |d| policy::remove_principal(d, &arn)).await?
            == Edit::Changed
        {
            left.push(home.to_string());
        }
    }
    Ok(format!("left the {}", left.join(", ")))
}

/// `doc` with the JIT grants the guard holds now.
pub(super) async fn with_grants(
    aws: &Aws,
    cx: &Cx,
    doc: serde_json::Value,
) -> Result<serde_json::Value> {
    let old = roles::managed_policy(aws, &cx.arns.policy(docs::ROLE_GUARD_POLICY)).await?;
    Ok(crate::iam::jit::keep_guard_grants(
        old.as_ref(),
        doc,
        cx.clock.utc(),
    ))
}

pub(super) async fn guard_contents(aws: &Aws, cx: &Cx) -> Result<(Vec<String>, Vec<String>)> {
    let doc = roles::managed_policy(aws, &cx.arns.policy(docs::ROLE_GUARD_POLICY))
        .await?
        .unwrap_or_default();
    Ok(docs::role_guard_contents(&doc))
}

async fn check_recorded(aws: &Aws, cx: &Cx, user: &str) -> Result<State> {
    let (revoked, _) = guard_contents(aws, cx).await?;
    Ok(if revoked.iter().any(|r| r == user) {
        State::Done("every guarded role denies its sessions for good".into())
    } else {
        State::ToDo("add it to keyward-role-guard's revoked machines".into())
    })
}

async fn record(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    let (mut revoked, owners) = guard_contents(aws, cx).await?;
    revoked.push(user.to_owned());
    let doc = with_grants(aws, cx, docs::role_guard(&revoked, &owners)).await?;
    roles::set_managed_policy(aws, &cx.arns.policy(docs::ROLE_GUARD_POLICY), &doc).await?;
    Ok("recorded in keyward-role-guard".into())
}

async fn check_deleted(aws: &Aws, user: &str) -> Result<State> {
    Ok(match users::get_user(aws, user).await? {
        None => State::Done("no such user".into()),
        Some(u) => State::ToDo(format!("delete {}", u.arn)),
    })
}

/// Deletes the user, but only once its ARN is in no group and no managed policy: after
/// deletion it would turn into an unreadable unique id there.
async fn delete_user(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    let arn = cx.arns.user(user);
    let naming = if cx.aws_for(super::Needs::Admin).is_some() {
        account::homes_naming(aws, &arn, &[]).await?
    } else {
        Vec::new()
    };
    if let Some(home) = naming.first() {
        bail!("{arn} is still in the {home}; not deleting the user");
    }
    let groups = users::groups_for_user(aws, user).await?;
    if !groups.is_empty() {
        bail!(
            "{user} is still in {}; not deleting the user",
            groups.join(", ")
        );
    }
    for k in credentials::access_keys(aws, user).await? {
        credentials::delete_access_key(aws, user, &k.id).await?;
    }
    for p in users::attached_policies(aws, user).await? {
        users::detach_policy(aws, user, &p).await?;
    }
    for p in users::inline_policies(aws, user).await? {
        users::delete_inline_policy(aws, user, &p).await?;
    }
    users::delete_user(aws, user).await?;
    Ok(format!("deleted {arn}"))
}
