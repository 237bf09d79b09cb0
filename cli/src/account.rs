//! The account's keyward pieces as they are, and what a run of `keyward init` (or the
//! first, bootstrap `keyward setup`) asks for; the steps that make them what this
//! version writes, and upgrade an account made by an earlier version, are
//! [`crate::plan::lists::init`].

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::clients::Aws;
use crate::iam::documents::{self as docs, Arns, Whitelists};
use crate::iam::resources;
use crate::iam::users::{self, UserInfo};
use crate::iam::{policy, roles};

/// A machine user as `init` needs to see it.
pub struct MachineRecord {
    pub user: UserInfo,
    pub attached: Vec<String>,
    pub inline: Vec<String>,
}

/// keyward's pieces in the account, read with the bootstrap admin's credentials.
pub struct AccountState {
    pub arns: Arns,
    pub machine_policy: Option<Value>,
    pub role_guard: Option<Value>,
    pub admin_policy: Option<Value>,
    pub admin_trust: Option<Value>,
    pub old_self_service: Option<Value>,
    pub machines: Vec<MachineRecord>,
}

impl AccountState {
    pub async fn read(aws: &Aws, arns: &Arns) -> Result<Self> {
        let mut machines = Vec::new();
        for user in users::machine_users(aws, None).await? {
            machines.push(MachineRecord {
                attached: users::attached_policies(aws, &user.name).await?,
                inline: users::inline_policies(aws, &user.name).await?,
                user,
            });
        }
        Self::with_machines(aws, arns, machines).await
    }

    /// The same, with the machines taken from a bulk read: no call per machine.
    pub async fn from_snapshot(
        aws: &Aws,
        arns: &Arns,
        snap: &crate::iam::snapshot::Snapshot,
    ) -> Result<Self> {
        let machines = snap
            .users
            .iter()
            .filter(|u| u.path == docs::PATH && u.tags.contains_key(docs::TAG_OWNER))
            .map(|u| MachineRecord {
                user: UserInfo {
                    name: u.name.clone(),
                    arn: u.arn.clone(),
                    path: u.path.clone(),
                    tags: u.tags.clone(),
                },
                attached: u.attached.clone(),
                inline: u.inline.iter().map(|(n, _)| n.clone()).collect(),
            })
            .collect();
        Self::with_machines(aws, arns, machines).await
    }

    async fn with_machines(aws: &Aws, arns: &Arns, machines: Vec<MachineRecord>) -> Result<Self> {
        let admin_role = roles::get_role(aws, docs::ADMIN_ROLE).await?;
        Ok(Self {
            arns: arns.clone(),
            machine_policy: roles::managed_policy(aws, &arns.policy(docs::MACHINE_POLICY)).await?,
            role_guard: roles::managed_policy(aws, &arns.policy(docs::ROLE_GUARD_POLICY)).await?,
            admin_policy: roles::inline_policy(aws, docs::ADMIN_ROLE, docs::ADMIN_ROLE).await?,
            admin_trust: admin_role.map(|r| r.trust),
            old_self_service: roles::managed_policy(
                aws,
                &arns.policy(docs::OLD_SELF_SERVICE_POLICY),
            )
            .await?,
            machines,
        })
    }

    /// What earlier runs put under keyward's management; an account of the earlier
    /// version kept its buckets and keys in the old self-service policy.
    pub fn whitelists(&self) -> Whitelists {
        let mut w = self
            .admin_policy
            .as_ref()
            .map(docs::admin_policy_whitelists)
            .unwrap_or_default();
        if let Some(old) = &self.old_self_service {
            for st in policy::statements(old) {
                let res = docs::strings(&st["Resource"]);
                match st["Sid"].as_str() {
                    Some("ManagedBucketPolicies") => w.extend(&Whitelists {
                        buckets: res
                            .iter()
                            .filter_map(|r| r.strip_prefix("arn:aws:s3:::").map(str::to_owned))
                            .collect(),
                        ..Whitelists::default()
                    }),
                    Some("ManagedKeyPolicies") => w.extend(&Whitelists {
                        kms_keys: res,
                        ..Whitelists::default()
                    }),
                    _ => false,
                };
            }
        }
        w
    }

    /// The designated admin computers that still exist and are not revoked.
    pub fn admins(&self) -> Vec<String> {
        let named = self
            .admin_trust
            .as_ref()
            .map(docs::admin_trust_machines)
            .unwrap_or_default();
        named
            .into_iter()
            .filter(|a| {
                self.machines
                    .iter()
                    .any(|m| m.user.name == *a && m.user.revoked_at().is_none())
            })
            .collect()
    }

    /// `(revoked machines recorded for good, owners with a guard statement)`, with every
    /// owner of a machine added.
    pub fn guard(&self, extra_owner: Option<&str>) -> (Vec<String>, Vec<String>) {
        let (revoked, mut owners) = self
            .role_guard
            .as_ref()
            .map(docs::role_guard_contents)
            .unwrap_or_default();
        for o in self
            .machines
            .iter()
            .filter_map(|m| m.user.owner())
            .chain(extra_owner)
        {
            if !owners.iter().any(|x| x == o) {
                owners.push(o.to_owned());
            }
        }
        owners.sort();
        (revoked, owners)
    }

    pub fn guarded_roles(&self) -> Vec<String> {
        self.machine_policy
            .as_ref()
            .map(docs::machine_policy_guarded_roles)
            .unwrap_or_default()
    }
}

/// What a run of `init` (or a bootstrap setup) asks for beyond what is there.
#[derive(Default)]
pub struct Request {
    pub whitelists: Whitelists,
    pub admins: Vec<String>,
    pub guard_roles: Vec<String>,
    pub owner: Option<String>,
}

/// Checks that every named group, bucket and key exists; keys become ARNs.
pub async fn resolve(aws: &Aws, mut w: Whitelists) -> Result<Whitelists> {
    for g in &w.groups {
        if !users::group_exists(aws, g).await? {
            bail!("group {g} does not exist; create it first, or drop --group {g}. Nothing was changed.");
        }
    }
    for b in &w.buckets {
        if !resources::bucket_exists(aws, b).await? {
            bail!("bucket {b} does not exist; check the name, or drop --bucket {b}. Nothing was changed.");
        }
    }
    let mut keys = Vec::new();
    for k in &w.kms_keys {
        keys.push(resources::kms_key_arn(aws, k).await?.with_context(|| {
            format!(
                "KMS key {k} does not exist; check it, or drop --kms-key {k}. Nothing was changed."
            )
        })?);
    }
    w.kms_keys = keys;
    Ok(w)
}
