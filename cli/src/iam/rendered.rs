//! Every IAM document keyward writes, rendered for one sample account and checked in
//! under `docs/iam/`, so that a change to a document shows up in review as a diff of
//! its file. The test fails when the code and the files disagree; the message names
//! the command that rewrites them.
//!
//! The sample: account 123456789012, owners alice and bob, computers alice-laptop (the
//! admin computer), alice-work and bob-laptop, the whitelisted group `developers`,
//! bucket `team-data` and key `team`, the app `billing` (bucket `billing-data`, role on
//! EC2), and a just-in-time grant of group `ops` to alice-work.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::apps::{self, App, Runtime};
use super::documents::{self as docs, Arns, Whitelists};
use super::jit::{self, Grant};
use super::policy::{self, Keepers, Target};

pub const ACCOUNT: &str = "123456789012";
pub const TEAM_KEY: &str =
    "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555";
pub const APP_KEY: &str =
    "arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-8888-9999-000000000000";
/// The account admin that ran `keyward init` and `keyward app add` (kept in the walls).
pub const ACCOUNT_ADMIN: &str = "arn:aws:iam::123456789012:user/admin";
const MACHINES: [&str; 3] = ["alice-laptop", "alice-work", "bob-laptop"];
const OWNERS: [&str; 2] = ["alice", "bob"];

/// The command that rewrites the files from the code.
pub const BLESS: &str = "KEYWARD_BLESS=1 cargo test -p keyward --bins -- rendered step_lists";

fn jit_until() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T12:00:00Z")
        .expect("a fixed time")
        .with_timezone(&Utc)
}

fn machine_arns(a: &Arns) -> Vec<String> {
    MACHINES.iter().map(|m| a.user(m)).collect()
}

fn whitelists() -> Whitelists {
    Whitelists {
        groups: vec!["developers".into()],
        buckets: vec!["team-data".into()],
        kms_keys: vec![TEAM_KEY.into()],
    }
}

fn app() -> App {
    App {
        name: "billing".into(),
        buckets: vec!["billing-data".into()],
        key: APP_KEY.into(),
        runtimes: vec![Runtime::Ec2],
    }
}

fn grant() -> Grant {
    Grant {
        group: "ops".into(),
        machine: "alice-work".into(),
        until: jit_until(),
    }
}

/// The account's own documents: the machine policy, deny-all, the role guard (with the
/// JIT grant's expiry), and keyward's admin and enroller roles.
fn account_documents(a: &Arns) -> Vec<(&'static str, Value)> {
    let owners: Vec<String> = OWNERS.iter().map(|o| (*o).to_owned()).collect();
    let guard = docs::role_guard(&["bob-old".to_owned()], &owners);
    let guarded = [a.role(&apps::id("billing")), a.role(&jit::role_name("ops"))];
    vec![
        ("machine-policy", docs::machine_policy(a, &guarded)),
        ("deny-all", docs::deny_all()),
        (
            "role-guard",
            jit::guard_with(a, &guard, &grant(), jit_until()),
        ),
        (
            "admin-role-trust",
            docs::admin_trust(a, &["alice-laptop".to_owned()]),
        ),
        ("admin-role-policy", docs::admin_policy(a, &whitelists())),
        ("enroller-role-trust", docs::enroller_trust(a)),
        ("enroller-role-policy", docs::enroller_policy(a)),
    ]
}

/// A whitelisted bucket and key after `keyward grant` named the three computers (the
/// bucket with `--enforce-encryption`), starting from AWS's default key policy.
fn whitelist_documents(a: &Arns) -> Vec<(&'static str, Value)> {
    let admin_role = a.role(docs::ADMIN_ROLE);
    let root = a.root();
    let keep = Keepers {
        account_root: &root,
        admin_role: &admin_role,
    };
    let empty = policy::parse(None).expect("an empty policy");
    let bucket = policy::rebuild(
        &empty,
        &Target::Bucket("team-data".into()),
        &machine_arns(a),
        Some(&keep),
    );
    let key = policy::rebuild(
        &apps::new_key_policy(a),
        &Target::KmsKey,
        &machine_arns(a),
        None,
    );
    vec![("bucket-team-data", bucket), ("key-team", key)]
}

/// The app `billing` with alice-laptop and alice-work as members.
fn app_documents(a: &Arns) -> Vec<(&'static str, Value)> {
    let app = app();
    let members = [a.user("alice-laptop"), a.user("alice-work")];
    let role = a.role(&app.id());
    let admin_role = a.role(docs::ADMIN_ROLE);
    let root = a.root();
    let keep = Keepers {
        account_root: &root,
        admin_role: &admin_role,
    };
    let keepers = [root.clone(), admin_role.clone(), ACCOUNT_ADMIN.to_owned()];
    let empty = policy::parse(None).expect("an empty policy");
    let admins = [ACCOUNT_ADMIN.to_owned()];
    vec![
        ("app-billing-group-policy", apps::group_policy(a, &app)),
        ("app-billing-role-policy", apps::role_policy(&app)),
        (
            "app-billing-role-trust",
            apps::role_trust(a, &app, &members),
        ),
        (
            "app-billing-key",
            apps::key_doc(&apps::new_key_policy(a), &keepers, &role, &members),
        ),
        (
            "app-billing-bucket",
            apps::bucket_doc(
                &empty,
                "billing-data",
                &keep,
                &admins,
                &role,
                APP_KEY,
                &members,
            ),
        ),
    ]
}

/// The JIT role of group `ops`: its trust with alice-work's grant, and its limits.
fn jit_documents(a: &Arns) -> Vec<(&'static str, Value)> {
    vec![
        ("jit-ops-trust", jit::trust(a, &[grant()])),
        ("jit-ops-trust-no-grant", jit::trust(a, &[])),
        ("jit-ops-limits", jit::limits(a)),
    ]
}

/// Every document keyward writes, by file name (without `.json`).
pub fn documents() -> Vec<(&'static str, Value)> {
    let a = Arns::new(ACCOUNT);
    let mut out = account_documents(&a);
    out.extend(whitelist_documents(&a));
    out.extend(app_documents(&a));
    out.extend(jit_documents(&a));
    out
}

pub fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/iam")
}

/// The pretty-printed text of a document, as the files hold it.
pub fn text(doc: &Value) -> String {
    serde_json::to_string_pretty(doc).expect("a JSON value") + "\n"
}

/// Compares (or with `KEYWARD_BLESS=1`, writes) one golden file; returns the problem.
pub fn check_file(path: &Path, want: &str) -> Option<String> {
    let shown = path
        .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .unwrap_or(path)
        .display();
    if std::env::var_os("KEYWARD_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent()?).expect("create the golden folder");
        std::fs::write(path, want).expect("write a golden file");
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(have) if have == want => None,
        Ok(have) => {
            let diff = match (serde_json::from_str(&have), serde_json::from_str(want)) {
                (Ok(old), Ok(new)) => policy::diff(&old, &new),
                _ => format!("--- the file\n{have}\n+++ the code\n{want}"),
            };
            Some(format!(
                "{shown} differs from what the code writes:\n{diff}"
            ))
        }
        Err(e) => Some(format!("{shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_documents_match_the_checked_in_files() {
        let docs = documents();
        let mut problems = Vec::new();
        for (name, doc) in &docs {
            let path = folder().join(format!("{name}.json"));
            problems.extend(check_file(&path, &text(doc)));
        }
        // A file no document writes any more is stale.
        let names: Vec<String> = docs.iter().map(|(n, _)| format!("{n}.json")).collect();
        for entry in std::fs::read_dir(folder()).expect("docs/iam exists") {
            let file = entry.expect("a directory entry").file_name();
            let file = file.to_string_lossy();
            if file.ends_with(".json") && !names.iter().any(|n| *n == file) {
                problems.push(format!("docs/iam/{file} is written by no code; remove it"));
            }
        }
        assert!(
            problems.is_empty(),
            "{}\n\nIf the change is intended, run `{BLESS}` and review the diff of docs/iam/.",
            problems.join("\n\n")
        );
    }

    #[test]
    fn the_sample_is_what_the_readme_describes() {
        let docs = documents();
        let find = |n: &str| &docs.iter().find(|(name, _)| *name == n).unwrap().1;
        assert!(policy::machines(find("bucket-team-data")).len() == 3);
        assert_eq!(
            jit::trust_grants("ops", find("jit-ops-trust")),
            vec![grant()]
        );
        assert_eq!(
            jit::trust_grants("ops", find("jit-ops-trust-no-grant")),
            Vec::new()
        );
    }
}
