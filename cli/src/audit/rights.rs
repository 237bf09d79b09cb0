//! Who is admin, or can make itself admin: every user and role of the account judged
//! by the same evaluator that authorizes the end-to-end suite (iam-rs, with AWS's
//! combination rules), with MFA present, as the worst case. Keyward's own principals
//! must never show up here. Also: keyward's documents that drifted from what it writes.

use keyward_policy::{decide, Check, Context, ContextValue, Identity, Kind, ResourcePolicy};

use super::{Finding, Severity};
use crate::iam::snapshot::{Principal, Snapshot};

const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const PROBE: &str = "keyward-audit-probe";

/// An action, its resource, and the request's condition keys.
type Probe<'a> = (String, String, &'a [(&'a str, &'a str)]);

fn identity(s: &Snapshot, p: &Principal, kind: Kind) -> Identity {
    let policies = match kind {
        Kind::User => s.user_documents(p),
        _ => s.role_documents(p),
    };
    let mut ctx = Context::new()
        .with_string("aws:PrincipalArn", &p.arn)
        .with_string("aws:PrincipalAccount", &s.account)
        .with_boolean("aws:MultiFactorAuthPresent", true)
        .with_number("aws:MultiFactorAuthAge", 0.0);
    if kind == Kind::User {
        ctx = ctx.with_string("aws:username", &p.name);
    }
    for (k, v) in &p.tags {
        ctx = ctx.with_string(format!("aws:PrincipalTag/{k}"), v);
    }
    Identity {
        kind,
        arn: p.arn.clone(),
        session_arn: None,
        account_root: format!("arn:aws:iam::{}:root", s.account),
        policies,
        boundary: p.boundary.as_ref().and_then(|b| s.managed(b)),
        session_policy: None,
        context: ctx,
    }
}

fn allowed(id: &Identity, action: &str, resource: &str, ctx: &[(&str, &str)]) -> bool {
    let check = Check {
        action: action.to_owned(),
        resource: resource.to_owned(),
        context: ctx
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ContextValue::String((*v).to_owned())))
            .collect(),
        resource_policy: ResourcePolicy::None,
    };
    decide(id, &check).allowed
}

/// Full administration: destructive calls in four unrelated services, on anything.
fn is_admin(id: &Identity, account: &str) -> bool {
    [
        (
            "iam:CreateUser",
            format!("arn:aws:iam::{account}:user/{PROBE}"),
        ),
        ("s3:DeleteBucket", format!("arn:aws:s3:::{PROBE}")),
        (
            "ec2:TerminateInstances",
            format!("arn:aws:ec2:us-east-1:{account}:instance/i-0{PROBE}"),
        ),
        (
            "kms:ScheduleKeyDeletion",
            format!("arn:aws:kms:us-east-1:{account}:key/{PROBE}"),
        ),
    ]
    .iter()
    .all(|(a, r)| allowed(id, a, r, &[]))
}

/// The first way `id` could grant itself more, if any: edit its own policies, join
/// any group, rewrite a policy it holds, or take another principal's credentials.
fn escalation(s: &Snapshot, p: &Principal, id: &Identity) -> Option<String> {
    let a = &s.account;
    let admin = [("iam:PolicyARN", ADMIN_POLICY)];
    let other_user = format!("arn:aws:iam::{a}:user/{PROBE}");
    let other_role = format!("arn:aws:iam::{a}:role/{PROBE}");
    let mut probes: Vec<Probe> = Vec::new();
    match id.kind {
        Kind::User => {
            probes.push(("iam:AttachUserPolicy".into(), p.arn.clone(), &admin));
            probes.push(("iam:PutUserPolicy".into(), p.arn.clone(), &[]));
            probes.push((
                "iam:AddUserToGroup".into(),
                format!("arn:aws:iam::{a}:group/{PROBE}"),
                &[],
            ));
            for g in p.groups.iter().filter_map(|g| s.group(g)) {
                probes.push(("iam:AttachGroupPolicy".into(), g.arn.clone(), &admin));
                probes.push(("iam:PutGroupPolicy".into(), g.arn.clone(), &[]));
            }
        }
        _ => {
            probes.push(("iam:AttachRolePolicy".into(), p.arn.clone(), &admin));
            probes.push(("iam:PutRolePolicy".into(), p.arn.clone(), &[]));
        }
    }
    for arn in held_policies(s, p) {
        probes.push(("iam:CreatePolicyVersion".into(), arn, &[]));
    }
    for action in [
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:UpdateLoginProfile",
    ] {
        probes.push((action.into(), other_user.clone(), &[]));
    }
    probes.push(("iam:AttachUserPolicy".into(), other_user.clone(), &admin));
    for action in ["iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy"] {
        probes.push((action.into(), other_role.clone(), &[]));
    }
    probes.push(("iam:AttachRolePolicy".into(), other_role.clone(), &admin));
    probes
        .iter()
        .find(|(action, res, ctx)| allowed(id, action, res, ctx))
        .map(|(action, res, _)| format!("{action} on {res}"))
}

/// The customer-managed policies attached to `p` or its groups.
fn held_policies(s: &Snapshot, p: &Principal) -> Vec<String> {
    let mut arns: Vec<String> = p.attached.clone();
    for g in p.groups.iter().filter_map(|g| s.group(g)) {
        arns.extend(g.attached.iter().cloned());
    }
    arns.retain(|a| s.policies.contains_key(a));
    arns.sort();
    arns.dedup();
    arns
}

/// Whether `p` may assume `role`: its identity allows it and the trust names it.
fn can_assume(s: &Snapshot, id: &Identity, role: &Principal) -> bool {
    let Some(trust) = role.trust.clone() else {
        return false;
    };
    let check = Check {
        action: "sts:AssumeRole".into(),
        resource: role.arn.clone(),
        context: vec![(
            "sts:SourceIdentity".into(),
            ContextValue::String(id.arn.rsplit('/').next().unwrap_or_default().to_owned()),
        )],
        resource_policy: ResourcePolicy::Trust(trust),
    };
    let _ = s;
    decide(id, &check).allowed
}

fn is_keyward(p: &Principal) -> bool {
    p.path == crate::iam::documents::PATH
}

/// Admins and escalation paths, direct and through one role assumption.
pub fn findings(s: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut strong_roles = Vec::new();
    let all: Vec<(&Principal, Kind)> = s
        .users
        .iter()
        .map(|u| (u, Kind::User))
        .chain(s.roles.iter().map(|r| (r, Kind::Role)))
        .collect();
    let mut judged = Vec::new();
    for (p, kind) in &all {
        let id = identity(s, p, *kind);
        let finding = if is_admin(&id, &s.account) {
            Some((
                "admin-principal",
                "has full administration rights".to_owned(),
            ))
        } else {
            escalation(s, p, &id).map(|how| {
                (
                    "privilege-escalation",
                    format!("can grant itself more: {how}"),
                )
            })
        };
        if let Some((check, what)) = finding {
            if *kind == Kind::Role {
                strong_roles.push((*p).clone());
            }
            out.push(admin_finding(p, check, &what));
        } else {
            judged.push((*p, id));
        }
    }
    // Transitive: a principal that is not admin itself but can assume one that is.
    for (p, id) in judged {
        if let Some(r) = strong_roles
            .iter()
            .find(|r| r.arn != p.arn && can_assume(s, &id, r))
        {
            let what = format!("can assume {}, which is admin or can escalate", r.name);
            out.push(admin_finding(p, "privilege-escalation-path", &what));
        }
    }
    out
}

fn admin_finding(p: &Principal, check: &'static str, what: &str) -> Finding {
    let severity = if is_keyward(p) {
        // A keyward principal here is a broken permission model, whatever its groups.
        Severity::High
    } else if check == "admin-principal" {
        Severity::Medium
    } else {
        Severity::High
    };
    Finding::new(
        severity,
        check,
        format!("{} {what}", p.name),
        p.arn.clone(),
        if is_keyward(p) {
            "keyward's documents were changed: `keyward init --admin-profile P` rewrites them; then check the principal's groups".to_owned()
        } else {
            "give it only what it needs; for people, one keyward computer each with group rights (`keyward setup`)".to_owned()
        },
    )
}

/// keyward's own documents that differ from what `keyward init` writes: `init`'s plan,
/// run dry with the auditor's reads. Nothing when keyward is not in the account.
pub async fn drift(
    aws: &crate::clients::Aws,
    cx: &crate::plan::Cx,
    snap: &Snapshot,
) -> anyhow::Result<Vec<Finding>> {
    use crate::account::{AccountState, Request};
    use crate::plan::{Plan, Status};
    let state = AccountState::from_snapshot(aws, &cx.arns, snap).await?;
    if state.machine_policy.is_none() {
        return Ok(Vec::new());
    }
    let req = Request {
        whitelists: crate::iam::documents::Whitelists::default(),
        admins: Vec::new(),
        guard_roles: Vec::new(),
        owner: None,
    };
    let plan = Plan::of("drift", crate::plan::lists::init(&state, &req, cx.clock));
    // Only reads: a dry run checks every step and changes nothing.
    let reader = crate::plan::Cx {
        arns: cx.arns.clone(),
        machine: None,
        admin: Some(aws.clone()),
        bootstrap: true,
        registrar: None,
        yes: false,
        quiet: true,
        actor: cx.actor.clone(),
        mfa_process: None,
        clock: cx.clock,
    };
    let report = crate::plan::run(&plan, &reader, true).await;
    Ok(report
        .steps
        .iter()
        .filter(|s| s.status == Status::WouldDo)
        .map(|s| {
            Finding::new(
                Severity::High,
                "keyward-drift",
                format!("{} differs from what keyward writes ({})", s.label, s.detail),
                format!("account {}", cx.arns.account),
                "`keyward init --admin-profile P` rewrites keyward's documents (machines, whitelists and admins are kept)",
            )
        })
        .collect())
}
