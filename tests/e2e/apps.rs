//! Applications (`keyward app`), under the enforcing emulator: a member computer's app
//! profile reads and writes the app's bucket with the app's key and nothing else; a
//! put without it, or with another key, is denied; another owner's computer is denied
//! everything; the whitelists follow grant, revoke and `keyward revoke`; foreign
//! statements are kept; re-runs are no-ops; a run killed midway completes on re-run.

use std::time::Duration;

use keyward_tests::e2e;
use keyward_tests::proxy::Fault;
use keyward_tests::world::World;
use serde_json::{json, Value};

use crate::common::{
    account, assert_allowed, assert_denied, attack, bootstrap, call, creds_of, enroll, key_creds,
    names, status_of,
};

const BUCKET: &str = "billing-data";
const ROLE: &str = "arn:aws:iam::123456789012:role/keyward/app-billing";

fn user(name: &str) -> String {
    format!("arn:aws:iam::123456789012:user/keyward/{name}")
}

fn add_billing(w: &World, extra: &[&str]) -> Value {
    let mut args = vec![
        "app",
        "add",
        "billing",
        "--bucket",
        BUCKET,
        "--runtime",
        "ec2",
        "--machine",
        "alice-laptop",
    ];
    args.extend(extra);
    args.extend(["--admin", "--yes", "--json"]);
    w.keyward_admin(&args).ok().json()
}

fn put(name: &str, sse: Option<&str>) -> Value {
    let mut args = json!({"Bucket": BUCKET, "Key": name, "Body": "data"});
    if let Some(k) = sse {
        args["ServerSideEncryption"] = json!("aws:kms");
        args["SSEKMSKeyId"] = json!(k);
    }
    call(name, "s3", "put_object", &args)
}

fn bucket_policy(w: &World) -> Value {
    w.admin(&["bucket-policy", BUCKET])
}

fn key_policy(w: &World, key: &str) -> Value {
    w.admin(&["policies", BUCKET, key])["key"].clone()
}

fn whitelisted(doc: &Value, arn: &str) -> bool {
    doc["Statement"].as_array().unwrap().iter().any(|s| {
        s["Sid"] == "KeywardDenyOthers"
            && s["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
                .to_string()
                .contains(arn)
    })
}

e2e! {
    fn an_app_gives_its_developers_its_data_with_its_key_and_nothing_else(w) {
        let acct = account(&w);
        let billing = w.admin(&["make-world", BUCKET]);
        let other_key = billing["key_arn"].as_str().unwrap().to_owned();
        bootstrap(&w, &acct, "alice", "laptop", true);
        let bob = w.sibling("bob-laptop");
        enroll(&w, &bob, "laptop", &["--owner", "bob", "--group", "dev"]);

        // Bad input and the wrong identity change nothing.
        let asym = w.admin(&["make-asymmetric-key"])["arn"].as_str().unwrap().to_owned();
        for (args, says) in [
            (vec!["app", "add", "Bill_ing", "--bucket", BUCKET, "--admin", "--yes"], "app name"),
            (vec!["app", "add", "billing", "--bucket", BUCKET, "--kms-key", &asym, "--admin", "--yes"], "not a symmetric"),
            (vec!["app", "add", "billing", "--bucket", "no-such-bucket", "--admin", "--yes"], "--create-bucket"),
            (vec!["app", "add", "billing", "--bucket", BUCKET, "--machine", "carol-pc", "--admin", "--yes"], "no machine carol-pc"),
        ] {
            let e = w.keyward_admin(&args).fails().stderr;
            assert!(e.contains(says) && e.contains("Nothing was changed"), "{args:?}: {e}");
        }
        let out = bob.keyward(&["app", "add", "billing", "--bucket", BUCKET, "--yes", "--json"]).fails();
        assert!(out.stderr.contains("--admin-profile") && out.stdout.contains("\"pending\""), "{}\n{}", out.stdout, out.stderr);
        assert_eq!(w.admin(&["role", "app-billing"])["exists"], false, "nothing was made");
        assert_eq!(w.admin(&["key", "alias/app-billing"])["exists"], false);

        let report = add_billing(&w, &[]);
        assert_eq!(report["complete"], true, "{report:#}");
        assert!(report.to_string().contains("keyward does not own: UnrelatedReadOnly"), "the foreign statement is listed: {report}");
        let key = w.admin(&["key", "alias/app-billing"])["arn"].as_str().unwrap().to_owned();
        let again = add_billing(&w, &[]);
        assert!(again["steps"].as_array().unwrap().iter().all(|s| s["status"] == "already_done"), "{again:#}");
        let text = w.keyward_admin(&["app", "add", "billing", "--bucket", BUCKET, "--runtime", "ec2", "--machine", "alice-laptop", "--admin", "--yes"]).ok().stdout;
        assert!(text.contains("nothing changed"), "{text}");

        // The role: trusted by EC2, in an instance profile, guarded like keyward's roles.
        let role = w.admin(&["role", "app-billing"]);
        assert!(role["trust"].to_string().contains("ec2.amazonaws.com"), "{role}");
        assert_eq!(role["boundary"], "arn:aws:iam::123456789012:policy/keyward/keyward-role-guard");
        assert_eq!(w.admin(&["instance-profile", "app-billing"])["roles"], json!(["app-billing"]));
        let kp = key_policy(&w, &key);
        assert!(names(&kp, ROLE) && names(&kp, &user("alice-laptop")) && names(&kp, "arn:aws:iam::123456789012:root"), "{kp:#}");
        let bp = bucket_policy(&w);
        assert_eq!(bp["Statement"][0], billing["unrelated"], "the foreign statement is kept");
        assert!(!bp.to_string().contains("NotPrincipal") && whitelisted(&bp, ROLE) && whitelisted(&bp, &user("alice-laptop")), "{bp:#}");

        // alice-laptop develops it: a profile that assumes the role with its MFA session.
        w.keyward(&["profile", "add", "billing", "--app", "billing"]).ok();
        let body = w.root().join("body.txt");
        std::fs::write(&body, "ledger").unwrap();
        let out = w.aws("billing", &["s3api", "put-object", "--bucket", BUCKET, "--key", "ledger.txt", "--body", body.to_str().unwrap(),
                                     "--server-side-encryption", "aws:kms", "--ssekms-key-id", &key]);
        assert!(out.status.success(), "{}\n{:#?}", String::from_utf8_lossy(&out.stderr), w.proxy.control.denials());
        let got = w.root().join("got.txt");
        let out = w.aws("billing", &["s3api", "get-object", "--bucket", BUCKET, "--key", "ledger.txt", got.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read_to_string(&got).unwrap(), "ledger");
        let example = w.cmd("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/app_example.py"))
            .args(["billing", BUCKET, &key])
            .ok();
        assert_eq!(example.stdout.trim(), "hello", "the README's boto3 example works");
        let block = |text: &str| text.split("# --- README: app example ---").nth(1).and_then(|t| t.split("# --- end ---").next()).map(str::to_owned);
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/py/app_example.py")).unwrap();
        assert_eq!(block(&readme), block(&script), "the README shows the code this test runs");

        let app = creds_of(&w, "billing");
        let r = attack(&w, &app, &json!([put("plain", None), put("other key", Some(&other_key)), put("app key", Some(&key))]));
        assert_denied(&r[0], "s3:PutObject");
        assert_denied(&r[1], "s3:PutObject");
        assert_allowed(&r[2]);
        let r = attack(&w, &app, &json!([call("iam", "iam", "list_users", &json!({})), call("other bucket", "s3", "list_objects_v2", &json!({"Bucket": acct.bucket}))]));
        assert_denied(&r[0], "iam:ListUsers");
        assert_denied(&r[1], "s3:ListBucket");

        // bob-laptop is denied everything on the bucket, the key and the role.
        let bobs = creds_of(&bob, "bob-laptop");
        let r = attack(&bob, &bobs, &json!([
            call("read", "s3", "get_object", &json!({"Bucket": BUCKET, "Key": "ledger.txt"})),
            call("list", "s3", "list_objects_v2", &json!({"Bucket": BUCKET})),
            put("write", Some(&key)),
            call("decrypt", "kms", "generate_data_key", &json!({"KeyId": key, "KeySpec": "AES_256"})),
            call("role", "sts", "assume_role", &json!({"RoleArn": ROLE, "RoleSessionName": "bob", "SourceIdentity": "bob-laptop"})),
        ]));
        for (i, action) in ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "kms:GenerateDataKey", "sts:AssumeRole"].iter().enumerate() {
            assert_denied(&r[i], action);
        }
        // Even with a group granting s3:*, kms:* and sts:AssumeRole on everything, bob
        // cannot lift the bucket's wall, use the key, or take the role.
        w.admin(&["make-power-group", "bob-laptop"]);
        let r = attack(&bob, &bobs, &json!([
            call("drop the wall", "s3", "delete_bucket_policy", &json!({"Bucket": BUCKET})),
            call("rewrite the wall", "s3", "put_bucket_policy", &json!({"Bucket": BUCKET, "Policy": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"})),
            call("read", "s3", "get_object", &json!({"Bucket": BUCKET, "Key": "ledger.txt"})),
            call("key", "kms", "generate_data_key", &json!({"KeyId": key, "KeySpec": "AES_256"})),
            call("key policy", "kms", "put_key_policy", &json!({"KeyId": key, "PolicyName": "default", "Policy": "{}"})),
            call("role", "sts", "assume_role", &json!({"RoleArn": ROLE, "RoleSessionName": "bob", "SourceIdentity": "bob-laptop"})),
        ]));
        for (i, action) in ["s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:GetObject", "kms:GenerateDataKey", "kms:PutKeyPolicy", "sts:AssumeRole"].iter().enumerate() {
            assert_denied(&r[i], action);
        }
        // Property 1: alice-laptop's key alone reaches none of it.
        let r = attack(&w, &key_creds(&w, "alice-laptop"), &json!([call("read", "s3", "get_object", &json!({"Bucket": BUCKET, "Key": "ledger.txt"}))]));
        assert_denied(&r[0], "s3:GetObject");

        let shown = w.keyward(&["app", "show", "billing", "--json"]).ok().json();
        assert_eq!(shown["drift"], json!([]), "{shown:#}");
        assert_eq!(shown["members"], json!(["alice-laptop"]));
        let e = w.keyward_admin(&["app", "remove", "billing", "--admin", "--yes"]).fails().stderr;
        assert!(e.contains("holds objects") && e.contains("--force"), "{e}");
        assert_eq!(w.admin(&["role", "app-billing"])["exists"], true, "nothing was removed");
    }
}

e2e! {
    fn app_whitelists_follow_grant_revoke_and_revocation_and_a_killed_run_completes(w) {
        let acct = account(&w);
        bootstrap(&w, &acct, "alice", "laptop", true);
        let work = w.sibling("alice-work");
        enroll(&w, &work, "work", &["--group", "dev"]);
        let old = w.sibling("alice-old");
        enroll(&w, &old, "old", &["--group", "dev"]);

        // Killed while creating the role, then run again: it completes.
        w.proxy.control.inject(Some("CreateRole"), Fault::Hang(Duration::from_secs(30)), 1);
        let roles_before = w.proxy.control.count("CreateRole");
        let running = w
            .keyward_admin(&["app", "add", "billing", "--bucket", BUCKET, "--create-bucket", "--runtime", "ec2", "--machine", "alice-laptop", "--admin", "--yes"])
            .spawn();
        for _ in 0..600 {
            if w.proxy.control.count("CreateRole") > roles_before {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        running.kill();
        let report = add_billing(&w, &["--create-bucket"]);
        assert_eq!(report["complete"], true, "{report:#}");
        assert_eq!(status_of(&report, "app_key"), "already_done", "the key made before the kill is kept: {report:#}");
        let key = w.admin(&["key", "alias/app-billing"])["arn"].as_str().unwrap().to_owned();
        w.admin(&["add-foreign-statement", BUCKET]);
        let foreign = |w: &World| bucket_policy(w)["Statement"].as_array().unwrap().iter().filter(|s| s["Sid"] == "AddedMeanwhile").count();

        // grant and revoke, from the admin computer (its admin role, with MFA).
        w.keyward(&["app", "grant", "billing", "work", "--yes"]).ok();
        w.keyward(&["app", "grant", "billing", "old", "--yes"]).ok();
        let bp = bucket_policy(&w);
        assert!(whitelisted(&bp, &user("alice-work")) && names(&key_policy(&w, &key), &user("alice-work")), "{bp:#}");
        assert_eq!(w.admin(&["group-members", "app-billing"]), json!(["alice-laptop", "alice-work", "alice-old"]));
        let text = w.keyward(&["app", "grant", "billing", "work", "--yes"]).ok().stdout;
        assert!(text.contains("nothing changed"), "{text}");
        w.keyward(&["app", "revoke", "billing", "laptop", "--yes"]).ok();
        let bp = bucket_policy(&w);
        assert!(!bp.to_string().contains("alice-laptop") && !key_policy(&w, &key).to_string().contains("alice-laptop"), "{bp:#}");
        assert!(whitelisted(&bp, ROLE), "the role stays whitelisted");
        assert_eq!(foreign(&w), 1, "the foreign statement is untouched");
        let work_app = {
            work.keyward(&["profile", "add", "billing", "--app", "billing"]).ok();
            creds_of(&work, "billing")
        };
        assert_allowed(&attack(&work, &work_app, &json!([put("w", Some(&key))]))[0]);

        // A non-admin's revoke leaves the app's whitelists pending; the admin finishes.
        let report = work.keyward(&["revoke", "old", "--yes", "--json"]).ok().json();
        assert_eq!(status_of(&report, "leave_policies"), "pending", "{report:#}");
        assert!(whitelisted(&bucket_policy(&w), &user("alice-old")), "still named until an admin cleans up");
        let report = w.keyward(&["revoke", "alice-old", "--yes", "--json"]).ok().json();
        assert_eq!(status_of(&report, "leave_policies"), "done", "{report:#}");
        assert!(!bucket_policy(&w).to_string().contains("alice-old") && !key_policy(&w, &key).to_string().contains("alice-old"));

        // The admin revokes alice-work: out of the key policy, the whitelist and the group.
        w.keyward(&["revoke", "alice-work", "--yes"]).ok();
        assert!(!bucket_policy(&w).to_string().contains("alice-work") && !key_policy(&w, &key).to_string().contains("alice-work"));
        assert_eq!(w.admin(&["group-members", "app-billing"]), json!([]));
        assert_denied(&attack(&work, &work_app, &json!([put("w2", Some(&key))]))[0], "s3:PutObject");
        assert_eq!(foreign(&w), 1);

        // remove: its pieces go, the foreign statement stays, the key waits 30 days.
        w.admin(&["put-object", BUCKET, "root.txt"]);
        w.keyward_admin(&["app", "remove", "billing", "--force", "--admin", "--yes"]).ok();
        assert_eq!(w.admin(&["role", "app-billing"])["exists"], false);
        assert_eq!(w.admin(&["group-members", "app-billing"]), Value::Null);
        assert_eq!(w.admin(&["key", &key])["state"], "PendingDeletion");
        let bp = bucket_policy(&w);
        assert_eq!(bp["Statement"].as_array().unwrap().len(), 1, "{bp:#}");
        assert_eq!(foreign(&w), 1);
    }
}
