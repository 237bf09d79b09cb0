//! A read-only snapshot of the emulated account's IAM state, parsed from moto's
//! GetAccountAuthorizationDetails and ListVirtualMFADevices answers. The authorizer
//! builds each request's principal and context from it.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

pub const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone, Default)]
pub struct User {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    pub inline: Vec<Value>,
    pub attached: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub arn: String,
    pub inline: Vec<Value>,
    pub attached: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    pub trust: Value,
    pub inline: Vec<Value>,
    pub attached: Vec<String>,
    pub boundary: Option<String>,
}

/// Everything IAM knows, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub users: HashMap<String, User>,
    pub groups: HashMap<String, Group>,
    pub roles: HashMap<String, Role>,
    /// Managed policy ARN -> its default version's document.
    pub policies: HashMap<String, Value>,
    /// Virtual MFA serial -> the user it is assigned to (None: not assigned).
    pub mfa_devices: HashMap<String, Option<String>>,
}

impl Account {
    pub fn user_by_arn(&self, arn: &str) -> Option<&User> {
        self.users.values().find(|u| u.arn == arn)
    }

    /// The identity-based policies of a user: inline, attached, and its groups'.
    pub fn user_policies(&self, user: &User) -> Vec<Value> {
        let mut out = user.inline.clone();
        out.extend(self.managed(&user.attached));
        for g in user.groups.iter().filter_map(|g| self.groups.get(g)) {
            out.extend(g.inline.iter().cloned());
            out.extend(self.managed(&g.attached));
        }
        out
    }

    pub fn role_policies(&self, role: &Role) -> Vec<Value> {
        let mut out = role.inline.clone();
        out.extend(self.managed(&role.attached));
        out
    }

    fn managed(&self, arns: &[String]) -> Vec<Value> {
        arns.iter()
            .filter_map(|a| self.policies.get(a).cloned())
            .collect()
    }

    /// Adds one page of GetAccountAuthorizationDetails; returns the next marker.
    pub fn add_details_page(&mut self, xml: &str) -> Result<Option<String>, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| format!("unreadable XML: {e}"))?;
        let root = doc.root_element();
        for m in members(root, "UserDetailList") {
            let u = User {
                name: text(m, "UserName"),
                path: text(m, "Path"),
                arn: text(m, "Arn"),
                tags: tags(m),
                inline: inline_docs(m, "UserPolicyList"),
                attached: attached(m),
                groups: members(m, "GroupList")
                    .map(|g| g.text().unwrap_or_default().to_owned())
                    .collect(),
            };
            self.users.insert(u.name.clone(), u);
        }
        for m in members(root, "GroupDetailList") {
            let g = Group {
                name: text(m, "GroupName"),
                arn: text(m, "Arn"),
                inline: inline_docs(m, "GroupPolicyList"),
                attached: attached(m),
            };
            self.groups.insert(g.name.clone(), g);
        }
        for m in members(root, "RoleDetailList") {
            let r = Role {
                name: text(m, "RoleName"),
                path: text(m, "Path"),
                arn: text(m, "Arn"),
                tags: tags(m),
                trust: decode_document(&text(m, "AssumeRolePolicyDocument")).unwrap_or(Value::Null),
                inline: inline_docs(m, "RolePolicyList"),
                attached: attached(m),
                boundary: child(m, "PermissionsBoundary")
                    .map(|b| text(b, "PermissionsBoundaryArn"))
                    .filter(|s| !s.is_empty()),
            };
            self.roles.insert(r.name.clone(), r);
        }
        for m in members(root, "Policies") {
            let arn = text(m, "Arn");
            let default = members(m, "PolicyVersionList")
                .find(|v| text(*v, "IsDefaultVersion") == "true")
                .and_then(|v| decode_document(&text(v, "Document")));
            if let Some(doc) = default {
                self.policies.insert(arn, doc);
            }
        }
        let truncated = descendant(root, "IsTruncated").is_some_and(|n| n.text() == Some("true"));
        Ok(truncated
            .then(|| descendant(root, "Marker").map(|n| n.text().unwrap_or_default().to_owned()))
            .flatten())
    }

    /// Adds one page of ListVirtualMFADevices; returns the next marker.
    pub fn add_mfa_page(&mut self, xml: &str) -> Result<Option<String>, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| format!("unreadable XML: {e}"))?;
        let root = doc.root_element();
        for m in members(root, "VirtualMFADevices") {
            let user = child(m, "User").map(|u| text(u, "UserName"));
            self.mfa_devices.insert(text(m, "SerialNumber"), user);
        }
        let truncated = descendant(root, "IsTruncated").is_some_and(|n| n.text() == Some("true"));
        Ok(truncated
            .then(|| descendant(root, "Marker").map(|n| n.text().unwrap_or_default().to_owned()))
            .flatten())
    }
}

/// IAM hands documents out URL-encoded (moto: all but trust policies in GAAD).
pub fn decode_document(raw: &str) -> Option<Value> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if raw.starts_with('{') {
        return serde_json::from_str(raw).ok();
    }
    let text = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&text).ok()
}

fn descendant<'a>(n: roxmltree::Node<'a, 'a>, tag: &str) -> Option<roxmltree::Node<'a, 'a>> {
    n.descendants().find(|c| c.has_tag_name(tag))
}

fn child<'a>(n: roxmltree::Node<'a, 'a>, tag: &str) -> Option<roxmltree::Node<'a, 'a>> {
    n.children().find(|c| c.has_tag_name(tag))
}

fn text(n: roxmltree::Node, tag: &str) -> String {
    child(n, tag)
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_owned()
}

/// The `<member>` children of the first `<tag>` under `n`.
fn members<'a>(
    n: roxmltree::Node<'a, 'a>,
    tag: &str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> {
    descendant(n, tag)
        .into_iter()
        .flat_map(|list| list.children().filter(|c| c.has_tag_name("member")))
}

fn tags(n: roxmltree::Node) -> BTreeMap<String, String> {
    child(n, "Tags")
        .into_iter()
        .flat_map(|t| t.children().filter(|c| c.has_tag_name("member")))
        .map(|m| (text(m, "Key"), text(m, "Value")))
        .collect()
}

fn inline_docs(n: roxmltree::Node, list: &str) -> Vec<Value> {
    child(n, list)
        .into_iter()
        .flat_map(|l| l.children().filter(|c| c.has_tag_name("member")))
        .filter_map(|m| decode_document(&text(m, "PolicyDocument")))
        .collect()
}

fn attached(n: roxmltree::Node) -> Vec<String> {
    child(n, "AttachedManagedPolicies")
        .into_iter()
        .flat_map(|l| l.children().filter(|c| c.has_tag_name("member")))
        .map(|m| text(m, "PolicyArn"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAAD: &str = r#"<GetAccountAuthorizationDetailsResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetAccountAuthorizationDetailsResult><UserDetailList><member><Path>/keyward/</Path><UserName>alice-laptop</UserName><Arn>arn:aws:iam::123456789012:user/keyward/alice-laptop</Arn><UserPolicyList/><GroupList><member>dev</member></GroupList><AttachedManagedPolicies><member><PolicyName>keyward-machine</PolicyName><PolicyArn>arn:aws:iam::123456789012:policy/keyward/keyward-machine</PolicyArn></member></AttachedManagedPolicies><Tags><member><Key>keyward-owner</Key><Value>alice</Value></member></Tags></member></UserDetailList><GroupDetailList><member><Path>/</Path><GroupName>dev</GroupName><Arn>arn:aws:iam::123456789012:group/dev</Arn><GroupPolicyList><member><PolicyName>g</PolicyName><PolicyDocument>%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D</PolicyDocument></member></GroupPolicyList><AttachedManagedPolicies/></member></GroupDetailList><RoleDetailList><member><Path>/keyward/</Path><RoleName>r</RoleName><Arn>arn:aws:iam::123456789012:role/keyward/r</Arn><AssumeRolePolicyDocument>{"Version": "2012-10-17", "Statement": []}</AssumeRolePolicyDocument><RolePolicyList/><AttachedManagedPolicies/><PermissionsBoundary><PermissionsBoundaryArn>arn:aws:iam::123456789012:policy/b</PermissionsBoundaryArn></PermissionsBoundary><Tags><member><Key>t</Key><Value>v</Value></member></Tags></member></RoleDetailList><Policies><member><Arn>arn:aws:iam::123456789012:policy/keyward/keyward-machine</Arn><PolicyVersionList><member><Document>%7B%22Version%22%3A%20%222012-10-17%22%7D</Document><IsDefaultVersion>true</IsDefaultVersion></member></PolicyVersionList></member></Policies><IsTruncated>true</IsTruncated><Marker>next</Marker></GetAccountAuthorizationDetailsResult></GetAccountAuthorizationDetailsResponse>"#;

    #[test]
    fn details_page_is_read_whole() {
        let mut a = Account::default();
        assert_eq!(a.add_details_page(GAAD).unwrap().as_deref(), Some("next"));
        let u = &a.users["alice-laptop"];
        assert_eq!(u.path, "/keyward/");
        assert_eq!(u.tags["keyward-owner"], "alice");
        assert_eq!(u.groups, vec!["dev"]);
        assert_eq!(a.groups["dev"].inline.len(), 1);
        let r = &a.roles["r"];
        assert_eq!(
            r.boundary.as_deref(),
            Some("arn:aws:iam::123456789012:policy/b")
        );
        assert_eq!(r.trust["Version"], "2012-10-17");
        assert_eq!(r.tags["t"], "v");
        assert_eq!(
            a.user_policies(u).len(),
            2,
            "its managed policy and its group's"
        );
    }

    #[test]
    fn documents_decode_plain_or_url_encoded() {
        assert_eq!(decode_document("{\"a\":1}").unwrap()["a"], 1);
        assert_eq!(decode_document("%7B%22a%22%3A1%7D").unwrap()["a"], 1);
        assert!(decode_document("").is_none());
    }
}
