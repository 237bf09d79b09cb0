//! `keyward audit` under the enforcing emulator: one planted instance of each finding
//! is reported exactly once with its severity and fix; a clean keyward account has no
//! finding at all; the default run writes nothing; `--fix --yes` fixes every fixable
//! finding, so a second audit reports only the unfixable ones. The emulator supplies
//! what moto lacks for this: the root user's key and MFA, keys' last use, old keys.

use std::time::Duration;

use keyward_tests::e2e;
use keyward_tests::world::World;
use serde_json::Value;

use crate::common::{account, bootstrap, enroll};

const ACCOUNT: &str = "123456789012";
const DAY: u64 = 86_400;

fn audit(w: &World, extra: &[&str]) -> (Value, Option<i32>) {
    let mut args = vec!["audit", "--json", "--admin"];
    args.extend_from_slice(extra);
    let out = w.keyward_admin(&args).output();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("audit: {}", String::from_utf8_lossy(&out.stderr)));
    (v, out.status.code())
}

fn matching<'a>(report: &'a Value, check: &str, place: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["check"] == check
                && (f["where"].as_str().unwrap().contains(place)
                    || f["what"].as_str().unwrap().contains(place))
        })
        .collect()
}

fn writes(w: &World) -> usize {
    [
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "PutPublicAccessBlock",
        "PutKeyPolicy",
        "UpdateAssumeRolePolicy",
        "CreatePolicyVersion",
        "PutUserPolicy",
        "AttachUserPolicy",
        "TagUser",
        "UpdateAccessKey",
        "DeleteAccessKey",
    ]
    .iter()
    .map(|a| w.proxy.control.count(a))
    .sum()
}

e2e! {
    fn audit_reports_each_planted_finding_once_and_fix_leaves_only_the_unfixable(w) {
        let acct = account(&w);
        bootstrap(&w, &acct, "alice", "laptop", true);
        let bob = w.sibling("bob-desk");
        enroll(&w, &bob, "desk", &["--owner", "bob", "--group", "dev"]);
        let planted = w.admin(&["plant-audit-findings", ACCOUNT]);
        let open_key = planted["open_key"].as_str().unwrap();
        w.proxy.control.backdate("old-key", Duration::from_secs(400 * DAY));
        w.proxy.control.backdate("bob-desk", Duration::from_secs(60 * DAY));

        let before = writes(&w);
        let (r, code) = audit(&w, &[]);
        assert_eq!(writes(&w), before, "a plain audit changes nothing");
        assert_eq!(code, Some(1), "high findings fail the run");
        for (check, place, severity) in [
            ("root-access-key", "root", "high"),
            ("root-no-mfa", "root", "high"),
            ("user-key-age", "old-key", "medium"),
            ("admin-principal", "ops-admin", "medium"),
            ("console-no-mfa", "ops-admin", "high"),
            ("privilege-escalation", "sneaky", "high"),
            ("privilege-escalation-path", "hopper", "high"),
            ("bucket-public-policy", "s3://public-data", "high"),
            ("bucket-public-acl", "s3://public-data", "high"),
            ("bucket-cross-account", "s3://shared-data", "high"),
            ("bucket-no-encryption-enforcement", "s3://plain-data", "low"),
            ("dangling-principal", "s3://shared-data", "medium"),
            ("dangling-principal", "role old-trust", "medium"),
            ("kms-public", open_key, "high"),
            ("machine-idle", "bob-desk", "medium"),
            ("keyward-drift", "keyward-deny-all", "high"),
        ] {
            let found = matching(&r, check, place);
            assert_eq!(found.len(), 1, "{check} for {place} exactly once: {r:#}");
            assert_eq!(found[0]["severity"], severity, "{}", found[0]);
            assert!(!found[0]["fix"].as_str().unwrap().is_empty());
        }
        for f in r["findings"].as_array().unwrap() {
            let check = f["check"].as_str().unwrap();
            if check.starts_with("admin") || check.starts_with("privilege") {
                assert!(!f["where"].as_str().unwrap().contains("/keyward/"), "a keyward principal judged admin: {f}");
            }
        }
        assert!(matching(&r, "keyward-drift", "").len() == 1, "enrolling a new owner kept keyward's documents current");

        let text = w.keyward_admin(&["audit", "--admin", "--fail-on", "never"]).ok().stdout;
        eprintln!("{text}");
        assert!(text.contains("HIGH   root-access-key") && text.contains("fix: "), "{text}");

        // --fix --yes: one plan, then the second audit has only what keyward cannot fix.
        let (after, _) = audit(&w, &["--fix", "--yes", "--fail-on", "never"]);
        let fixed = after["fixed"].to_string();
        eprintln!("fixed: {fixed}\nleft: {}", after["findings"]);
        for done in ["s3://public-data: Block Public Access on", "AIDAGHOSTUSER0000001", "AROAGHOSTROLE0000001",
                     "s3://plain-data: deny uploads without aws:kms", "old-key: deactivate", "old-key: delete its inactive keys", "bob-desk"] {
            assert!(fixed.contains(done), "{done}: {fixed}");
        }
        let left: Vec<&Value> = after["findings"].as_array().unwrap().iter().filter(|f| !f["fix_plan"].is_null()).collect();
        assert!(left.is_empty(), "only unfixable findings remain: {left:#?}");
        for (check, place) in [("root-access-key", "root"), ("bucket-cross-account", "shared-data"), ("kms-public", open_key), ("keyward-drift", "deny-all")] {
            assert_eq!(matching(&after, check, place).len(), 1, "{check} is not keyward's to fix: {after:#}");
        }
        let shared = w.admin(&["bucket-policy", "shared-data"]);
        assert!(shared.to_string().contains("999999999999") && !shared.to_string().contains("AIDAGHOST"), "the partner statement is kept: {shared}");
        assert!(w.admin(&["user", "bob-desk"])["tags"]["keyward-revoked-at"].is_string(), "the idle machine was revoked");
        let (again, _) = audit(&w, &["--fix", "--yes", "--fail-on", "never"]);
        assert!(again.get("fixed").is_none(), "nothing left to fix: {again}");
    }
}

e2e! {
    fn a_clean_keyward_account_has_no_findings_from_its_admin_computer(w) {
        let acct = account(&w);
        bootstrap(&w, &acct, "alice", "laptop", true);
        let work = w.sibling("alice-work");
        enroll(&w, &work, "work", &["--group", "dev"]);
        let bob = w.sibling("bob-desk");
        enroll(&w, &bob, "desk", &["--owner", "bob", "--group", "dev", "--bucket", &acct.bucket]);
        w.keyward(&["grant", "laptop", "--bucket", &acct.bucket, "--enforce-encryption", "--yes"]).ok();
        w.admin(&["harden-bucket", &acct.bucket]);
        // The article's root checklist: MFA on, no access key.
        w.proxy.control.set_root_mfa(true);
        w.proxy.control.delete_root_keys();

        let out = w.keyward(&["audit", "--json"]).output();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(r["findings"], serde_json::json!([]), "{r:#}");
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(w.proxy.control.denials(), vec![], "the admin role reads all it needs");
        let e = bob.keyward(&["audit"]).fails().stderr;
        assert!(e.contains("admin computer") && e.contains("--admin-profile"), "{e}");

        // What only the account's admin may fix is left pending on an admin computer,
        // with the way to do it; nothing is half-done.
        // (Straight into moto: the root key is gone.)
        let ghost = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Ghost","Effect":"Allow","Principal":{"AWS":"AIDAGHOSTUSER0000002"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bench-bucket-0000/*"}]}"#;
        for args in [vec!["make-buckets", "1"], vec!["put-bucket-policy-raw", "bench-bucket-0000", ghost]] {
            w.cmd("python3")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/aws_admin.py"))
                .args(args)
                .env("AWS_ENDPOINT_URL", w.moto_url())
                .env("AWS_ACCESS_KEY_ID", "moto")
                .env("AWS_SECRET_ACCESS_KEY", "moto")
                .ok();
        }
        let out = w.keyward(&["audit", "--fix", "--yes", "--json", "--fail-on", "never", "--no-local"]).ok();
        let r = out.json();
        let step = r["fix_report"]["steps"].as_array().unwrap().iter().find(|s| s["id"] == "strip_principals").cloned().unwrap_or_default();
        assert_eq!(step["status"], "pending", "{r:#}");
        assert!(step["detail"].as_str().unwrap_or_default().contains("--admin-profile"), "{step}");
        assert!(!matching(&r, "dangling-principal", "bench-bucket-0000").is_empty(), "still there");
    }
}

e2e! {
    fn a_check_it_cannot_read_is_reported_not_passed(w) {
        let acct = account(&w);
        bootstrap(&w, &acct, "alice", "laptop", true);
        let reader = w.admin(&["make-iam-reader"]);
        w.canary(reader["secret_access_key"].as_str().unwrap());
        let out = w
            .keyward(&["audit", "--json", "--admin", "--fail-on", "never"])
            .env("AWS_ACCESS_KEY_ID", reader["access_key_id"].as_str().unwrap())
            .env("AWS_SECRET_ACCESS_KEY", reader["secret_access_key"].as_str().unwrap())
            .ok();
        let r = out.json();
        let not: Vec<&str> = r["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "not-checked").map(|f| f["what"].as_str().unwrap()).collect();
        assert!(not.iter().any(|w| w.starts_with("buckets: not checked (AccessDenied on s3:ListAllMyBuckets)")), "{not:?}");
        assert!(not.iter().any(|w| w.starts_with("KMS keys: not checked (AccessDenied on kms:ListKeys)")), "{not:?}");
        assert!(!matching(&r, "root-no-mfa", "root").is_empty(), "the IAM checks still ran: {r:#}");
    }
}
