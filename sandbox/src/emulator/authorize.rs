//! Runs a request's needs through the evaluator: resolves the bucket, key and trust
//! policies taking part, logs every decision, and answers AccessDenied the way AWS
//! words it ("User: … is not authorized to perform: … on resource: … because …").

use iam_rs::ContextValue;

use crate::authz::calls::{self, Call, Need, PolicyRef};
use crate::authz::evaluate::{decide, Check, Identity, ResourcePolicy};
use crate::authz::identity::identity;
use crate::emulator::state::{Caller, Decision, Emulator};
use crate::emulator::upstream::Moto;

/// Why a request is refused, as AWS would say it.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn invalid_token(why: &str) -> Self {
        Self {
            status: 403,
            code: "InvalidClientTokenId",
            message: format!("The security token included in the request is invalid ({why})."),
        }
    }

    fn internal(why: &str) -> Self {
        Self {
            status: 500,
            code: "InternalFailure",
            message: format!("keyward's emulator could not authorize the request: {why}"),
        }
    }
}

/// The caller's identity, as of the account's current state.
pub async fn caller_identity(
    emu: &Emulator,
    moto: &Moto,
    caller: &Caller,
) -> Result<Identity, Refusal> {
    let account = moto.account().await.map_err(|e| Refusal::internal(&e))?;
    identity(caller, &account, emu.now()).map_err(|why| Refusal::invalid_token(&why))
}

/// Authorizes everything `call` needs, plus `extra`, with `extra_ctx` on top of the
/// request context (e.g. the MFA of an AssumeRole call made with a code).
pub async fn authorize(
    emu: &Emulator,
    moto: &Moto,
    caller: &Caller,
    call: &Call<'_>,
    extra: Vec<Need>,
    extra_ctx: &[(String, ContextValue)],
) -> Result<(), Refusal> {
    let id = caller_identity(emu, moto, caller).await?;
    let account = moto.account().await.map_err(|e| Refusal::internal(&e))?;
    let mut needs = calls::needs(call, &account);
    needs.extend(extra);
    for need in needs {
        check_one(emu, moto, &id, &account, need, extra_ctx).await?;
    }
    Ok(())
}

/// Authorizes one need for an identity already built.
pub async fn check_one(
    emu: &Emulator,
    moto: &Moto,
    id: &Identity,
    account: &crate::authz::account::Account,
    need: Need,
    extra_ctx: &[(String, ContextValue)],
) -> Result<(), Refusal> {
    let mut resource = need.resource.clone();
    let policy = match &need.policy {
        PolicyRef::None => ResourcePolicy::None,
        PolicyRef::Bucket(b) => match moto.bucket_policy(b).await {
            Ok(Some(p)) => ResourcePolicy::Plain(p),
            _ => ResourcePolicy::None,
        },
        PolicyRef::Key(k) => match moto.key(k).await {
            Some(info) => {
                resource = info.arn;
                ResourcePolicy::Key(info.policy)
            }
            // No such key: AWS answers NotFoundException, so let moto say it.
            None => return Ok(()),
        },
        PolicyRef::Trust(r) => match account.roles.get(r) {
            Some(role) => ResourcePolicy::Trust(role.trust.clone()),
            None => ResourcePolicy::None,
        },
    };
    let mut context = need.context.clone();
    context.extend(extra_ctx.iter().cloned());
    let check = Check {
        action: need.action.clone(),
        resource: resource.clone(),
        context,
        resource_policy: policy,
    };
    let verdict = decide(id, &check);
    let who = id.session_arn.clone().unwrap_or_else(|| id.arn.clone());
    emu.record_decision(Decision {
        principal: id.arn.clone(),
        action: need.action.clone(),
        resource: resource.clone(),
        allowed: verdict.allowed,
        reason: verdict.reason.clone(),
    });
    if verdict.allowed {
        tracing::debug!(principal = %who, action = %need.action, resource = %resource, "allowed");
        return Ok(());
    }
    tracing::debug!(principal = %who, action = %need.action, resource = %resource, reason = %verdict.reason, "denied");
    Err(Refusal {
        status: 403,
        code: "AccessDenied",
        message: format!(
            "User: {who} is not authorized to perform: {} on resource: {resource} {}",
            need.action, verdict.reason
        ),
    })
}
