//! `keyward init` on an account made by the earlier version: it shows the plan, then
//! upgrades in place (and closes the escalation the earlier self-service policy left),
//! idempotently.

use keyward_tests::e2e;
use keyward_tests::world::World;
use serde_json::{json, Value};

use crate::common::{assert_allowed, assert_denied, attack, call, statement_named, status_of};

/// A GetSessionToken-with-MFA session of a hand-made machine, by its key and phone.
fn mfa_session(w: &World, made: &Value, user: &str) -> Value {
    let key =
        json!({"AccessKeyId": made["access_key_id"], "SecretAccessKey": made["secret_access_key"]});
    w.canary(made["secret_access_key"].as_str().unwrap());
    let code = w.next_code(user);
    let r = attack(
        w,
        &key,
        &json!([call(
            "session",
            "sts",
            "get_session_token",
            &json!({"SerialNumber": made["mfa_serial"], "TokenCode": code})
        )]),
    );
    assert_allowed(&r[0]);
    r[0]["result"]["Credentials"].clone()
}

fn self_policy() -> Value {
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}).to_string();
    json!([call(
        "a policy on itself",
        "iam",
        "put_user_policy",
        &json!({"UserName": "alice-old", "PolicyName": "mine", "PolicyDocument": doc})
    )])
}

e2e! {
    fn init_upgrades_an_account_of_the_earlier_version_and_closes_its_holes(w) {
        let world = w.admin(&["make-world", "data-bucket", "dev"]);
        let old = w.admin(&["make-old-account", "data-bucket"]);
        // The earlier policy let a machine write a policy on itself (the review's finding).
        let before = mfa_session(&w, &old["alice-old"], "alice-old");
        assert_allowed(&attack(&w, &before, &self_policy())[0]);
        w.admin(&["delete-user-policy", "alice-old", "mine"]);

        let writes = || ["CreatePolicy", "CreateRole", "PutRolePolicy", "CreatePolicyVersion", "AttachUserPolicy", "PutBucketPolicy"].map(|a| w.proxy.control.count(a));
        let counted = writes();
        let plan = w.keyward_admin(&["init", "--dry-run", "--json"]).ok().json();
        assert_eq!(writes(), counted, "a dry run writes nothing");
        for id in ["upgrade_machine", "upgrade_revoked", "remove_old_policy", "upgrade_resource_policy"] {
            assert_eq!(status_of(&plan, id), "would_do", "{id}: {plan}");
        }
        let done = w.keyward_admin(&["init", "--yes", "--json"]).ok().json();
        assert_eq!(done["complete"], true, "{done}");

        let u = w.admin(&["user", "alice-old"]);
        assert_eq!(u["attached"], json!(["arn:aws:iam::123456789012:policy/keyward/keyward-machine"]));
        assert!(u["tags"].get("keyward-enrolled").is_some());
        let gone = w.admin(&["user", "alice-gone"]);
        assert!(gone["attached"].to_string().contains("keyward-deny-all"), "{gone}");
        assert_eq!(gone["inline"], json!({}), "the old dated deny is replaced");
        assert_eq!(w.admin(&["role", "keyward-enroller"])["trust"]["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::123456789012:role/keyward/keyward-admin");
        let p = w.admin(&["policies", "data-bucket", world["key_arn"].as_str().unwrap()]);
        let machines = statement_named(&p["bucket"], "KeywardMachines");
        assert_eq!(machines["Condition"]["Bool"]["aws:MultiFactorAuthPresent"], "true");
        assert!(!p["bucket"].to_string().contains("NotPrincipal"), "{p}");

        // The hole is closed for the session it had, and the machine still works.
        assert_denied(&attack(&w, &before, &self_policy())[0], "iam:PutUserPolicy");
        let after = mfa_session(&w, &old["alice-old"], "alice-old");
        assert_allowed(&attack(&w, &after, &json!([call("its own keys", "iam", "list_access_keys", &json!({}))]))[0]);
        assert_eq!(w.admin(&["managed-policy-exists", "arn:aws:iam::123456789012:policy/keyward/keyward-self-service"]), json!(false));

        let again = w.keyward_admin(&["init", "--yes", "--json"]).ok().json();
        assert!(again["steps"].as_array().unwrap().iter().all(|s| s["status"] == "already_done"), "{again}");
    }
}
