//! Real clients beyond pip's AWS CLI v1 and boto3 (the SDKs for JavaScript v3, Go v2
//! and Rust, and Debian's AWS CLI v2), each getting credentials through the same
//! `credential_process` lines a user's config holds.
//! Each must see the machine user on the base profile and the assumed role on the role
//! profile; how often each runs the helper per call is printed.

use std::path::PathBuf;

use keyward_tests::e2e;
use keyward_tests::world::{bin_dir, skip, World};
use serde_json::Value;

/// The built clients: the Rust one from the workspace, JS and Go from
/// `tests/clients/build.sh` (tests/run.sh exports KEYWARD_CLIENTS_DIR).
fn clients(w: &World) -> Option<Vec<(&'static str, PathBuf)>> {
    let mut all = vec![("rust", bin_dir().join("keyward-rust-whoami"))];
    let Some(dir) = std::env::var_os("KEYWARD_CLIENTS_DIR").map(PathBuf::from) else {
        skip(
            &w.test,
            "KEYWARD_CLIENTS_DIR is unset: run tests/clients/build.sh DIR (tests/run.sh does)",
        );
        return None;
    };
    all.push(("js-v3", dir.join("keyward-js-whoami")));
    all.push(("go-v2", dir.join("keyward-go-whoami")));
    all.push(("aws-cli-v2", dir.join("keyward-awscli2-whoami")));
    for (name, path) in &all {
        if !path.is_file() {
            skip(
                &w.test,
                &format!("the {name} client {} is not built", path.display()),
            );
            return None;
        }
    }
    Some(all)
}

/// Requests the daemon logged for `profile` so far.
fn requests(w: &World, profile: &str) -> usize {
    let field = format!("profile={profile}");
    w.daemon_log()
        .lines()
        .filter(|l| l.contains("credentials requested") && l.split_whitespace().any(|t| t == field))
        .count()
}

e2e! {
    fn js_go_and_rust_sdks_get_user_and_role_arns_through_the_helper(w) {
        let Some(clients) = clients(&w) else { return };
        let m = w.machine("alice-laptop", Some("deploy"));
        let role_arn = m.role_arn.clone().expect("role");
        w.keyward(&["profile", "add", "deploy", "--role-arn", &role_arn, "--source", "alice-laptop"]).ok();
        // Warm: the MFA session and the role session exist, so each count is the SDK's own.
        for p in ["alice-laptop", "deploy"] {
            assert!(w.helper(p).status.success(), "warm-up {p}");
        }
        let mut table = Vec::new();
        for (sdk, bin) in &clients {
            for profile in ["alice-laptop", "deploy"] {
                let before = requests(&w, profile);
                let out = w.cmd(bin).env("AWS_PROFILE", profile).ok();
                let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|_| panic!("{sdk}: {}", out.stdout));
                let arn = v["arn"].as_str().unwrap();
                if profile == "deploy" {
                    assert!(arn.contains(":assumed-role/deploy/keyward-alice-laptop"), "{sdk} on the role profile: {arn}");
                } else {
                    assert_eq!(arn, m.user_arn, "{sdk} on the base profile");
                }
                let calls = requests(&w, profile) - before;
                assert!(calls >= 1, "{sdk} got its credentials from the helper");
                table.push(format!("{sdk} {profile}: {calls} helper run(s) for one GetCallerIdentity"));
            }
        }
        eprintln!("helper invocations per call:\n  {}", table.join("\n  "));
        // Every session came from the one MFA session and one AssumeRole of the warm-up.
        assert_eq!(w.proxy.control.count("GetSessionToken"), 1);
        assert_eq!(w.proxy.control.count("AssumeRole"), 1);
    }
}
