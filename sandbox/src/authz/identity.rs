//! The caller's side of the request context: its policies and the principal
//! condition keys AWS sets (`aws:username`, `aws:PrincipalTag/…`, MFA, source identity).

use std::time::{SystemTime, UNIX_EPOCH};

use iam_rs::{Context, ContextValue};

use crate::authz::account::{Account, ACCOUNT};
use crate::authz::evaluate::{Identity, Kind};
use crate::emulator::state::{Caller, SessionKind};

pub fn root_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:root")
}

/// The identity of `caller`, or why AWS would not know it any more.
pub fn identity(caller: &Caller, account: &Account, now: SystemTime) -> Result<Identity, String> {
    let mut ctx = time_keys(Context::new(), now)
        .with_string("aws:PrincipalAccount", ACCOUNT)
        .with_string("aws:RequestedRegion", "us-east-1");
    let base = |kind, arn: String, ctx: Context| Identity {
        kind,
        arn,
        session_arn: None,
        account_root: root_arn(),
        policies: Vec::new(),
        boundary: None,
        session_policy: None,
        context: ctx,
    };
    match caller {
        Caller::Root => {
            ctx = ctx
                .with_string("aws:PrincipalArn", root_arn())
                .with_string("aws:PrincipalType", "Account");
            Ok(base(Kind::Root, root_arn(), ctx))
        }
        Caller::User { name } => user_identity(account, name, ctx, None),
        Caller::Session(s) => match &s.kind {
            SessionKind::User { name, .. } => {
                let mut ctx = ctx.with_boolean("aws:MultiFactorAuthPresent", s.mfa_at.is_some());
                if let Some(at) = s.mfa_at {
                    let age = now.duration_since(at).unwrap_or_default().as_secs();
                    ctx = ctx.with_number("aws:MultiFactorAuthAge", age as f64);
                }
                ctx.insert("aws:TokenIssueTime".into(), datetime(s.issued));
                user_identity(account, name, ctx, s.policy.clone())
            }
            SessionKind::Role { name, session_name } => {
                let role = account
                    .roles
                    .get(name)
                    .ok_or_else(|| format!("role {name} no longer exists"))?;
                // Role tags, overridden by session tags with the same key.
                let mut tags = role.tags.clone();
                tags.extend(s.tags.clone());
                for (k, v) in &tags {
                    ctx = ctx.with_string(format!("aws:PrincipalTag/{k}"), v.clone());
                }
                ctx = ctx
                    .with_string("aws:PrincipalArn", role.arn.clone())
                    .with_string("aws:PrincipalType", "AssumedRole")
                    .with_string(
                        "aws:userid",
                        format!("AROA{}:{session_name}", name.to_uppercase()),
                    );
                if let Some(si) = &s.source_identity {
                    ctx = ctx.with_string("aws:SourceIdentity", si.clone());
                }
                ctx.insert("aws:TokenIssueTime".into(), datetime(s.issued));
                let mut id = base(Kind::Role, role.arn.clone(), ctx);
                id.session_arn = Some(format!(
                    "arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session_name}"
                ));
                id.policies = account.role_policies(role);
                id.boundary = role
                    .boundary
                    .as_ref()
                    .and_then(|b| account.policies.get(b).cloned());
                id.session_policy.clone_from(&s.policy);
                Ok(id)
            }
        },
    }
}

fn user_identity(
    account: &Account,
    name: &str,
    mut ctx: Context,
    session_policy: Option<serde_json::Value>,
) -> Result<Identity, String> {
    let user = account
        .users
        .get(name)
        .ok_or_else(|| format!("user {name} no longer exists"))?;
    for (k, v) in &user.tags {
        ctx = ctx.with_string(format!("aws:PrincipalTag/{k}"), v.clone());
    }
    ctx = ctx
        .with_string("aws:username", name)
        .with_string("aws:PrincipalArn", user.arn.clone())
        .with_string("aws:PrincipalType", "User")
        .with_string("aws:userid", format!("AIDA{}", name.to_uppercase()));
    Ok(Identity {
        kind: Kind::User,
        arn: user.arn.clone(),
        session_arn: None,
        account_root: root_arn(),
        policies: account.user_policies(user),
        boundary: None,
        session_policy,
        context: ctx,
    })
}

fn time_keys(ctx: Context, now: SystemTime) -> Context {
    let mut ctx = ctx.with_number(
        "aws:EpochTime",
        now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as f64,
    );
    ctx.insert("aws:CurrentTime".into(), datetime(now));
    ctx
}

pub fn datetime(t: SystemTime) -> ContextValue {
    ContextValue::DateTime(chrono::DateTime::<chrono::Utc>::from(t))
}
