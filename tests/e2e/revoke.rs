//! Revocation reaches every credential derived from a machine: its sessions, its role
//! sessions (through SourceIdentity), chained role sessions and its key; a sibling
//! does it at once, an admin finishes the cleanup. Deregistration, and the inventory.

use keyward_tests::e2e;
use keyward_tests::world::World;
use serde_json::{json, Value};

use crate::common::{
    account, assert_allowed, assert_denied, attack, bootstrap, call, creds_of, enroll, key_creds,
    names, status_of, step_ids, Account,
};

/// alice-desk (admin), alice-laptop and alice-work (ordinary, in `dev`), the roles
/// data-reader and data-chained guarded by keyward, and a role profile on each.
fn fleet(desk: &World) -> (Account, Value, World, World) {
    let acct = account(desk);
    let roles = desk.admin(&["make-roles", &acct.bucket, "dev"]);
    bootstrap(desk, &acct, "alice", "desk", true);
    desk.keyward_admin(&[
        "init",
        "--guard-role",
        "data-reader",
        "--guard-role",
        "data-chained",
        "--yes",
    ])
    .ok();
    let laptop = desk.sibling("laptop");
    let work = desk.sibling("work");
    for (w, m) in [(&laptop, "laptop"), (&work, "work")] {
        enroll(
            desk,
            w,
            m,
            &[
                "--group",
                "dev",
                "--bucket",
                &acct.bucket,
                "--kms-key",
                &acct.key_arn,
            ],
        );
        let base = format!("alice-{m}");
        w.keyward(&[
            "profile",
            "add",
            "reader",
            "--role-arn",
            roles["reader"].as_str().unwrap(),
            "--source",
            &base,
        ])
        .ok();
    }
    (acct, roles, laptop, work)
}

fn list_bucket(bucket: &str) -> Value {
    json!([call(
        "list",
        "s3",
        "list_objects_v2",
        &json!({"Bucket": bucket})
    )])
}

e2e! {
    fn revoking_alice_laptop_from_alice_work_ends_every_credential_derived_from_it(desk) {
        let (acct, roles, laptop, work) = fleet(&desk);
        // What the thief holds: the laptop's session, a role session, a chained one, the key.
        let session = creds_of(&laptop, "alice-laptop");
        let role = creds_of(&laptop, "reader");
        let chain = attack(&laptop, &role, &json!([call("chain", "sts", "assume_role", &json!({"RoleArn": roles["chained"], "RoleSessionName": "chain"}))]));
        assert_allowed(&chain[0]);
        assert_eq!(chain[0]["result"]["SourceIdentity"], "alice-laptop", "SourceIdentity survives chaining");
        let chained = chain[0]["result"]["Credentials"].clone();
        let key = key_creds(&laptop, "alice-laptop");
        for c in [&session, &role, &chained] {
            assert_allowed(&attack(&laptop, c, &list_bucket(&acct.bucket))[0]);
        }

        // Before it is caught, the thief fills its owner's revocation mark on every
        // guarded role, hoping a later revoke finds no room for its name.
        let junk = format!("/{}", "x".repeat(255));
        let fill: Vec<Value> = ["data-reader", "data-chained", "keyward-admin", "keyward-enroller"]
            .iter()
            .map(|r| call("fill the mark", "iam", "tag_role", &json!({"RoleName": r, "Tags": [{"Key": "keyward-revoked-alice", "Value": junk}]})))
            .collect();
        for r in attack(&laptop, &session, &json!(fill)) {
            assert_allowed(&r);
        }

        // An ordinary sibling revokes it: cut off at once, the admin cleanup pending.
        let dry = work.keyward(&["revoke", "laptop", "--dry-run", "--json"]).ok().json();
        let report = work.keyward(&["revoke", "laptop", "--yes", "--json"]).ok().json();
        assert_eq!(step_ids(&dry), step_ids(&report), "the dry run lists what runs");
        for id in ["attach_deny_all", "mark_role_sessions", "delete_keys", "remove_mfa", "tag_revoked"] {
            assert_eq!(status_of(&report, id), "done", "{id}: {report}");
        }
        for id in ["leave_groups", "leave_policies", "record_revoked_source"] {
            assert_eq!(status_of(&report, id), "pending", "{id}: {report}");
        }
        assert_eq!(report["pending"], json!(["leave_groups", "leave_policies", "record_revoked_source"]));

        // Every credential derived from the laptop is refused by the evaluator.
        assert_denied(&attack(&laptop, &session, &list_bucket(&acct.bucket))[0], "s3:ListBucket");
        assert_denied(&attack(&laptop, &role, &list_bucket(&acct.bucket))[0], "s3:ListBucket");
        assert_denied(&attack(&laptop, &chained, &list_bucket(&acct.bucket))[0], "s3:ListBucket");
        let k = attack(&laptop, &key, &json!([call("key", "sts", "get_caller_identity", &json!({}))]));
        assert_eq!(k[0]["code"], "InvalidClientTokenId", "{k:?}");
        let again = attack(&laptop, &session, &json!([call("new role session", "sts", "assume_role", &json!({"RoleArn": roles["reader"], "RoleSessionName": "attacker", "SourceIdentity": "alice-laptop"}))]));
        assert_denied(&again[0], "sts:AssumeRole");

        // alice-work is unaffected, its role session included.
        let work_role = creds_of(&work, "reader");
        assert_allowed(&attack(&work, &work_role, &list_bucket(&acct.bucket))[0]);
        let id = work.aws("alice-work", &["s3api", "list-objects-v2", "--bucket", &acct.bucket]);
        assert!(id.status.success(), "{}", String::from_utf8_lossy(&id.stderr));

        // The inventory shows what is pending; the admin computer finishes it.
        let rows = work.keyward(&["machines", "--json"]).ok().json();
        let row = rows.as_array().unwrap().iter().find(|r| r["user"] == "alice-laptop").unwrap().clone();
        assert_eq!(row["status"], "revoked");
        assert!(row["pending"].to_string().contains("leave dev"), "{row}");
        let done = desk.keyward(&["revoke", "alice-laptop", "--yes", "--json"]).ok().json();
        assert_eq!(done["complete"], true, "{done}");
        let u = desk.admin(&["user", "alice-laptop"]);
        assert_eq!(u["groups"], json!([]));
        assert_eq!(u["keys"], json!([]));
        assert_eq!(u["mfa"], json!([]));
        assert_eq!(u["tags"]["keyward-revoked-by"], "alice-work");
        let p = desk.admin(&["policies", &acct.bucket, &acct.key_arn]);
        assert!(!names(&p["bucket"], ":user/keyward/alice-laptop") && !names(&p["key"], ":user/keyward/alice-laptop"), "{p}");
        assert_eq!(p["bucket"]["Statement"][0], acct.unrelated);
        let guard = desk.admin(&["managed-policy", "arn:aws:iam::123456789012:policy/keyward/keyward-role-guard"]);
        assert!(names(&guard, "alice-laptop"), "recorded for good: {guard}");
        let rows = desk.keyward(&["machines", "--json"]).ok().json();
        let row = rows.as_array().unwrap().iter().find(|r| r["user"] == "alice-laptop").unwrap().clone();
        assert_eq!(row["pending"], json!([]), "{row}");

        // A second revoke writes nothing; --purge deletes the tombstone.
        let writes = |w: &World| ["AttachUserPolicy", "DeleteAccessKey", "RemoveUserFromGroup", "PutBucketPolicy", "PutKeyPolicy", "TagUser", "TagRole", "CreatePolicyVersion"].map(|a| w.proxy.control.count(a));
        let before = writes(&desk);
        let again = desk.keyward(&["revoke", "alice-laptop", "--yes", "--json"]).ok().json();
        assert!(again["steps"].as_array().unwrap().iter().all(|s| s["status"] == "already_done"), "{again}");
        assert_eq!(writes(&desk), before, "a second revoke writes nothing");
        desk.keyward(&["revoke", "alice-laptop", "--yes", "--purge"]).ok();
        assert_eq!(desk.admin(&["user", "alice-laptop"])["exists"], false);
    }
}

e2e! {
    fn an_admin_computer_of_another_owner_revokes_alice_laptop(desk) {
        let acct = account(&desk);
        bootstrap(&desk, &acct, "alice", "desk", true);
        let laptop = desk.sibling("laptop");
        enroll(&desk, &laptop, "laptop", &["--group", "dev", "--bucket", &acct.bucket]);
        let bob = desk.sibling("bob-desk");
        bootstrap(&bob, &acct, "bob", "desk", true);
        let session = creds_of(&laptop, "alice-laptop");
        assert_allowed(&attack(&laptop, &session, &list_bucket(&acct.bucket))[0]);
        let report = bob.keyward(&["revoke", "alice-laptop", "--yes", "--json"]).ok().json();
        assert_eq!(report["complete"], true, "bob's admin computer finishes it all: {report}");
        assert_denied(&attack(&laptop, &session, &list_bucket(&acct.bucket))[0], "s3:ListBucket");
        let u = desk.admin(&["user", "alice-laptop"]);
        assert_eq!((u["keys"].clone(), u["groups"].clone()), (json!([]), json!([])), "{u}");
    }
}

e2e! {
    fn refusals_partial_failure_and_a_concurrent_policy_edit(desk) {
        let acct = account(&desk);
        bootstrap(&desk, &acct, "alice", "desk", true);
        let work = desk.sibling("work");
        enroll(&desk, &work, "work", &["--group", "dev", "--bucket", &acct.bucket]);
        let bob = desk.sibling("bob");
        enroll(&desk, &bob, "laptop", &["--bucket", &acct.bucket]);
        // bob's machine was enrolled for alice by name; make a real bob one too.
        let bobs = desk.sibling("bobs");
        let code: Value = serde_json::from_slice(&desk.keyward(&["enroll", "--machine", "laptop", "--owner", "bob", "--no-wait", "--json"]).output().stdout).unwrap();
        let totp = bobs.device_totp_command("bob-laptop");
        assert!(bobs.setup_enrolled(code["code"].as_str().unwrap(), &["--yes", "--mfa-process", &totp]).status.success());

        let e = work.keyward(&["revoke", "bob-laptop", "--yes"]).fails().stderr;
        let seen: Vec<_> = desk.proxy.control.decisions().into_iter().filter(|d| d.resource.contains("bob-laptop") && d.principal.contains("alice-work")).collect();
        assert!(e.contains("no machine `bob-laptop` of alice") && e.contains("only be revoked by an admin"), "{e}\n{seen:#?}");
        let e = work.keyward(&["revoke", "work", "--yes"]).fails().stderr;
        assert!(e.contains("keyward deregister"), "{e}");
        let e = work.keyward(&["revoke", "nothing", "--yes"]).fails().stderr;
        assert!(e.contains("no machine `nothing`") && e.contains("alice-work"), "{e}");
        assert_eq!(desk.admin(&["user", "bob-laptop"])["keys"].as_array().unwrap().len(), 1, "bob untouched");

        // A failure half-way: the report says what is done; a re-run finishes.
        desk.proxy.control.inject(Some("DeleteAccessKey"), keyward_tests::proxy::Fault::ServerError, 10);
        let out = desk.keyward(&["revoke", "alice-laptop", "--yes"]).fails();
        assert!(out.stderr.contains("incomplete") && out.stderr.contains("keyward revoke"), "{}", out.stderr);
        assert!(desk.admin(&["user", "alice-laptop"])["attached"].to_string().contains("keyward-deny-all"), "cut off before the failure");
        desk.proxy.control.clear_faults();
        // Someone adds a statement to the bucket policy between keyward's read and its
        // write: the revoke reads the policy in its check, again in its scan, then once
        // to edit it and once more just before writing. The hook fires before that last
        // read, so the edit must be redone on the new version, keeping their statement.
        let hook_world = desk.sibling("hook");
        let bucket = acct.bucket.clone();
        let admin = std::sync::Arc::new(std::sync::Mutex::new(hook_world));
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (a2, r2) = (admin.clone(), reads.clone());
        desk.proxy.control.inject(Some("GetBucketPolicy"), keyward_tests::proxy::Fault::Before(std::sync::Arc::new(move || {
            if r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 3 {
                a2.lock().unwrap().admin(&["add-foreign-statement", &bucket]);
            }
        })), 100);
        let done = desk.keyward(&["revoke", "alice-laptop", "--yes", "--json"]).ok().json();
        assert_eq!(done["complete"], true, "{done}");
        let p = desk.admin(&["policies", &acct.bucket, &acct.key_arn]);
        desk.proxy.control.clear_faults();
        assert!(p["bucket"].to_string().contains("AddedMeanwhile"), "the concurrent statement is kept: {p}");
        assert!(!names(&p["bucket"], ":user/keyward/alice-laptop"));
        let _ = bob;
    }
}

e2e! {
    fn deregister_revokes_this_computer_and_wipes_it(desk) {
        let acct = account(&desk);
        bootstrap(&desk, &acct, "alice", "desk", true);
        let work = desk.sibling("work");
        enroll(&desk, &work, "work", &["--group", "dev"]);
        let session = creds_of(&work, "alice-work");
        let dry = work.keyward(&["deregister", "--dry-run", "--json"]).ok().json();
        let report = work.keyward(&["deregister", "--yes", "--json"]).ok().json();
        assert_eq!(step_ids(&dry), step_ids(&report));
        assert_eq!(status_of(&report, "attach_deny_all"), "done", "{report}");
        assert_eq!(status_of(&report, "forget_local"), "done");
        assert_eq!(status_of(&report, "leave_groups"), "pending", "an ordinary machine leaves groups through an admin");
        let u = desk.admin(&["user", "alice-work"]);
        assert_eq!(u["keys"], json!([]));
        assert_eq!(u["mfa"], json!([]));
        assert!(u["attached"].to_string().contains("keyward-deny-all"));
        assert_denied(&attack(&work, &session, &json!([call("whoami", "iam", "get_user", &json!({}))]))[0], "iam:GetUser");
        let cfg = std::fs::read_to_string(work.home.join(".aws/config")).unwrap_or_default();
        assert!(!cfg.contains("alice-work"), "{cfg}");
        let listed = work.cmd("secret-tool").args(["search", "--all", "service", "keyward"]).output();
        assert!(!String::from_utf8_lossy(&listed.stdout).contains("alice-work") && !String::from_utf8_lossy(&listed.stderr).contains("alice-work"));
        desk.keyward(&["revoke", "alice-work", "--yes", "--purge"]).ok();
        assert_eq!(desk.admin(&["user", "alice-work"])["exists"], false);
    }
}

e2e! {
    fn a_new_owners_computers_revoke_each_others_role_sessions_from_the_first_enrollment(desk) {
        // bob's computers come from alice's admin computer; nobody ran `keyward init` since.
        let acct = account(&desk);
        let roles = desk.admin(&["make-roles", &acct.bucket, "dev"]);
        bootstrap(&desk, &acct, "alice", "desk", true);
        desk.keyward_admin(&["init", "--guard-role", "data-reader", "--yes"]).ok();
        let (a, b) = (desk.sibling("bob-a"), desk.sibling("bob-b"));
        for (w, m) in [(&a, "a"), (&b, "b")] {
            enroll(&desk, w, m, &["--owner", "bob", "--group", "dev", "--bucket", &acct.bucket]);
            let base = format!("bob-{m}");
            w.keyward(&["profile", "add", "reader", "--role-arn", roles["reader"].as_str().unwrap(), "--source", &base]).ok();
        }
        let role = creds_of(&a, "reader");
        assert_allowed(&attack(&a, &role, &list_bucket(&acct.bucket))[0]);
        let report = b.keyward(&["revoke", "a", "--yes", "--json"]).ok().json();
        assert_eq!(status_of(&report, "mark_role_sessions"), "done", "{report}");
        assert_denied(&attack(&a, &role, &list_bucket(&acct.bucket))[0], "s3:ListBucket");
    }
}
