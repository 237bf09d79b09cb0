//! Just-in-time group access (the article: "add only the currently used computer in a
//! group … add them only when necessary"), with an expiry AWS enforces.
//!
//! `keyward access enable G` (the account's admin) makes role `/keyward/jit-G` with
//! the group's own policies, keyward-role-guard as its boundary, and a trust that
//! lets nobody in. A grant (by an admin computer) is two statements:
//! - in the role's trust: machine M, with MFA, naming itself, while
//!   `aws:CurrentTime` is before the expiry (no new session after it);
//! - in keyward-role-guard: deny everything to sessions of this role whose source
//!   identity is M once `aws:CurrentTime` is past the expiry (no old session either).
//!
//! Both are AWS's to enforce: a computer that is off or stolen keeps nothing. An
//! expired grant is pruned at the next grant or revoke, an hour after its expiry (a
//! session lives at most an hour).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::documents::Arns;
use super::policy;

pub const PREFIX: &str = "jit-";
/// The JIT role's own denies, beside the group's copied policies.
pub const LIMITS: &str = "keyward-jit-limits";
/// On the JIT role: the group it stands for.
pub const TAG_JIT: &str = "keyward-jit";
const SID_PREFIX: &str = "Jit";

pub fn role_name(group: &str) -> String {
    format!("{PREFIX}{group}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub group: String,
    pub machine: String,
    pub until: DateTime<Utc>,
}

impl Grant {
    /// Unique per (group, machine): a digest, since statement ids allow only letters
    /// and digits and `alice-work.1` and `alice-work1` must not share one.
    fn sid(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(format!("{}\0{}", self.group, self.machine));
        format!(
            "{SID_PREFIX}{}",
            data_encoding::HEXUPPER.encode(&digest[..10])
        )
    }

    fn until_text(&self) -> String {
        self.until.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Past its expiry plus the longest session: both statements may go.
    pub fn prunable(&self, now: DateTime<Utc>) -> bool {
        self.until + chrono::Duration::hours(1) < now
    }

    fn trust_statement(&self, a: &Arns) -> Value {
        json!({"Sid": self.sid(), "Effect": "Allow", "Principal": {"AWS": a.user(&self.machine)},
               "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
               "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                             "StringEquals": {"sts:SourceIdentity": self.machine},
                             "DateLessThan": {"aws:CurrentTime": self.until_text()}}})
    }

    fn guard_statement(&self, a: &Arns) -> Value {
        json!({"Sid": self.sid(), "Effect": "Deny", "Action": "*", "Resource": "*",
               "Condition": {"StringEquals": {"aws:SourceIdentity": self.machine},
                             "ArnEquals": {"aws:PrincipalArn": a.role(&role_name(&self.group))},
                             "DateGreaterThan": {"aws:CurrentTime": self.until_text()}}})
    }
}

/// What a JIT session may never do, whatever the group grants: touch keyward's
/// pieces (its expiry lives in the role guard and the trust), chain into another role
/// (whose session would outlive the expiry), or mint credentials that outlive it.
pub fn limits(a: &Arns) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "NeverTouchKeyward", "Effect": "Deny", "Action": "iam:*",
         "Resource": [a.policy("*"), a.role("*"), a.user("*")]},
        {"Sid": "NoSessionOutlivesTheGrant", "Effect": "Deny",
         "Action": ["sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity",
                    "sts:GetFederationToken", "sts:GetSessionToken"], "Resource": "*"},
        {"Sid": "NoCredentialOutlivesTheGrant", "Effect": "Deny",
         "Action": ["iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile",
                    "iam:CreateServiceSpecificCredential", "iam:UploadSSHPublicKey", "iam:CreateRole",
                    "iam:UpdateAssumeRolePolicy", "iam:PassRole"], "Resource": "*"}
    ]})
}

fn is_jit(st: &Value) -> bool {
    st["Sid"]
        .as_str()
        .is_some_and(|s| s.starts_with(SID_PREFIX))
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The grants a JIT role's trust holds.
pub fn trust_grants(group: &str, trust: &Value) -> Vec<Grant> {
    policy::statements(trust)
        .into_iter()
        .filter(|s| is_jit(s) && s["Effect"] == "Allow")
        .filter_map(|s| {
            Some(Grant {
                group: group.to_owned(),
                machine: s["Condition"]["StringEquals"]["sts:SourceIdentity"]
                    .as_str()?
                    .to_owned(),
                until: parse_time(&s["Condition"]["DateLessThan"]["aws:CurrentTime"])?,
            })
        })
        .collect()
}

/// The trust for these grants (nobody when there is none).
pub fn trust(a: &Arns, grants: &[Grant]) -> Value {
    let mut statements: Vec<Value> = grants.iter().map(|g| g.trust_statement(a)).collect();
    if statements.is_empty() {
        statements.push(json!({"Sid": "NobodyYet", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The role guard with `grant`'s expiry deny (replacing an older one for the same
/// group and machine) and without the prunable ones.
pub fn guard_with(a: &Arns, guard: &Value, grant: &Grant, now: DateTime<Utc>) -> Value {
    let mut out = guard.clone();
    let keep: Vec<Value> = policy::statements(guard)
        .into_iter()
        .filter(|s| !is_jit(s) || (s["Sid"] != grant.sid() && !guard_prunable(s, now)))
        .cloned()
        .collect();
    out["Statement"] = Value::Array(keep);
    policy::upsert_statement(&mut out, grant.guard_statement(a));
    out
}

/// The role guard without prunable JIT statements.
pub fn prune_guard(guard: &Value, now: DateTime<Utc>) -> Value {
    let mut out = guard.clone();
    let keep: Vec<Value> = policy::statements(guard)
        .into_iter()
        .filter(|s| !is_jit(s) || !guard_prunable(s, now))
        .cloned()
        .collect();
    out["Statement"] = Value::Array(keep);
    out
}

fn guard_prunable(st: &Value, now: DateTime<Utc>) -> bool {
    parse_time(&st["Condition"]["DateGreaterThan"]["aws:CurrentTime"])
        .is_some_and(|t| t + chrono::Duration::hours(1) < now)
}

/// `new` with the JIT statements of `old` carried over (other writers of the guard
/// rebuild it from its revocation record).
pub fn keep_guard_grants(old: Option<&Value>, mut new: Value, now: DateTime<Utc>) -> Value {
    for st in old.map(policy::statements).unwrap_or_default() {
        if is_jit(st) && !guard_prunable(st, now) {
            policy::upsert_statement(&mut new, st.clone());
        }
    }
    new
}

/// The machines a guard statement set cuts off.
#[cfg(test)]
pub fn guard_machines(guard: &Value) -> Vec<String> {
    use super::documents::strings;
    policy::statements(guard)
        .into_iter()
        .filter(|s| is_jit(s))
        .flat_map(|s| strings(&s["Condition"]["StringEquals"]["aws:SourceIdentity"]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn grants_round_trip_and_expired_ones_are_pruned_an_hour_late() {
        let a = Arns::new("123456789012");
        let g = Grant {
            group: "ops".into(),
            machine: "alice-work".into(),
            until: at("2026-11-30T12:00:00Z"),
        };
        let t = trust(&a, std::slice::from_ref(&g));
        assert_eq!(trust_grants("ops", &t), vec![g.clone()]);
        assert_eq!(trust(&a, &[])["Statement"][0]["Effect"], "Deny");
        let guard = json!({"Version": "2012-10-17", "Statement": [{"Sid": "RoleRightsUnchanged", "Effect": "Allow", "Action": "*", "Resource": "*"}]});
        let with = guard_with(&a, &guard, &g, at("2026-11-30T11:00:00Z"));
        assert_eq!(with["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(guard_machines(&with), vec!["alice-work".to_owned()]);
        let later = Grant {
            machine: "alice-home".into(),
            ..g.clone()
        };
        let pruned = guard_with(&a, &with, &later, at("2026-11-30T13:30:00Z"));
        assert_eq!(guard_machines(&pruned), vec!["alice-home".to_owned()]);
        let rebuilt = keep_guard_grants(Some(&with), guard.clone(), at("2026-11-30T11:00:00Z"));
        assert_eq!(rebuilt, with);
        let much_later = keep_guard_grants(Some(&with), guard.clone(), at("2026-11-30T13:00:01Z"));
        assert_eq!(
            much_later, guard,
            "an hour past its expiry a grant is dropped"
        );
        let rebuilt = keep_guard_grants(Some(&with), guard.clone(), at("2026-11-30T12:59:59Z"));
        assert_eq!(rebuilt, with);
        assert!(g.prunable(at("2026-11-30T13:00:01Z")) && !g.prunable(at("2026-11-30T12:59:00Z")));
        let (a1, a2) = (
            Grant {
                machine: "alice-work.1".into(),
                ..g.clone()
            },
            Grant {
                machine: "alice-work1".into(),
                ..g.clone()
            },
        );
        assert_ne!(
            a1.sid(),
            a2.sid(),
            "names that read alike keep their own statements"
        );
        assert!(a1.sid().chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
