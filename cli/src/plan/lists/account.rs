//! `keyward init`'s steps (also the start of a bootstrap `setup`, and the audit's
//! drift check).

use crate::account::{AccountState, Request};
use crate::iam::documents as docs;
use crate::iam::resources::PolicyHome;
use crate::plan::{AccountStep, KeywardRole, Managed, Step};
use keyward_daemon::clock::Clock;

/// The steps that make the account's pieces current (JIT grants expired by `clock`
/// drop out of the role guard).
pub fn init(state: &AccountState, req: &Request, clock: Clock) -> Vec<Step> {
    let a = &state.arns;
    let mut whitelists = state.whitelists();
    whitelists.extend(&req.whitelists);
    let mut admins = state.admins();
    for m in &req.admins {
        if !admins.contains(m) {
            admins.push(m.clone());
        }
    }
    let mut guarded: Vec<String> = state.guarded_roles();
    for r in &req.guard_roles {
        let arn = format!("arn:aws:iam::{}:role/{r}", a.account);
        if !guarded.contains(&arn) {
            guarded.push(arn);
        }
    }
    let (revoked, owners) = state.guard(req.owner.as_deref());
    let mut out = vec![
        AccountStep::ManagedPolicy {
            policy: Managed::RoleGuard,
            doc: crate::iam::jit::keep_guard_grants(
                state.role_guard.as_ref(),
                docs::role_guard(&revoked, &owners),
                clock.utc(),
            ),
        },
        AccountStep::ManagedPolicy {
            policy: Managed::DenyAll,
            doc: docs::deny_all(),
        },
        AccountStep::ManagedPolicy {
            policy: Managed::Machine,
            doc: docs::machine_policy(a, &guarded),
        },
        AccountStep::Role {
            role: KeywardRole::Admin,
            trust: docs::admin_trust(a, &admins),
            policy: docs::admin_policy(a, &whitelists),
        },
        AccountStep::Role {
            role: KeywardRole::Enroller,
            trust: docs::enroller_trust(a),
            policy: docs::enroller_policy(a),
        },
    ];
    out.extend(
        req.guard_roles
            .iter()
            .map(|r| AccountStep::GuardRole { role: r.clone() }),
    );
    let old = a.policy(docs::OLD_SELF_SERVICE_POLICY);
    for m in &state.machines {
        let name = m.user.name.clone();
        if m.attached.contains(&old)
            || (!m.user.is_enrolled() && m.user.tags.contains_key("keyward-setup-complete"))
        {
            out.push(AccountStep::UpgradeMachine { user: name.clone() });
        }
        if m.inline.iter().any(|p| p == docs::OLD_REVOKE_INLINE) {
            out.push(AccountStep::UpgradeRevoked { user: name });
        }
    }
    if state.old_self_service.is_some() {
        out.push(AccountStep::RemoveOldPolicy);
    }
    let homes = whitelists
        .buckets
        .iter()
        .cloned()
        .map(PolicyHome::Bucket)
        .chain(whitelists.kms_keys.iter().cloned().map(PolicyHome::Key));
    out.extend(homes.map(|home| AccountStep::UpgradeResourcePolicy { home }));
    out.into_iter().map(Step::Account).collect()
}
