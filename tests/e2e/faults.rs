//! The daemon and the keychain failing under a client: stopped (SIGSTOP), killed in the
//! middle of a login (SIGKILL), the keyring gone. Each answers within seconds, with
//! the cause, and the next call recovers.

use std::time::Duration;

use keyward_tests::e2e;
use keyward_tests::proxy::Fault;

fn signal(pid: i32, sig: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), sig).unwrap();
}

e2e! {
    fn a_stopped_daemon_is_called_hung_and_serves_again_when_continued(w) {
        let m = w.machine("alice-laptop", None);
        assert!(w.helper(&m.profile).status.success());
        let pid = w.daemon_pid().unwrap();
        signal(pid, rustix::process::Signal::STOP);
        let out = w.helper(&m.profile);
        signal(pid, rustix::process::Signal::CONT);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            e.contains("did not answer within") && e.contains("keyward daemon restart"),
            "{e}"
        );
        assert!(
            w.helper(&m.profile).status.success(),
            "continued, it serves"
        );
    }
}

e2e! {
    fn a_daemon_killed_during_a_login_is_replaced_and_the_sent_code_is_not_resent(w) {
        let m = w.machine("alice-laptop", None);
        w.proxy.control.inject(
            Some("GetSessionToken"),
            Fault::Stall(Duration::from_secs(4)),
            1,
        );
        let mut c = w.command(w.bin("keyward-credential-process"));
        c.args(["--profile", &m.profile])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let helper = c.spawn().unwrap();
        // Wait until the code is on its way to STS, then kill the daemon.
        for _ in 0..100 {
            if w.proxy.control.count("GetSessionToken") > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal(w.daemon_pid().unwrap(), rustix::process::Signal::KILL);
        let out = helper.wait_with_output().unwrap();
        assert!(!out.status.success());
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("keywardd"), "{e}");
        // The next call starts a new daemon, which waits for a fresh code.
        let out = w.helper(&m.profile);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(w.proxy.control.reused_code_attempts(), 0);
    }
}

e2e! {
    fn a_keyring_that_died_is_named_at_once(mut w) {
        let m = w.machine("alice-laptop", None);
        w.kill_keyring();
        let out = w.helper(&m.profile);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(e.contains("keychain"), "{e}");
        assert!(!e.contains("did not answer"), "not a hang: {e}");
    }
}
