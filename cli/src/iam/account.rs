//! Account-wide reads: the policies keyward manages (the admin role's whitelists) and
//! which of them still name a machine.

use anyhow::Result;

use super::documents::{self as docs, Whitelists};
use super::resources::{self, PolicyHome, ReadError};
use super::{policy, roles};
use crate::clients::Aws;

/// What the admin role may edit: the account's record, written only by its admin.
pub async fn whitelists(aws: &Aws) -> Result<Whitelists> {
    let doc = roles::inline_policy(aws, docs::ADMIN_ROLE, docs::ADMIN_ROLE)
        .await?
        .unwrap_or_default();
    Ok(docs::admin_policy_whitelists(&doc))
}

/// Writes what the admin role may edit (its inline policy, the account's record).
pub async fn set_whitelists(aws: &Aws, arns: &docs::Arns, w: &Whitelists) -> Result<()> {
    let doc = docs::admin_policy(arns, w);
    roles::put_inline_policy(aws, docs::ADMIN_ROLE, docs::ADMIN_ROLE, &doc).await
}

/// Every bucket and key policy keyward manages, plus `extra`. A revoked machine's own
/// tags are never trusted to say where it is named.
pub async fn managed_homes(aws: &Aws, extra: &[PolicyHome]) -> Result<Vec<PolicyHome>> {
    let w = whitelists(aws).await?;
    let mut homes: Vec<PolicyHome> = w.buckets.into_iter().map(PolicyHome::Bucket).collect();
    homes.extend(w.kms_keys.into_iter().map(PolicyHome::Key));
    for h in extra {
        if !homes.contains(h) {
            homes.push(h.clone());
        }
    }
    Ok(homes)
}

/// The managed policies (and `extra`) whose keyward statements still name `arn`.
pub async fn homes_naming(aws: &Aws, arn: &str, extra: &[PolicyHome]) -> Result<Vec<PolicyHome>> {
    let mut out = Vec::new();
    for home in managed_homes(aws, extra).await? {
        match resources::read_policy(aws, &home).await {
            Ok(text) => {
                if policy::parse(text.as_deref()).is_ok_and(|d| policy::contains_principal(&d, arn))
                {
                    out.push(home);
                }
            }
            Err(ReadError::NotFound) => {}
            Err(ReadError::Other(e)) => return Err(home.unreadable(e)),
        }
    }
    Ok(out)
}

/// The admin computers keyward-admin's trust policy names.
pub async fn admins(aws: &Aws) -> Result<Vec<String>> {
    Ok(roles::get_role(aws, docs::ADMIN_ROLE)
        .await?
        .map(|r| docs::admin_trust_machines(&r.trust))
        .unwrap_or_default())
}

/// The machines recorded for good in the role guard.
pub async fn recorded_revocations(aws: &Aws, arns: &docs::Arns) -> Result<Vec<String>> {
    let doc = roles::managed_policy(aws, &arns.policy(docs::ROLE_GUARD_POLICY))
        .await?
        .unwrap_or_default();
    Ok(docs::role_guard_contents(&doc).0)
}
