//! The daemon as a process: socket, single instance, limits, hostile input.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use keyward_tests::e2e;
use keyward_tests::world::World;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn assert_still_serving(w: &World) {
    let st = w.client().status().expect("daemon still serving");
    assert_eq!(st.protocol, keyward_proto::PROTOCOL_VERSION);
}

e2e! {
    fn socket_is_private_single_instance_and_reclaimed_after_kill(w) {
        w.keyward(&["daemon", "start"]).ok();
        let dir = w.run.join("keyward");
        let sock = dir.join(keyward_proto::paths::SOCKET_NAME);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&sock), 0o600);
        let pid = w.daemon_pid().expect("pid");

        let out = w.output({
            let mut c = w.command(w.bin("keywardd"));
            c.arg("--detach");
            c
        });
        assert_eq!(out.status.code(), Some(3), "a second daemon exits 3");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("already running") && err.contains(&pid.to_string()),
            "{err}"
        );
        assert_still_serving(&w);

        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(sock.exists(), "kill -9 leaves the socket behind");
        w.keyward(&["daemon", "start"]).ok();
        let new_pid = w.daemon_pid().unwrap();
        assert_ne!(new_pid, pid);
        assert!(w.daemon_log().contains("reclaimed a stale socket"));
        assert_still_serving(&w);
    }
}

e2e! {
    fn another_users_connection_is_refused(w) needs("setpriv") {
        if !rustix::process::getuid().is_root() {
            keyward_tests::world::skip(&w.test, "needs root to act as another user");
            return;
        }
        w.keyward(&["daemon", "start"]).ok();
        let dir = w.run.join("keyward");
        let sock = dir.join(keyward_proto::paths::SOCKET_NAME);
        // Open the door on purpose, so only the peer-uid check stands in the way.
        for (p, m) in [(&w.run, 0o755), (&dir, 0o755), (&sock, 0o666)] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        }
        // The root tempdir is 0700; let another uid traverse it and run a copy of keyward.
        std::fs::set_permissions(w.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&w.outside, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = w.outside.join("keyward-as-nobody");
        std::fs::copy(w.bin("keyward"), &exe).unwrap();
        // keyward itself, as another user, will not even talk to a socket that is not its own.
        let mut c = w.command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe)
            .args(["status", "--json"]);
        let out = w.output(c);
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "another uid got an answer: {got}");
        assert!(!got.contains("\"protocol\""), "{got}");
        // A raw client as another user reaches the socket; the daemon hangs up on it.
        let probe = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(b'GET /v1/status HTTP/1.1\\r\\nhost: k\\r\\n\\r\\n')\ns.settimeout(5)\nprint(repr(s.recv(4096)))";
        let mut c = w.command("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "python3",
            "-c",
            probe,
        ])
        .arg(&sock);
        let out = w.output(c);
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(
            !got.contains("protocol"),
            "another uid got an answer: {got}"
        );
        assert!(w
            .daemon_log()
            .contains("refused a connection from another user"));
        for (p, m) in [(&w.run, 0o700), (&dir, 0o700), (&sock, 0o600)] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        }
        assert_still_serving(&w);
    }
}

e2e! {
    fn sigterm_drops_sessions_and_exits_zero(w) {
        let mut c = w.command(w.bin("keywardd"));
        c.stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.client().status().is_err() {
            assert!(std::time::Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert!(
            core.split_whitespace().filter(|t| *t == "0").count() >= 2,
            "core limit 0: {core}"
        );
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(
            err.contains("SIGTERM: stopping") && err.contains("sessions dropped and zeroized"),
            "{err}"
        );
        assert!(
            !w.client().socket().exists(),
            "socket removed on a clean stop"
        );
    }
}

/// The daemon's runtime directory, made ahead of the daemon with `mode`.
fn socket_dir(w: &World, mode: u32) -> std::path::PathBuf {
    let dir = w.run.join("keyward");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// keywardd processes serving this world (by their XDG_RUNTIME_DIR).
fn daemons_of(w: &World) -> Vec<i32> {
    let want = format!("XDG_RUNTIME_DIR={}", w.run.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            exe.is_some_and(|e| e.file_name().is_some_and(|n| n == "keywardd"))
                && env.split(|b| *b == 0).any(|kv| kv == want.as_bytes())
        })
        .collect()
}

e2e! {
    fn racing_helpers_start_exactly_one_daemon_and_it_is_hardened(w) {
        let m = w.machine("race", None);
        assert!(daemons_of(&w).is_empty());
        let outs: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|_| s.spawn(|| w.helper(&m.profile))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for o in &outs {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let pids = daemons_of(&w);
        assert_eq!(pids.len(), 1, "exactly one daemon: {pids:?}");
        assert_eq!(Some(pids[0]), w.daemon_pid());
        let st = w.client().status().unwrap();
        assert_eq!(
            st.hardening,
            Some(keyward_proto::Hardening {
                dumpable: false,
                core_limit: Some(0)
            }),
            "PR_SET_DUMPABLE 0 and RLIMIT_CORE 0"
        );
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", pids[0])).unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert!(
            core.split_whitespace().filter(|t| *t == "0").count() >= 2,
            "{core}"
        );
    }
}

e2e! {
    fn a_daemon_of_another_protocol_version_is_replaced(w) {
        let m = w.machine("upgrade", None);
        let dir = socket_dir(&w, 0o700);
        // An "old" daemon: answers status with protocol 0 and everything else with a
        // protocol mismatch, and exits on /v1/shutdown.
        let fake = r#"
import json, os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(16)
open(os.path.join(os.path.dirname(path), "keywardd.lock"), "w").write(str(os.getpid()))
print("ready", flush=True)
while True:
    c, _ = s.accept()
    req = c.recv(65536).decode(errors="replace")
    line = req.split("\r\n", 1)[0]
    if line.startswith("GET /v1/status"):
        body, code = json.dumps({"version": "0.0.1", "protocol": 0, "pid": os.getpid(), "sessions": []}), "200 OK"
    elif line.startswith("POST /v1/shutdown"):
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"); c.close(); os.unlink(path); sys.exit(0)
    else:
        body, code = json.dumps({"kind": "protocol_mismatch", "message": "old"}), "400 Bad Request"
    c.sendall(("HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (code, len(body), body)).encode())
    c.close()
"#;
        let mut c = w.command("python3");
        c.args(["-c", fake])
            .arg(dir.join(keyward_proto::paths::SOCKET_NAME))
            .stdout(std::process::Stdio::piped());
        let mut old = c.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(old.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        assert_eq!(w.client().status().unwrap().protocol, 0);

        let out = w.helper(&m.profile);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("replacing a keywardd that speaks"), "{err}");
        assert!(
            old.wait().unwrap().success(),
            "the old daemon was asked to stop"
        );
        let st = w.client().status().unwrap();
        assert_eq!(st.protocol, keyward_proto::PROTOCOL_VERSION);
        assert_eq!(daemons_of(&w), vec![st.pid as i32]);
    }
}

e2e! {
    fn a_failed_start_says_why(w) {
        let m = w.machine("broken", None);
        // A socket directory others can enter.
        let dir = socket_dir(&w, 0o755);
        let out = w.helper(&m.profile);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            e.contains("has mode 755, expected 700") && e.contains("chmod 700"),
            "{e}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

        // No reachable keychain: the daemon's own reason comes back, not a timeout.
        let mut c = w.command(w.bin("keyward-credential-process"));
        c.args(["--profile", &m.profile])
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
        let started = std::time::Instant::now();
        let out = w.output(c);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            e.contains("keywardd failed to start") && e.contains("keychain is not reachable"),
            "{e}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "no bare timeout"
        );
        assert!(daemons_of(&w).is_empty());
        // It checked before it listened: no socket was left for the next client to trip on.
        assert!(
            !dir.join(keyward_proto::paths::SOCKET_NAME).exists(),
            "a failed start leaves no socket"
        );
    }
}
