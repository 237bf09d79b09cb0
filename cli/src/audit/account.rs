//! The root user, the users outside keyward (the plaintext-era keys the article warns
//! about), and keyward's machines, from one credential report and the snapshot.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};

use super::fix::{FixPlan, Repair};
use super::{days_since, Finding, Limits, Severity};
use crate::clients::Aws;
use crate::iam::documents::{TAG_ENROLLED, TAG_MACHINE, TAG_OWNER, TAG_REVOKED_AT};
use crate::iam::fail;
use crate::iam::snapshot::{Principal, Snapshot};

/// One row of the credential report, by column name.
pub type Row = BTreeMap<String, String>;

/// The credential report, generated now (AWS builds it in the background; we poll).
pub async fn credential_report(aws: &Aws) -> Result<Vec<Row>> {
    // 0.1 s, doubling to 2 s: about 30 s in all before giving up on COMPLETE.
    let mut wait = Duration::from_millis(100);
    for _ in 0..20 {
        let state = aws
            .iam
            .generate_credential_report()
            .send()
            .await
            .map_err(|e| fail("iam:GenerateCredentialReport", &e))?;
        if state.state().is_some_and(|s| s.as_str() == "COMPLETE") {
            break;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    let out = aws
        .iam
        .get_credential_report()
        .send()
        .await
        .map_err(|e| fail("iam:GetCredentialReport", &e))?;
    let bytes = out
        .content()
        .context("an empty credential report")?
        .as_ref();
    Ok(parse_report(&String::from_utf8_lossy(bytes)))
}

/// The report is plain CSV: no field holds a comma or a quote.
pub fn parse_report(text: &str) -> Vec<Row> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split(',').collect();
    lines
        .map(|l| {
            cols.iter()
                .zip(l.split(','))
                .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// A report date; `N/A`, `no_information` and `not_supported` are none.
pub fn date(row: &Row, col: &str) -> Option<SystemTime> {
    let v = row.get(col)?;
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|d| SystemTime::from(d.with_timezone(&chrono::Utc)))
}

pub fn yes(row: &Row, col: &str) -> bool {
    row.get(col).is_some_and(|v| v == "true")
}

/// The active keys of a report row: (slot, last rotated, last used).
pub fn active_keys(row: &Row) -> Vec<(u8, Option<SystemTime>, Option<SystemTime>)> {
    [1u8, 2]
        .into_iter()
        .filter(|n| yes(row, &format!("access_key_{n}_active")))
        .map(|n| {
            (
                n,
                date(row, &format!("access_key_{n}_last_rotated")),
                date(row, &format!("access_key_{n}_last_used_date")),
            )
        })
        .collect()
}

/// Root: an access key, or no MFA. The report's `<root_account>` row, else the
/// account summary.
pub async fn root(aws: &Aws, report: &[Row], account: &str) -> Result<Vec<Finding>> {
    let (has_key, has_mfa) = match report
        .iter()
        .find(|r| r.get("user").is_some_and(|u| u == "<root_account>"))
    {
        Some(r) => (!active_keys(r).is_empty(), yes(r, "mfa_active")),
        None => {
            let s = aws
                .iam
                .get_account_summary()
                .send()
                .await
                .map_err(|e| fail("iam:GetAccountSummary", &e))?;
            let map = s.summary_map().cloned().unwrap_or_default();
            let get = |k: &str| {
                map.iter()
                    .find(|(key, _)| key.as_str() == k)
                    .map_or(0, |(_, v)| *v)
            };
            (
                get("AccountAccessKeysPresent") > 0,
                get("AccountMFAEnabled") > 0,
            )
        }
    };
    let mut out = Vec::new();
    let at = format!("account {account}, root user");
    if has_key {
        out.push(Finding::new(Severity::High, "root-access-key", "the root user has an access key", &at,
            "delete it: sign in as root, Security credentials, Access keys, Delete (nothing should use root's key)"));
    }
    if !has_mfa {
        out.push(Finding::new(Severity::High, "root-no-mfa", "the root user has no MFA device", &at,
            "sign in as root, Security credentials, Assign MFA device (a hardware key or an authenticator app)"));
    }
    Ok(out)
}

fn is_machine(u: &Principal) -> bool {
    u.path == crate::iam::documents::PATH && u.tags.contains_key(TAG_OWNER)
}

/// Users outside keyward: keys (their age, their use) and console passwords without MFA.
pub fn outsiders(s: &Snapshot, report: &[Row], l: &Limits) -> Vec<Finding> {
    let mut out = Vec::new();
    for u in s.users.iter().filter(|u| !is_machine(u)) {
        let Some(row) = report.iter().find(|r| r.get("user") == Some(&u.name)) else {
            continue;
        };
        let keys = active_keys(row);
        if yes(row, "password_enabled") && !yes(row, "mfa_active") {
            out.push(Finding::new(
                Severity::High,
                "console-no-mfa",
                format!(
                    "{} signs in to the console with a password and no MFA",
                    u.name
                ),
                &u.arn,
                format!(
                    "assign an MFA device to {}, or `aws iam delete-login-profile --user-name {}`",
                    u.name, u.name
                ),
            ));
        }
        for (slot, rotated, used) in &keys {
            let age = rotated.map(|t| days_since(l.now, t));
            let last = used.map_or_else(
                || "never used".to_owned(),
                |t| format!("last used {} days ago", days_since(l.now, t)),
            );
            out.push(Finding::new(Severity::Medium, "user-access-key",
                format!("{} holds a long-term access key (key {slot}, {} days old, {last}): a plaintext-era key, not tied to one computer", u.name, age.map_or("?".into(), |a| a.to_string())),
                &u.arn,
                format!("give each computer that uses it its own keyward user (`keyward setup`), then `aws iam list-access-keys --user-name {}` and delete the key", u.name)));
            if age.is_some_and(|a| a > l.max_key_age.as_secs() / 86_400) {
                out.push(Finding::new(Severity::Medium, "user-key-age",
                    format!("{}'s key {slot} is {} days old (over {})", u.name, age.unwrap_or_default(), humantime::format_duration(l.max_key_age)),
                    &u.arn, format!("rotate it: `aws iam create-access-key --user-name {}`, switch its users over, delete the old one (`keyward audit --fix` deactivates it, then deletes it once you confirm)", u.name))
                    .repair(Repair::DeactivateOldKeys { user: u.name.clone(), max_age_days: l.max_key_age.as_secs() / 86_400 }));
            }
            let idle = used.or(*rotated).map(|t| days_since(l.now, t));
            if idle.is_some_and(|d| d > l.max_idle.as_secs() / 86_400) {
                out.push(Finding::new(Severity::Low, "user-key-unused",
                    format!("{}'s key {slot} was not used for {} days", u.name, idle.unwrap_or_default()),
                    &u.arn, format!("nobody needs it: `aws iam update-access-key --status Inactive --user-name {}`, then delete it", u.name)));
            }
        }
        if keys.len() > 1 {
            out.push(Finding::new(
                Severity::Medium,
                "user-two-active-keys",
                format!("{} has two active access keys", u.name),
                &u.arn,
                format!(
                    "keep one: `aws iam list-access-keys --user-name {}`, then delete the other",
                    u.name
                ),
            ));
        }
    }
    out
}

/// Keyward's machines: old or idle keys, a second key, no MFA, tags that do not match
/// the name, revocations left pending, and machines in no group.
pub fn machines(s: &Snapshot, report: &[Row], l: &Limits) -> Vec<Finding> {
    let mut out = Vec::new();
    for u in s.users.iter().filter(|u| is_machine(u)) {
        let row = report.iter().find(|r| r.get("user") == Some(&u.name));
        let keys = row.map(active_keys).unwrap_or_default();
        let mfa = row.is_some_and(|r| yes(r, "mfa_active"));
        let owner = u.tags.get(TAG_OWNER).cloned().unwrap_or_default();
        let machine = u.tags.get(TAG_MACHINE).cloned().unwrap_or_default();
        let m = |sev, check, what: String, fix: String| Finding::new(sev, check, what, &u.arn, fix);
        if u.tags.contains_key(TAG_REVOKED_AT) {
            let mut left = Vec::new();
            if !keys.is_empty() {
                left.push("keys");
            }
            if mfa {
                left.push("an MFA device");
            }
            if !u.groups.is_empty() {
                left.push("group memberships");
            }
            if !left.is_empty() {
                let f = m(
                    Severity::Medium,
                    "machine-revoke-pending",
                    format!("{} is revoked but still has {}", u.name, left.join(", ")),
                    format!(
                        "finish it on an admin computer: `keyward revoke {} --yes`",
                        u.name
                    ),
                );
                let leave = FixPlan::LeaveGroups {
                    user: u.name.clone(),
                };
                out.push(if u.groups.is_empty() {
                    f
                } else {
                    f.fixable(leave)
                });
            }
            continue;
        }
        if format!("{owner}-{machine}") != u.name {
            out.push(m(Severity::High, "machine-tags",
                format!("{}'s tags say owner `{owner}`, machine `{machine}`: they do not make its name", u.name),
                format!("tags are set once at registration; if this user is not what it claims: `keyward revoke {} --yes`", u.name)));
        }
        if !u.tags.contains_key(TAG_ENROLLED) {
            out.push(m(Severity::Low, "machine-unfinished",
                format!("{}'s registration never finished", u.name),
                format!("finish it on that computer (`keyward setup` again), or undo it (`keyward setup --abort`, or `keyward revoke {} --yes`)", u.name)));
            continue;
        }
        if !mfa {
            out.push(m(Severity::High, "machine-no-mfa", format!("{} has no MFA device", u.name),
                format!("its key alone gets nothing, but it cannot work either: register it again (`keyward revoke {}`, then `keyward enroll --machine {machine}`)", u.name)));
        }
        if keys.len() > 1 {
            out.push(m(Severity::High, "machine-two-keys",
                format!("{} has {} active keys; a computer has exactly one", u.name, keys.len()),
                format!("find the extra one (`aws iam list-access-keys --user-name {}`) and delete it; if nobody made it, `keyward revoke {}`", u.name, u.name)));
        }
        for (slot, rotated, used) in &keys {
            if let Some(age) = rotated
                .map(|t| days_since(l.now, t))
                .filter(|a| *a > l.max_key_age.as_secs() / 86_400)
            {
                out.push(m(Severity::Medium, "machine-key-age",
                    format!("{}'s key {slot} is {age} days old (over {})", u.name, humantime::format_duration(l.max_key_age)),
                    format!("re-key that computer: `keyward revoke {}`, then `keyward enroll --machine {machine}` on an admin computer", u.name)));
            }
            let since = used
                .or(*rotated)
                .or(u.created)
                .map(|t| days_since(l.now, t));
            if let Some(idle) = since.filter(|d| *d > l.max_idle.as_secs() / 86_400) {
                out.push(
                    m(
                        Severity::Medium,
                        "machine-idle",
                        format!("{} was not used for {idle} days", u.name),
                        format!("if that computer is gone: `keyward revoke {}` (`keyward audit --fix` asks, per machine)", u.name),
                    )
                    .fixable(FixPlan::Revoke { user: u.name.clone(), owner: owner.clone() }),
                );
            }
        }
        if u.groups.is_empty() {
            out.push(m(Severity::Low, "machine-no-group", format!("{} is in no group: it can do nothing", u.name),
                format!("`keyward grant {machine} --group G` on an admin computer, or `keyward revoke {}` if unused", u.name)));
        }
    }
    out
}
