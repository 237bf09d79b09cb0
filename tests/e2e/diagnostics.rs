//! Honest diagnostics: doctor gives the same answer every run and never calls a dead
//! socket healthy, a dropped connection names the daemon's last words, a missing or
//! revoked key is ✗, no credentials are called that, and no hint sends the user back
//! to the command that just failed.

use std::os::unix::fs::PermissionsExt;

use keyward_tests::e2e;
use keyward_tests::world::World;
use serde_json::Value;

fn doctor(w: &World, offline: bool) -> Value {
    let mut args = vec!["doctor", "--json"];
    if offline {
        args.push("--offline");
    }
    let out = w.keyward(&args).output();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("doctor --json: {}", String::from_utf8_lossy(&out.stderr)))
}

fn checks<'a>(doc: &'a Value, name: &str) -> Vec<&'a Value> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .collect()
}

fn statuses(doc: &Value) -> Vec<(String, String)> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].to_string(), c["status"].to_string()))
        .collect()
}

e2e! {
    fn doctor_never_calls_a_socket_without_a_daemon_healthy_and_says_the_same_twice(w) {
        let dir = w.run.join("keyward");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A socket left behind by a daemon that died, and a config it cannot start with.
        let sock = dir.join(keyward_proto::paths::SOCKET_NAME);
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = w.home.join(".config/keyward/config.toml");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(&cfg, "this is = not [valid").unwrap();

        let first = doctor(&w, true);
        let second = doctor(&w, true);
        assert_eq!(statuses(&first), statuses(&second), "{first}\n{second}");
        assert_eq!(checks(&first, "socket")[0]["status"], "fail", "{first}");
        let daemon = checks(&first, "daemon")[0];
        assert_eq!(daemon["status"], "fail");
        assert!(daemon["detail"].as_str().unwrap().contains("not valid keyward config"), "the daemon's own reason: {daemon}");
        assert_eq!(first["ok"], false);
    }
}

e2e! {
    fn a_dropped_connection_names_the_daemons_last_log_line(w) {
        let dir = w.run.join("keyward");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let log = dir.join(keyward_proto::paths::LOG_NAME);
        std::fs::write(&log, "INFO keywardd listening\nERROR keywardd: out of file descriptors, exiting\n").unwrap();
        // Something that accepts and hangs up, as a daemon that dies mid-request does.
        let sock = dir.join(keyward_proto::paths::SOCKET_NAME);
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
        let server = std::thread::spawn(move || {
            for _ in 0..4 {
                let Ok((mut s, _)) = listener.accept() else { return };
                let mut buf = [0u8; 256];
                let _ = std::io::Read::read(&mut s, &mut buf);
                drop(s);
            }
        });
        let out = w.helper("anything");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(e.contains("keywardd exited") && e.contains("out of file descriptors"), "{e}");
        assert!(!e.to_lowercase().contains("connection reset"), "{e}");
        drop(server);
    }
}

e2e! {
    fn doctor_fails_a_profile_without_its_key_and_a_revoked_key(w) {
        let m = w.machine("laptop", None);
        let _ = w.machine("desk", None);
        w.keyward(&["key", "remove", "--profile", "desk"]).ok();
        let doc = doctor(&w, true);
        let keys = checks(&doc, "key");
        let of = |p: &str| keys.iter().find(|c| c["detail"].as_str().unwrap().contains(&format!("`{p}`"))).copied().unwrap_or_else(|| panic!("no key line for {p}: {doc}"));
        assert_eq!(of("laptop")["status"], "ok", "{doc}");
        assert_eq!(of("desk")["status"], "fail", "{doc}");
        assert!(of("desk")["fix"].as_str().unwrap().contains("keyward setup"), "{doc}");

        // Revoked: the key still sits in the keychain, but AWS no longer knows it.
        w.admin(&["delete-access-keys", "laptop"]);
        let doc = doctor(&w, false);
        let revoked = checks(&doc, "key").into_iter().find(|c| c["detail"].as_str().unwrap().contains("no longer knows")).cloned();
        let revoked = revoked.unwrap_or_else(|| panic!("no revoked line: {doc}"));
        assert_eq!(revoked["status"], "fail");
        assert!(revoked["detail"].as_str().unwrap().contains("`laptop`"), "{revoked}");
        let _ = m;
    }
}

e2e! {
    fn without_credentials_commands_say_so_and_point_to_admin_profile(w) {
        for args in [vec!["machines"], vec!["revoke", "alice-laptop", "--yes"], vec!["init", "--yes"]] {
            let out = w.keyward(&args).env_remove("AWS_EC2_METADATA_DISABLED").env("AWS_EC2_METADATA_SERVICE_ENDPOINT", w.proxy.url()).fails();
            let e = &out.stderr;
            assert!(e.contains("no AWS credentials found") && e.contains("--admin-profile") && e.contains("AWS_PROFILE"), "{args:?}: {e}");
            assert!(!e.contains("network"), "{args:?}: {e}");
            assert!(!e.to_lowercase().contains("imds") && !e.contains("WARN"), "no SDK warnings reach the terminal: {args:?}: {e}");
        }
    }
}

e2e! {
    fn hints_never_send_the_user_back_to_the_command_that_failed(w) {
        // No profile at all: every path points to setup, the README's first step.
        for args in [vec!["login"], vec!["key", "migrate", "--to", "encrypted-file"]] {
            let e = w.keyward(&args).fails().stderr;
            assert!(e.contains("keyward setup"), "{args:?}: {e}");
        }
        // A profile that needs a typed code, and no terminal: not "run keyward login".
        let m = w.machine("typist", None);
        w.keyward(&["profile", "add", "typist", "--mfa-serial", &m.mfa_serial]).ok();
        let e = w.keyward(&["login", "--profile", "typist"]).fails().stderr;
        assert!(e.contains("no terminal") && e.contains("mfa_process"), "{e}");
        assert!(!e.contains("run `keyward login"), "{e}");
    }
}
