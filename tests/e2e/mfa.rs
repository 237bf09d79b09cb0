//! MFA as real clients meet it: a daemon restarted inside one TOTP step, an
//! mfa_process that prints a refused code, a computer whose clock is off, and a daemon
//! started from a shell with other settings. Each failed before the fix.

use std::process::Output;

use keyward_tests::e2e;
use keyward_tests::world::World;

const REGION: &str = "us-east-1";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A base profile whose mfa_process is `argv`.
fn with_mfa_process(w: &World, profile: &str, serial: &str, argv: &str) {
    w.keyward(&[
        "profile",
        "add",
        profile,
        "--mfa-serial",
        serial,
        "--region",
        REGION,
        "--mfa-process",
        argv,
    ])
    .ok();
}

e2e! {
    fn a_daemon_restarted_inside_one_step_does_not_resend_the_code_aws_took(w) needs("aws") {
        let m = w.machine("alice-laptop", None);
        // An authenticator shows the same code for the whole step.
        let phone = format!("{} --current", w.totp_command("alice-laptop"));
        with_mfa_process(&w, "alice-laptop", &m.mfa_serial, &phone);
        for round in 0..2 {
            w.stop_daemon();
            let out = w.aws("alice-laptop", &["sts", "get-caller-identity"]);
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }
        assert_eq!(
            w.proxy.control.reused_code_attempts(),
            0,
            "no used code was sent again"
        );
        assert_eq!(
            w.proxy.control.count("GetSessionToken"),
            2,
            "one session per daemon"
        );
    }
}

e2e! {
    fn an_mfa_process_that_prints_a_refused_code_fails_at_once(w) {
        let m = w.machine("alice-laptop", None);
        with_mfa_process(&w, "alice-laptop", &m.mfa_serial, "echo 000000");
        for _ in 0..2 {
            let out = w.helper("alice-laptop");
            let e = stderr(&out);
            assert!(!out.status.success());
            assert!(
                e.contains("mfa_process `echo`") && e.contains("refused"),
                "{e}"
            );
            assert!(!e.contains("wait for the next"), "wrong advice: {e}");
        }
        assert_eq!(
            w.proxy.control.count("GetSessionToken"),
            1,
            "the same refused code is not sent twice"
        );
    }
}

e2e! {
    fn a_clock_two_hours_off_is_named_when_a_code_is_refused(w) {
        let m = w.machine("alice-laptop", None);
        // AWS (and every phone) is two hours ahead of this computer, whose authenticator
        // computes codes by its own clock.
        w.proxy.control.skew_aws_clock(7200);
        let local = format!("{} --host-clock", w.totp_command("alice-laptop"));
        with_mfa_process(&w, "alice-laptop", &m.mfa_serial, &local);
        let out = w.helper("alice-laptop");
        let e = stderr(&out);
        assert!(!out.status.success());
        assert!(
            e.contains("s behind AWS's") && e.contains("timedatectl"),
            "{e}"
        );
        assert!(!e.contains(" . ;"), "AWS's trailing period is trimmed: {e}");
    }
}

e2e! {
    fn a_daemon_started_from_another_shell_says_how_it_differs(w) {
        let m = w.machine("alice-laptop", None);
        w.keyward(&["daemon", "start"])
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .ok();
        let out = w.helper(&m.profile);
        let e = stderr(&out);
        assert!(!out.status.success());
        assert!(
            e.contains("keywardd runs with AWS_ENDPOINT_URL=http://127.0.0.1:9")
                && e.contains("keyward daemon restart"),
            "{e}"
        );
        w.keyward(&["daemon", "restart"]).ok();
        let out = w.helper(&m.profile);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}
