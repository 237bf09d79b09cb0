//! The steps of `keyward access`: the JIT role of a group (the account's admin), and
//! grants in its trust and in the role guard (an admin computer). See
//! [`crate::iam::jit`].

use anyhow::{bail, Result};
use serde_json::Value;

use super::{Cx, FlowStep, Needs, State, StepId};
use crate::clients::Aws;
use crate::iam::documents as docs;
use crate::iam::jit::{self, Grant};
use crate::iam::{account, fail, roles, users};

#[derive(Debug, Clone)]
pub enum AccessStep {
    /// Role `jit-G` with G's policies, the role guard as boundary, nobody trusted.
    Role { group: String },
    /// Admin computers may edit the JIT role's trust.
    Whitelist { group: String },
    /// The grant in the role's trust; `None` takes the machine out.
    Trust {
        group: String,
        machine: String,
        grant: Option<Grant>,
    },
    /// The expiry deny in keyward-role-guard.
    Guard { grant: Grant },
}

impl FlowStep for AccessStep {
    fn id(&self) -> StepId {
        match self {
            AccessStep::Role { .. } => StepId::JitRole,
            AccessStep::Whitelist { .. } => StepId::JitWhitelist,
            AccessStep::Trust { .. } => StepId::JitTrust,
            AccessStep::Guard { .. } => StepId::JitGuard,
        }
    }

    fn needs(&self) -> Needs {
        match self {
            AccessStep::Role { .. } | AccessStep::Whitelist { .. } => Needs::Bootstrap,
            AccessStep::Trust { .. } | AccessStep::Guard { .. } => Needs::Admin,
        }
    }

    fn label(&self) -> String {
        match self {
            AccessStep::Role { group } => format!(
                "role {} with the rights of group {group}",
                jit::role_name(group)
            ),
            AccessStep::Whitelist { group } => {
                format!("admin computers may grant {group} for a while")
            }
            AccessStep::Trust {
                group,
                machine,
                grant: Some(g),
            } => {
                format!(
                    "{machine}: may assume {} until {}",
                    jit::role_name(group),
                    g.until.format("%Y-%m-%d %H:%M UTC")
                )
            }
            AccessStep::Trust {
                group,
                machine,
                grant: None,
            } => {
                format!("{machine}: may no longer assume {}", jit::role_name(group))
            }
            AccessStep::Guard { grant } => format!(
                "role guard: {}'s sessions of {} end at {}",
                grant.machine,
                jit::role_name(&grant.group),
                grant.until.format("%H:%M UTC")
            ),
        }
    }

    async fn check(&self, cx: &Cx) -> Result<State> {
        let aws = cx.aws(self.needs())?;
        let todo = |s: &str| Ok(State::ToDo(s.into()));
        let done = |s: &str| Ok(State::Done(s.into()));
        match self {
            AccessStep::Role { group } => role_state(aws, cx, group).await,
            AccessStep::Whitelist { group } => {
                if account::whitelists(aws).await?.groups.contains(group) {
                    done("whitelisted")
                } else {
                    todo("add the group to the admin role's whitelists")
                }
            }
            AccessStep::Trust { .. } => {
                let (now, want) = self.trust_docs(aws, cx).await?;
                if now == want {
                    done("in place")
                } else {
                    todo("rewrite the trust")
                }
            }
            AccessStep::Guard { grant } => {
                let now = guard(aws, cx).await?;
                if jit::guard_with(&cx.arns, &now, grant, cx.clock.utc()) == now {
                    done("in place")
                } else {
                    todo("add the expiry")
                }
            }
        }
    }

    async fn apply(&self, cx: &Cx) -> Result<String> {
        let aws = cx.aws(self.needs())?;
        match self {
            AccessStep::Role { group } => make_role(aws, cx, group).await,
            AccessStep::Whitelist { group } => {
                let mut w = account::whitelists(aws).await?;
                w.groups.push(group.clone());
                account::set_whitelists(aws, &cx.arns, &w).await?;
                Ok("whitelisted".into())
            }
            AccessStep::Trust { group, .. } => {
                let (_, want) = self.trust_docs(aws, cx).await?;
                roles::set_trust(aws, &jit::role_name(group), &want).await?;
                Ok("written".into())
            }
            AccessStep::Guard { grant } => {
                let now = guard(aws, cx).await?;
                let doc = jit::guard_with(&cx.arns, &now, grant, cx.clock.utc());
                roles::set_managed_policy(aws, &cx.arns.policy(docs::ROLE_GUARD_POLICY), &doc)
                    .await?;
                Ok("written".into())
            }
        }
    }
}

impl AccessStep {
    /// The trust as it is, and with this step's change (prunable grants dropped).
    async fn trust_docs(&self, aws: &Aws, cx: &Cx) -> Result<(Value, Value)> {
        let AccessStep::Trust {
            group,
            machine,
            grant,
        } = self
        else {
            unreachable!("only the trust step")
        };
        let name = jit::role_name(group);
        let Some(role) = roles::get_role(aws, &name).await? else {
            bail!("there is no role {name}; `keyward access enable {group} --admin-profile P` makes it");
        };
        let now = cx.clock.utc();
        let mut grants = Vec::new();
        for g in jit::trust_grants(group, &role.trust) {
            if g.machine == *machine || g.prunable(now) {
                continue;
            }
            // A deleted user's ARN makes the whole trust invalid; a revoked one needs none.
            match users::get_user(aws, &g.machine).await? {
                Some(u) if u.revoked_at().is_none() => grants.push(g),
                _ => {}
            }
        }
        grants.extend(grant.clone());
        Ok((role.trust, jit::trust(&cx.arns, &grants)))
    }
}

async fn guard(aws: &Aws, cx: &Cx) -> Result<Value> {
    match roles::managed_policy(aws, &cx.arns.policy(docs::ROLE_GUARD_POLICY)).await? {
        Some(d) => Ok(d),
        None => bail!("keyward-role-guard is missing; run `keyward init` with the account's admin credentials"),
    }
}

/// The group's inline policies (name, document) and attached policy ARNs.
async fn group_rights(aws: &Aws, group: &str) -> Result<(Vec<(String, Value)>, Vec<String>)> {
    let Some(policies) = users::group_policies(aws, group).await? else {
        bail!("there is no group {group}");
    };
    let mut inline = Vec::new();
    for n in policies.inline {
        let out = aws
            .iam
            .get_group_policy()
            .group_name(group)
            .policy_name(&n)
            .send()
            .await
            .map_err(|e| fail("iam:GetGroupPolicy", &e))?;
        inline.push((n, roles::decode_document(out.policy_document())?));
    }
    Ok((
        inline,
        policies.attached.into_iter().map(|(_, arn)| arn).collect(),
    ))
}

async fn role_state(aws: &Aws, cx: &Cx, group: &str) -> Result<State> {
    let name = jit::role_name(group);
    let Some(role) = roles::get_role(aws, &name).await? else {
        return Ok(State::ToDo(format!(
            "create it with the policies of {group}"
        )));
    };
    let guard = cx.arns.policy(docs::ROLE_GUARD_POLICY);
    if role.tags.get(jit::TAG_JIT) != Some(&group.to_owned())
        || role.boundary.as_deref() != Some(guard.as_str())
    {
        bail!("role {name} exists but keyward did not make it for group {group} (its tag or boundary differ); remove or rename it first");
    }
    if roles::inline_policy(aws, &name, jit::LIMITS).await? != Some(jit::limits(&cx.arns)) {
        return Ok(State::ToDo("write its limits".into()));
    }
    let (inline, attached) = group_rights(aws, group).await?;
    for (n, doc) in &inline {
        if roles::inline_policy(aws, &name, n).await?.as_ref() != Some(doc) {
            return Ok(State::ToDo(format!("copy the group's policy {n}")));
        }
    }
    let have = aws
        .iam
        .list_attached_role_policies()
        .role_name(&name)
        .send()
        .await
        .map_err(|e| fail("iam:ListAttachedRolePolicies", &e))?;
    let have: Vec<&str> = have
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    if attached.iter().any(|a| !have.contains(&a.as_str())) {
        return Ok(State::ToDo("attach the group's policies".into()));
    }
    Ok(State::Done("has the group's rights".into()))
}

async fn make_role(aws: &Aws, cx: &Cx, group: &str) -> Result<String> {
    let name = jit::role_name(group);
    let (inline, attached) = group_rights(aws, group).await?;
    if roles::get_role(aws, &name).await?.is_none() {
        aws.iam
            .create_role()
            .role_name(&name)
            .path(docs::PATH)
            .description(format!("keyward: group {group}'s rights, for a while"))
            .assume_role_policy_document(jit::trust(&cx.arns, &[]).to_string())
            .permissions_boundary(cx.arns.policy(docs::ROLE_GUARD_POLICY))
            .max_session_duration(3600)
            .tags(users::tag(jit::TAG_JIT, group))
            .send()
            .await
            .map_err(|e| fail("iam:CreateRole", &e))?;
    }
    for (n, doc) in &inline {
        roles::put_inline_policy(aws, &name, n, doc).await?;
    }
    roles::put_inline_policy(aws, &name, jit::LIMITS, &jit::limits(&cx.arns)).await?;
    for arn in &attached {
        aws.iam
            .attach_role_policy()
            .role_name(&name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| fail("iam:AttachRolePolicy", &e))?;
    }
    Ok(format!(
        "{} has {} policies of {group}",
        cx.arns.role(&name),
        inline.len() + attached.len()
    ))
}
