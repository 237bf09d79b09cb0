//! Just-in-time group access under the enforcing emulator: a grant's rights hold
//! until its expiry and not a second longer, with the computer's daemon stopped (a
//! session taken before the expiry included); a non-admin computer cannot grant
//! itself anything.

use std::time::Duration;

use keyward_tests::e2e;
use serde_json::json;

use crate::common::{
    account, assert_allowed, assert_denied, attack, bootstrap, call, creds_of, enroll,
};

e2e! {
    fn a_grant_holds_until_its_expiry_even_with_the_computer_off(w) {
        let acct = account(&w);
        w.admin(&["group-reads-bucket", "ops", &acct.bucket]);
        bootstrap(&w, &acct, "alice", "laptop", true);
        let work = w.sibling("alice-work");
        enroll(&w, &work, "work", &["--group", "dev"]);
        let list = |c: &serde_json::Value| attack(&work, c, &json!([call("list", "s3", "list_objects_v2", &json!({"Bucket": acct.bucket}))])).remove(0);

        w.keyward_admin(&["access", "enable", "ops", "--admin", "--yes"]).ok();
        let again = w.keyward_admin(&["access", "enable", "ops", "--admin", "--yes", "--json"]).ok().json();
        assert!(again["steps"].as_array().unwrap().iter().all(|s| s["status"] == "already_done"), "{again:#}");

        // A non-admin computer cannot grant itself anything, by keyward or by hand.
        let e = work.keyward(&["access", "grant", "ops", "--for", "1h", "--yes"]).fails().stderr;
        assert!(e.contains("only an admin computer"), "{e}");
        let base = creds_of(&work, "alice-work");
        let guard = "arn:aws:iam::123456789012:policy/keyward/keyward-role-guard";
        let r = attack(&work, &base, &json!([
            call("trust", "iam", "update_assume_role_policy", &json!({"RoleName": "jit-ops", "PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"})),
            call("guard", "iam", "create_policy_version", &json!({"PolicyArn": guard, "PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[]}", "SetAsDefault": true})),
            call("join", "iam", "add_user_to_group", &json!({"GroupName": "ops", "UserName": "alice-work"})),
            call("own policy", "iam", "put_user_policy", &json!({"UserName": "alice-work", "PolicyName": "x", "PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"})),
            call("role", "sts", "assume_role", &json!({"RoleArn": "arn:aws:iam::123456789012:role/keyward/jit-ops", "RoleSessionName": "alice-work", "SourceIdentity": "alice-work"})),
        ]));
        for (i, action) in ["iam:UpdateAssumeRolePolicy", "iam:CreatePolicyVersion", "iam:AddUserToGroup", "iam:PutUserPolicy", "sts:AssumeRole"].iter().enumerate() {
            assert_denied(&r[i], action);
        }
        assert_denied(&list(&base), "s3:ListBucket");

        // The admin computer grants ops to alice-work for 2 minutes.
        let out = w.keyward(&["access", "grant", "ops", "--for", "2m", "--machine", "work", "--yes"]).ok();
        assert!(out.stdout.contains("until"), "{}", out.stdout);
        let listed = w.keyward(&["access", "--json"]).ok().json();
        assert_eq!(listed[0]["machine"], "alice-work", "{listed}");
        work.keyward(&["profile", "add", "ops", "--role-arn", "arn:aws:iam::123456789012:role/keyward/jit-ops", "--source", "alice-work"]).ok();
        let ops = creds_of(&work, "ops");
        assert_allowed(&list(&ops));
        // Whatever the group grants (here iam:*), a JIT session cannot lift its own
        // expiry, extend its trust, mint lasting credentials, or chain into a role.
        let r = attack(&work, &ops, &json!([
            call("guard", "iam", "create_policy_version", &json!({"PolicyArn": guard, "PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[]}", "SetAsDefault": true})),
            call("trust", "iam", "update_assume_role_policy", &json!({"RoleName": "jit-ops", "PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"})),
            call("backdoor", "iam", "create_user", &json!({"UserName": "backdoor"})),
            call("chain", "sts", "assume_role", &json!({"RoleArn": "arn:aws:iam::123456789012:role/keyward/jit-ops", "RoleSessionName": "alice-work", "SourceIdentity": "alice-work"})),
        ]));
        for (i, action) in ["iam:CreatePolicyVersion", "iam:UpdateAssumeRolePolicy", "iam:CreateUser", "sts:AssumeRole"].iter().enumerate() {
            assert_denied(&r[i], action);
        }

        // The computer goes off; the clock passes the expiry.
        work.stop_daemon();
        w.proxy.control.advance_clock(Duration::from_secs(3 * 60));
        assert_denied(&list(&ops), "s3:ListBucket");
        let r = attack(&work, &base, &json!([call("role", "sts", "assume_role", &json!({"RoleArn": "arn:aws:iam::123456789012:role/keyward/jit-ops", "RoleSessionName": "alice-work", "SourceIdentity": "alice-work"}))]));
        assert_denied(&r[0], "sts:AssumeRole");

        // An early end: granted again, then revoked; the session dies at once.
        w.keyward(&["access", "grant", "ops", "--for", "1h", "--machine", "work", "--yes"]).ok();
        let r = attack(&work, &base, &json!([call("role", "sts", "assume_role", &json!({"RoleArn": "arn:aws:iam::123456789012:role/keyward/jit-ops", "RoleSessionName": "alice-work", "SourceIdentity": "alice-work"}))]));
        assert_allowed(&r[0]);
        let fresh = json!({"AccessKeyId": r[0]["result"]["Credentials"]["AccessKeyId"], "SecretAccessKey": r[0]["result"]["Credentials"]["SecretAccessKey"], "SessionToken": r[0]["result"]["Credentials"]["SessionToken"]});
        assert_allowed(&list(&fresh));
        w.keyward(&["access", "revoke", "ops", "--machine", "work", "--yes"]).ok();
        std::thread::sleep(Duration::from_secs(1));
        assert_denied(&list(&fresh), "s3:ListBucket");

        // Long-expired grants are cleaned up by `keyward audit --fix`.
        w.admin(&["plant-expired-jit", "ops", "alice-work"]);
        let r = w.keyward_admin(&["audit", "--admin", "--fix", "--yes", "--json", "--fail-on", "never", "--no-local"]).ok().json();
        assert!(r.to_string().contains("jit-ops: remove expired just-in-time grants"), "{r:#}");
        let trust = w.admin(&["role", "jit-ops"])["trust"].to_string();
        assert!(!trust.contains("2020-01-01"), "{trust}");
    }
}
