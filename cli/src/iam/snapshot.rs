//! The bulk reader of the account: one paginated GetAccountAuthorizationDetails gives
//! users, groups and roles with their inline, attached and boundary policies, tags and
//! trust, and every customer-managed policy's default version. `keyward audit` and
//! `keyward machines` read the account through it, so the number of calls grows with
//! pages, not with machines.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;

use super::{fail, roles::decode_document};
use crate::clients::Aws;

#[derive(Debug, Clone, Default)]
pub struct Principal {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub created: Option<std::time::SystemTime>,
    pub tags: BTreeMap<String, String>,
    /// Inline documents, by name.
    pub inline: Vec<(String, Value)>,
    pub attached: Vec<String>,
    pub boundary: Option<String>,
    /// Users: their groups. Roles: none.
    pub groups: Vec<String>,
    /// Roles: the trust policy.
    pub trust: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub account: String,
    pub users: Vec<Principal>,
    pub groups: Vec<Principal>,
    pub roles: Vec<Principal>,
    /// Customer-managed policies' default documents, by ARN.
    pub policies: BTreeMap<String, Value>,
}

fn tags(list: &[aws_sdk_iam::types::Tag]) -> BTreeMap<String, String> {
    list.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn inline(list: &[aws_sdk_iam::types::PolicyDetail]) -> Vec<(String, Value)> {
    list.iter()
        .filter_map(|p| {
            let doc = decode_document(p.policy_document()?).ok()?;
            Some((p.policy_name().unwrap_or_default().to_owned(), doc))
        })
        .collect()
}

fn attached(list: &[aws_sdk_iam::types::AttachedPolicy]) -> Vec<String> {
    list.iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect()
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<std::time::SystemTime> {
    t.and_then(|d| std::time::SystemTime::try_from(*d).ok())
}

impl Snapshot {
    pub async fn read(aws: &Aws, account: &str) -> Result<Self> {
        let mut s = Snapshot {
            account: account.to_owned(),
            ..Snapshot::default()
        };
        let mut pages = aws
            .iam
            .get_account_authorization_details()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fail("iam:GetAccountAuthorizationDetails", &e))?;
            for u in page.user_detail_list() {
                s.users.push(Principal {
                    name: u.user_name().unwrap_or_default().to_owned(),
                    arn: u.arn().unwrap_or_default().to_owned(),
                    path: u.path().unwrap_or("/").to_owned(),
                    created: time(u.create_date()),
                    tags: tags(u.tags()),
                    inline: inline(u.user_policy_list()),
                    attached: attached(u.attached_managed_policies()),
                    boundary: u
                        .permissions_boundary()
                        .and_then(|b| b.permissions_boundary_arn())
                        .map(str::to_owned),
                    groups: u.group_list().to_vec(),
                    trust: None,
                });
            }
            for g in page.group_detail_list() {
                s.groups.push(Principal {
                    name: g.group_name().unwrap_or_default().to_owned(),
                    arn: g.arn().unwrap_or_default().to_owned(),
                    path: g.path().unwrap_or("/").to_owned(),
                    inline: inline(g.group_policy_list()),
                    attached: attached(g.attached_managed_policies()),
                    ..Principal::default()
                });
            }
            for r in page.role_detail_list() {
                s.roles.push(Principal {
                    name: r.role_name().unwrap_or_default().to_owned(),
                    arn: r.arn().unwrap_or_default().to_owned(),
                    path: r.path().unwrap_or("/").to_owned(),
                    created: time(r.create_date()),
                    tags: tags(r.tags()),
                    inline: inline(r.role_policy_list()),
                    attached: attached(r.attached_managed_policies()),
                    boundary: r
                        .permissions_boundary()
                        .and_then(|b| b.permissions_boundary_arn())
                        .map(str::to_owned),
                    groups: Vec::new(),
                    trust: r
                        .assume_role_policy_document()
                        .and_then(|d| decode_document(d).ok()),
                });
            }
            for p in page.policies() {
                let Some(arn) = p.arn() else { continue };
                let default = p
                    .policy_version_list()
                    .iter()
                    .find(|v| v.is_default_version())
                    .or_else(|| p.policy_version_list().first());
                if let Some(doc) = default.and_then(|v| v.document()) {
                    if let Ok(d) = decode_document(doc) {
                        s.policies.insert(arn.to_owned(), d);
                    }
                }
            }
        }
        Ok(s)
    }

    pub fn group(&self, name: &str) -> Option<&Principal> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The documents of a managed policy ARN: customer-managed from the snapshot, and
    /// the AWS-managed policies that matter here by their known meaning.
    pub fn managed(&self, arn: &str) -> Option<Value> {
        if let Some(d) = self.policies.get(arn) {
            return Some(d.clone());
        }
        match arn {
            "arn:aws:iam::aws:policy/AdministratorAccess" => Some(serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
            })),
            "arn:aws:iam::aws:policy/IAMFullAccess" => Some(serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]
            })),
            _ => None,
        }
    }

    /// Every identity document of a user: inline, attached, and its groups'.
    pub fn user_documents(&self, u: &Principal) -> Vec<Value> {
        let mut docs: Vec<Value> = u.inline.iter().map(|(_, d)| d.clone()).collect();
        docs.extend(u.attached.iter().filter_map(|a| self.managed(a)));
        for g in u.groups.iter().filter_map(|g| self.group(g)) {
            docs.extend(g.inline.iter().map(|(_, d)| d.clone()));
            docs.extend(g.attached.iter().filter_map(|a| self.managed(a)));
        }
        docs
    }

    /// A role's identity documents: inline and attached.
    pub fn role_documents(&self, r: &Principal) -> Vec<Value> {
        let mut docs: Vec<Value> = r.inline.iter().map(|(_, d)| d.clone()).collect();
        docs.extend(r.attached.iter().filter_map(|a| self.managed(a)));
        docs
    }
}
