//! A whole-account escalation analysis by principalmapper (its graph, admin detection
//! and findings; not keyward's code) over the account after setup of two owners and
//! three machines: no machine and no enrollment credential is an admin or reaches
//! another principal, and the admin role is reachable only from the designated admin
//! computer, with MFA. A planted escalation shows that the analysis can fail.

use std::path::Path;

use keyward_tests::e2e;
use keyward_tests::world::World;
use serde_json::Value;

use crate::common::{account, bootstrap, enroll_bare};

fn analyse(w: &World) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/escalation.py");
    let mut c = w.cmd("python3");
    c.arg(script).arg(w.moto_url());
    c.ok().json()
}

fn is_keyward(arn: &str) -> bool {
    arn.contains(":user/keyward/") || arn.contains(":role/keyward/")
}

/// principalmapper is a test part like moto: missing, the test skips loudly.
fn has_principalmapper(w: &World) -> bool {
    let mut c = w.cmd("python3");
    c.args(["-c", "import principalmapper"]);
    if c.output().status.success() {
        return true;
    }
    keyward_tests::world::skip(
        &w.test,
        "principalmapper is not installed in the Python on PATH",
    );
    false
}

e2e! {
    fn principalmapper_finds_no_escalation_and_no_reach_from_machines(desk) {
        if !has_principalmapper(&desk) {
            return;
        }
        let acct = account(&desk);
        bootstrap(&desk, &acct, "alice", "desk", true);
        for (owner, m) in [("alice", "laptop"), ("bob", "laptop")] {
            enroll_bare(&desk, owner, m);
            desk.keyward(&["grant", m, "--owner", owner, "--group", "dev", "--bucket", &acct.bucket, "--yes"]).ok();
        }
        let g = analyse(&desk);
        let principals: Vec<&str> = g["principals"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        for p in ["user/keyward/alice-desk", "user/keyward/alice-laptop", "user/keyward/bob-laptop", "role/keyward/keyward-admin", "role/keyward/keyward-enroller"] {
            assert!(principals.iter().any(|a| a.ends_with(p)), "the graph has {p}: {principals:?}");
        }
        let admins: Vec<&str> = g["admins"].as_array().unwrap().iter().filter_map(Value::as_str).filter(|a| is_keyward(a) && !a.ends_with("role/keyward/keyward-admin")).collect();
        assert!(admins.is_empty(), "no machine and no enrollment credential is an admin: {admins:?}");
        let privesc: Vec<&String> = g["privesc"].as_object().unwrap().keys().filter(|a| is_keyward(a)).collect();
        assert!(privesc.is_empty(), "no keyward principal can escalate: {}", g["privesc"]);
        for e in g["edges"].as_array().unwrap() {
            let (from, to) = (e["from"].as_str().unwrap(), e["to"].as_str().unwrap());
            if from.contains(":user/keyward/") {
                assert!(from.ends_with("user/keyward/alice-desk") && to.ends_with("role/keyward/keyward-admin"), "a machine reaches another principal: {e}");
                assert_eq!(e["mfa_required"], true, "only with MFA: {e}");
            }
            assert!(!from.ends_with("role/keyward/keyward-enroller"), "an enrollment credential reaches another principal: {e}");
            if to.ends_with("role/keyward/keyward-admin") {
                assert!(from.ends_with("user/keyward/alice-desk"), "the admin role is reachable only from the admin computer: {e}");
            }
        }
        let into_admin = g["edges"].as_array().unwrap().iter().filter(|e| e["to"].as_str().unwrap().ends_with("role/keyward/keyward-admin")).count();
        assert_eq!(into_admin, 1, "the designated admin computer does reach it: {}", g["edges"]);
        eprintln!("principalmapper: admins {}, findings {}", g["admins"], g["findings"]);

        // The negative control: an escalation planted by hand is found.
        desk.admin(&["plant-escalation", "mallory-box"]);
        let g = analyse(&desk);
        let flagged = g["admins"].as_array().unwrap().iter().chain(g["privesc"].as_object().unwrap().keys().map(|_| &Value::Null)).any(|a| a.as_str().is_some_and(|a| a.ends_with("user/keyward/mallory-box")))
            || g["privesc"].as_object().unwrap().keys().any(|a| a.ends_with("user/keyward/mallory-box"));
        assert!(flagged, "the planted self-editing user is found: {g}");
    }
}
