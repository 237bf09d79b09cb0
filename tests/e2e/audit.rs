//! `keyward audit` on an account with one of each misconfiguration, under the enforcing
//! emulator: every one is found with its fix, keyward's own principals never show up
//! as admins, the default run writes nothing, and `--fix` repairs what it can.

use keyward_tests::e2e;
use keyward_tests::world::World;
use serde_json::Value;

use crate::common::{account, bootstrap, enroll_bare};

const ACCOUNT: &str = "123456789012";

fn audit(w: &World, extra: &[&str]) -> (Value, Option<i32>) {
    let mut args = vec!["audit", "--json", "--admin"];
    args.extend_from_slice(extra);
    let out = w.kw_admin(&args).output();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("audit: {}", String::from_utf8_lossy(&out.stderr)));
    (v, out.status.code())
}

fn found<'a>(report: &'a Value, check: &str, place: &str) -> Option<&'a Value> {
    report["findings"].as_array().unwrap().iter().find(|f| {
        f["check"] == check
            && (f["where"].as_str().unwrap().contains(place)
                || f["what"].as_str().unwrap().contains(place))
    })
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
    ]
    .iter()
    .map(|a| w.proxy.control.count(a))
    .sum()
}

e2e! {
    fn audit_finds_each_misconfiguration_and_fixes_what_it_can(w) {
        let acct = account(&w);
        bootstrap(&w, &acct, "alice", "laptop", true);
        let _bob = enroll_bare(&w, "bob", "desk");
        let planted = w.admin(&["plant-audit-findings", ACCOUNT]);
        let open_key = planted["open_key"].as_str().unwrap();

        let before = writes(&w);
        let (r, code) = audit(&w, &[]);
        assert_eq!(writes(&w), before, "a plain audit changes nothing");
        assert_eq!(code, Some(1), "high findings fail the run: {r}");
        for (check, place, severity) in [
            ("root-no-mfa", "root", "high"),
            ("admin-principal", "ops-admin", "medium"),
            ("console-no-mfa", "ops-admin", "high"),
            ("user-access-key", "ops-admin", "medium"),
            ("privilege-escalation", "sneaky", "high"),
            ("privilege-escalation-path", "hopper", "high"),
            ("bucket-public-policy", "s3://public-data", "high"),
            ("bucket-public-acl", "s3://public-data", "high"),
            ("bucket-cross-account", "s3://shared-data", "high"),
            ("dangling-principal", "s3://shared-data", "medium"),
            ("dangling-principal", "role old-trust", "medium"),
            ("kms-public", open_key, "high"),
            ("keyward-drift", "keyward-deny-all", "high"),
            ("bucket-public-access-block-off", "s3://public-data", "medium"),
        ] {
            let f = found(&r, check, place).unwrap_or_else(|| panic!("no {check} for {place}: {r:#}"));
            assert_eq!(f["severity"], severity, "{f}");
            assert!(!f["fix"].as_str().unwrap().is_empty(), "{f}");
        }
        // Enrolling bob (a new owner) kept keyward's documents current: the only drift is
        // the planted one.
        let drift: Vec<&Value> = r["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "keyward-drift").collect();
        assert_eq!(drift.len(), 1, "{drift:#?}");

        // The human report: one line per finding, its fix under it.
        let text = w.kw_admin(&["audit", "--admin", "--fail-on", "never"]).ok().stdout;
        eprintln!("{text}");
        assert!(text.contains("HIGH   root-no-mfa") && text.contains("fix: "), "{text}");

        // keyward's principals are never admin, nor a step to it.
        for f in r["findings"].as_array().unwrap() {
            if f["check"].as_str().unwrap().starts_with("admin") || f["check"].as_str().unwrap().starts_with("privilege") {
                assert!(!f["where"].as_str().unwrap().contains("/keyward/"), "a keyward principal judged admin: {f}");
            }
        }
        // Healthy machines have no machine findings.
        assert!(r["findings"].as_array().unwrap().iter().all(|f| !f["check"].as_str().unwrap().starts_with("machine-") || f["where"].as_str().unwrap().contains("bob-desk")), "{r:#}");

        // --fix: Block Public Access and the dangling ids; everything else stays.
        let (fixed, _) = audit(&w, &["--fix", "--yes"]);
        let done: Vec<&str> = fixed["fixed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(done.iter().any(|d| d.contains("Block Public Access for s3://public-data")), "{done:?}");
        assert!(done.iter().any(|d| d.contains("AIDAGHOSTUSER0000001")), "{done:?}");
        assert!(done.iter().any(|d| d.contains("AROAGHOSTROLE0000001")), "{done:?}");
        let shared = w.admin(&["bucket-policy", "shared-data"]);
        assert_eq!(shared["Statement"], serde_json::json!([planted["shared_statement"]]), "the partner statement is kept, the ghost one is gone");
        let (after, _) = audit(&w, &[]);
        for (check, place) in [("bucket-public-policy", "s3://public-data"), ("bucket-public-acl", "s3://public-data"), ("dangling-principal", "shared-data"), ("dangling-principal", "old-trust")] {
            assert!(found(&after, check, place).is_none(), "{check} {place} is fixed: {after:#}");
        }
        assert!(found(&after, "bucket-cross-account", "s3://shared-data").is_some(), "not keyward's to fix");
        let (again, _) = audit(&w, &["--fix", "--yes"]);
        assert!(again.get("fixed").is_none_or(|f| !f.to_string().contains("public-data")), "idempotent: {again}");
    }
}

e2e! {
    fn an_admin_computer_audits_without_the_root_key_and_a_plain_machine_cannot(w) {
        let acct = account(&w);
        bootstrap(&w, &acct, "alice", "laptop", true);
        let bob = enroll_bare(&w, "bob", "desk");
        let out = w.kw(&["audit", "--json", "--fail-on", "never", "--no-local"]).output();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        assert!(out.status.success(), "{r}");
        assert!(found(&r, "root-no-mfa", "root").is_some(), "{r:#}");
        assert_eq!(w.proxy.control.denials(), vec![], "the admin role reads all it needs");
        let e = bob.kw(&["audit"]).fails().stderr;
        assert!(e.contains("admin computer") && e.contains("--admin-profile"), "{e}");
    }
}
