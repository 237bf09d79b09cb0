//! The broker core, driven the way AWS tools drive it.

use std::process::Output;

use keyward_tests::e2e;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn process_json(o: &Output) -> serde_json::Value {
    assert_ok(o, "credential_process");
    serde_json::from_slice(&o.stdout).expect("stdout is exactly the credential_process JSON")
}

e2e! {
    fn aws_cli_and_boto3_get_user_and_role_arns(w) needs("aws") {
        let m = w.machine("alice-laptop", Some("deploy"));
        let role_arn = m.role_arn.clone().expect("role");
        w.keyward(&[
            "profile",
            "add",
            "deploy",
            "--role-arn",
            &role_arn,
            "--source",
            "alice-laptop",
        ])
        .ok();

        // The AWS CLI, through the credential_process lines keyward wrote.
        let out = w.aws("alice-laptop", &["sts", "get-caller-identity"]);
        assert_ok(&out, "aws sts get-caller-identity (base)");
        let id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            id["Arn"], m.user_arn,
            "the base profile acts as the machine user"
        );

        let out = w.aws("deploy", &["sts", "get-caller-identity"]);
        assert_ok(&out, "aws sts get-caller-identity (role)");
        let id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let arn = id["Arn"].as_str().unwrap();
        assert!(
            arn.contains(":assumed-role/deploy/keyward-alice-laptop"),
            "{arn}"
        );

        // boto3, same config file.
        let v = w.admin_as_user(&["caller", "alice-laptop"]);
        assert_eq!(v, m.user_arn);
        let v = w.admin_as_user(&["caller", "deploy"]);
        assert!(v.as_str().unwrap().contains(":assumed-role/deploy/"), "{v}");

        // One MFA session served all of it.
        assert_eq!(w.proxy.control.count("GetSessionToken"), 1);
        assert_eq!(w.proxy.control.count("AssumeRole"), 1);

        // The config line is what a user would have.
        let cfg = std::fs::read_to_string(w.home.join(".aws/config")).unwrap();
        assert!(
            cfg.contains("[profile deploy]\ncredential_process = "),
            "{cfg}"
        );
        assert!(
            cfg.contains("keyward-credential-process --profile deploy"),
            "{cfg}"
        );
        // The plaintext key was scrubbed after the verified import.
        let creds = std::fs::read_to_string(w.home.join(".aws/credentials")).unwrap();
        assert!(!creds.contains(&m.access_key_id), "{creds}");
    }
}

/// The proxy's session key for a helper's output.
fn key_id(o: &Output) -> String {
    process_json(o)["AccessKeyId"].as_str().unwrap().to_owned()
}

e2e! {
    fn two_hundred_cold_helpers_make_one_sts_call(w) {
        let m = w.machine("burst", None);
        // Cold: no daemon yet, no session. All 200 race to start it and to get a session.
        let outs: Vec<Output> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..200).map(|_| s.spawn(|| w.helper(&m.profile))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ids: std::collections::HashSet<String> = outs.iter().map(key_id).collect();
        assert_eq!(ids.len(), 1, "all 200 print the same AccessKeyId: {ids:?}");
        assert!(ids.iter().next().unwrap().starts_with("ASIA"));
        assert_eq!(
            w.proxy.control.count("GetSessionToken"),
            1,
            "exactly one GetSessionToken"
        );
        assert_eq!(
            w.proxy.control.codes_seen().len(),
            1,
            "exactly one MFA code sent"
        );
    }
}

e2e! {
    fn wrong_code_is_not_cached_and_a_reused_code_is_never_sent(w) {
        let m = w.machine("codes", None);
        let serial = m.mfa_serial.clone();
        // A wrong code: clear error, nothing cached.
        w.keyward(&[
            "profile",
            "add",
            "codes",
            "--mfa-serial",
            &serial,
            "--mfa-process",
            "printf 000000",
        ])
        .ok();
        let out = w.helper("codes");
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "nothing on stdout on error");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid MFA one time pass code"), "{err}");
        assert!(
            err.contains("keyward login --profile codes"),
            "names the next command: {err}"
        );
        let st = w.client().status().unwrap();
        assert!(
            st.sessions.is_empty(),
            "nothing cached after a wrong code: {st:?}"
        );

        // The next right code works.
        w.keyward(&[
            "profile",
            "add",
            "codes",
            "--mfa-serial",
            &serial,
            "--mfa-process",
            &w.totp_command("codes"),
        ])
        .ok();
        let first = key_id(&w.helper("codes"));
        let calls = w.proxy.control.count("GetSessionToken");
        let used = w.proxy.control.codes_seen().last().cloned().unwrap();

        // After a lock, the same code again: refused by the daemon, never sent.
        w.keyward(&["lock"]).ok();
        let resp = w
            .client()
            .post(
                "/v1/mfa",
                &keyward_proto::MfaSubmit {
                    profile: "codes".into(),
                    code: used.clone(),
                },
            )
            .unwrap();
        let e = resp.error();
        assert_eq!(e.kind, keyward_proto::ErrorKind::MfaReused, "{}", e.message);
        assert!(e.retry_after_secs.is_some_and(|s| s <= 30));
        assert_eq!(
            w.proxy.control.count("GetSessionToken"),
            calls,
            "the reused code was not sent"
        );
        assert_eq!(
            w.proxy.control.reused_code_attempts(),
            0,
            "AWS never saw a reused code"
        );

        // A fresh code gives a fresh session.
        let second = key_id(&w.helper("codes"));
        assert_ne!(first, second);
    }
}

e2e! {
    fn throttling_twice_then_success_lets_login_succeed(w) {
        let m = w.machine("throttled", None);
        w.proxy.control.inject(
            Some("GetSessionToken"),
            keyward_tests::proxy::Fault::Throttle,
            2,
        );
        let out = w
            .keyward(&["login", "--profile", &m.profile, "--json"])
            .ok()
            .stdout;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["profile"], m.profile.as_str());
        assert!(v["expiration"].as_str().unwrap().ends_with('Z'), "{out}");
        assert!(
            !out.contains("ASIA"),
            "no credentials in login's output: {out}"
        );
        assert_eq!(
            w.proxy.control.count("GetSessionToken"),
            3,
            "two throttled, one through"
        );
    }
}

e2e! {
    fn a_5xx_during_refresh_keeps_serving_valid_credentials(w) {
        let m = w.machine("refresher", Some("short"));
        // 20 minutes: inside the refresh-ahead window from the start, above the 15-minute floor.
        w.keyward(&[
            "profile",
            "add",
            "short",
            "--role-arn",
            m.role_arn.as_deref().unwrap(),
            "--source",
            "refresher",
            "--duration",
            "20m",
        ])
        .ok();
        let first = key_id(&w.helper("short"));
        assert_eq!(w.proxy.control.count("AssumeRole"), 1);

        w.proxy.control.inject(
            Some("AssumeRole"),
            keyward_tests::proxy::Fault::ServerError,
            100,
        );
        let again = key_id(&w.helper("short"));
        assert_eq!(again, first, "the still-valid credentials are served");
        let after_failure = w.proxy.control.count("AssumeRole");
        assert!(after_failure > 1, "a refresh was attempted");
        // No retry loop: the next requests within the back-off make no call.
        for _ in 0..5 {
            assert_eq!(key_id(&w.helper("short")), first);
        }
        assert_eq!(w.proxy.control.count("AssumeRole"), after_failure);
        assert!(w
            .daemon_log()
            .contains("role refresh failed; serving the current credentials"));
    }
}

e2e! {
    fn without_a_terminal_or_mfa_process_the_helper_fails_fast(w) {
        let m = w.machine("notty", None);
        w.keyward(&["profile", "add", "notty", "--mfa-serial", &m.mfa_serial])
            .ok();
        w.keyward(&["daemon", "start"]).ok();
        // setsid: no controlling terminal, exactly like an SDK running us from a service.
        let mut c = w.command("setsid");
        c.arg(w.bin("keyward-credential-process"))
            .args(["--profile", "notty"]);
        let started = std::time::Instant::now();
        let out = w.output(c);
        let took = started.elapsed();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("run `keyward login --profile notty`"), "{err}");
        assert!(
            took < std::time::Duration::from_secs(1),
            "failed within 1 s, took {took:?}"
        );
        assert_eq!(w.proxy.control.count("GetSessionToken"), 0);
    }
}

e2e! {
    fn a_long_role_is_assumed_directly_with_mfa(w) {
        let m = w.machine("longrole", Some("ops"));
        w.keyward(&[
            "profile",
            "add",
            "ops",
            "--role-arn",
            m.role_arn.as_deref().unwrap(),
            "--source",
            "longrole",
            "--duration",
            "4h",
        ])
        .ok();
        let v = process_json(&w.helper("ops"));
        assert_eq!(
            w.proxy.control.count("GetSessionToken"),
            0,
            "no chaining through a base session"
        );
        assert_eq!(w.proxy.control.count("AssumeRole"), 1);
        assert_eq!(
            w.proxy.control.codes_seen().len(),
            1,
            "AssumeRole carried the MFA code"
        );
        let exp = v["Expiration"].as_str().unwrap();
        assert!(exp.ends_with('Z') && exp.len() == 20, "RFC 3339: {exp}");
        let st = w.client().status().unwrap();
        assert_eq!(st.sessions[0].kind, "role-mfa");
        assert!(st.sessions[0].expires_in_secs > 3 * 3600);
    }
}

e2e! {
    fn status_and_lock_show_and_forget_sessions_without_secrets(w) {
        let m = w.machine("stat", None);
        let id = key_id(&w.helper(&m.profile));
        let json = w.keyward(&["status", "--json"]).ok().stdout;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["running"], true);
        assert_eq!(v["daemon"]["protocol"], keyward_proto::PROTOCOL_VERSION);
        assert_eq!(v["daemon"]["sessions"][0]["profile"], "stat");
        assert_eq!(
            v["daemon"]["sessions"][0]["access_key_id_suffix"],
            id[id.len() - 4..]
        );
        assert!(
            !json.contains(&id),
            "status shows only the last 4 characters"
        );
        let text = w.keyward(&["status"]).ok().stdout;
        assert!(text.contains("stat") && text.contains("base"), "{text}");
        let out = w.keyward(&["lock", "--json"]).ok().stdout;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap()["forgotten"],
            1,
            "{out}"
        );
        assert!(w.client().status().unwrap().sessions.is_empty());
    }
}

e2e! {
    fn canary_scan_catches_a_planted_secret(w) {
        // The leak check itself must be able to fail, called or when the world goes.
        w.canary("PLANTED-SECRET-9f8e7d");
        std::fs::write(w.home.join("leak.txt"), "x PLANTED-SECRET-9f8e7d y").unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.assert_no_leaks()));
        assert!(caught.is_err(), "a planted secret must be found");
        let on_drop = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(w)));
        assert!(on_drop.is_err(), "a planted secret must be found on drop");
    }
}

e2e! {
    fn a_revoked_key_is_reported_and_not_retried(w) {
        let m = w.machine("gone", None);
        key_id(&w.helper("gone"));
        w.proxy.control.reject_key(&m.access_key_id);
        w.keyward(&["lock"]).ok();
        let out = w.helper("gone");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("revoked or deleted") && err.contains("keyward setup"),
            "{err}"
        );
        let calls = w.proxy.control.count("GetSessionToken");
        for _ in 0..3 {
            let out = w.helper("gone");
            assert!(String::from_utf8_lossy(&out.stderr).contains("revoked or deleted"));
        }
        assert_eq!(
            w.proxy.control.count("GetSessionToken"),
            calls,
            "no retry loop, no new MFA prompt"
        );
        let st = w.client().status().unwrap();
        assert_eq!(st.revoked, vec!["gone".to_owned()]);
        assert!(st.sessions.is_empty());
        let text = w.keyward(&["status"]).ok().stdout;
        assert!(text.contains("revoked or deleted"), "{text}");
    }
}
