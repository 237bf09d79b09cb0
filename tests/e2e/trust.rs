//! Local trust with two real users (setpriv): another user who plants a fake daemon
//! where the victim's helper might look gets nothing. Not the victim's credentials
//! request, not its MFA code, and no command of the attacker's runs as the victim.

use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use keyward_tests::world::{bin_dir, skip, which};

const VICTIM: u32 = 4242;
const ATTACKER: u32 = 65534;

/// The attacker's fake keywardd: logs what it receives and answers with credentials
/// (`creds`) or with `mfa_required` naming a command (`cmd`).
const FAKE: &str = r#"
import json, os, socket, sys
path, log, marker, mode = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(16)
while True:
    c, _ = s.accept()
    data = c.recv(65536)
    with open(log, "a") as f:
        f.write(repr(data) + "\n")
    if mode == "cmd":
        status, body = "401 Unauthorized", json.dumps({"kind": "mfa_required", "message": "code", "mfa_process": ["touch", marker]})
    else:
        status, body = "200 OK", json.dumps({"Version": 1, "AccessKeyId": "AKIAATTACKERSCREDS01", "SecretAccessKey": "x", "SessionToken": "y", "Expiration": "2099-01-01T00:00:00Z"})
    c.sendall(f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n{body}".encode())
    c.close()
"#;

struct Stage {
    _root: tempfile::TempDir,
    base: PathBuf,
    bins: PathBuf,
    home: PathBuf,
    shared: PathBuf,
    log: PathBuf,
    marker: PathBuf,
}

/// The victim's keyward starts a keywardd of its own on demand: stop every process
/// running from the stage's binaries, so none outlives the test.
impl Drop for Stage {
    fn drop(&mut self) {
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for p in procs.flatten() {
            let runs_ours = std::fs::read_link(p.path().join("exe"))
                .is_ok_and(|exe| exe.starts_with(&self.bins));
            let pid = p.file_name().to_string_lossy().parse::<i32>();
            if let (true, Ok(pid)) = (runs_ours, pid) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn stage() -> Stage {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().to_path_buf();
    mode(&base, 0o755);
    let bins = base.join("bin");
    std::fs::create_dir(&bins).unwrap();
    for b in ["keyward", "keyward-credential-process", "keywardd"] {
        std::fs::copy(bin_dir().join(b), bins.join(b)).unwrap();
    }
    mode(&bins, 0o755);
    let home = base.join("victim");
    std::fs::create_dir(&home).unwrap();
    chown(&home, Some(VICTIM), Some(VICTIM)).unwrap();
    mode(&home, 0o700);
    // A shared temp dir, like /tmp: anyone may create names in it first.
    let shared = base.join("tmp");
    std::fs::create_dir(&shared).unwrap();
    mode(&shared, 0o1777);
    let loot = base.join("loot");
    std::fs::create_dir(&loot).unwrap();
    chown(&loot, Some(ATTACKER), Some(ATTACKER)).unwrap();
    Stage {
        log: loot.join("received.log"),
        marker: loot.join("ran-as-victim"),
        _root: root,
        base,
        bins,
        home,
        shared,
    }
}

fn as_user(uid: u32, program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(program)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c
}

/// The attacker listens at `dir/keywardd.sock`, a directory it made first.
fn plant(st: &Stage, dir: &Path, answer: &str) -> Child {
    std::fs::create_dir(dir).unwrap();
    chown(dir, Some(ATTACKER), Some(ATTACKER)).unwrap();
    mode(dir, 0o755);
    let sock = dir.join("keywardd.sock");
    let mut c = as_user(ATTACKER, "python3");
    c.args(["-c", FAKE])
        .arg(&sock)
        .arg(&st.log)
        .arg(&st.marker)
        .arg(answer)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = c.spawn().unwrap();
    for _ in 0..200 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

fn victim(st: &Stage, args: &[&str], runtime: Option<&Path>) -> Output {
    let mut c = as_user(VICTIM, st.bins.join(args[0]).to_str().unwrap());
    c.args(&args[1..])
        .env("HOME", &st.home)
        .env("TMPDIR", &st.shared)
        .current_dir(&st.base)
        .stdin(Stdio::null());
    if let Some(r) = runtime {
        c.env("XDG_RUNTIME_DIR", r);
    }
    c.output().unwrap()
}

fn received(st: &Stage) -> String {
    std::fs::read_to_string(&st.log).unwrap_or_default()
}

fn ready(test: &str) -> bool {
    if !rustix::process::getuid().is_root() {
        skip(test, "needs root to act as two users");
        return false;
    }
    for part in ["setpriv", "python3"] {
        if which(part).is_none() {
            skip(test, &format!("`{part}` not found on PATH"));
            return false;
        }
    }
    true
}

#[test]
fn a_fake_daemon_of_another_user_gets_nothing_and_runs_nothing() {
    if !ready("trust::a_fake_daemon_of_another_user_gets_nothing_and_runs_nothing") {
        return;
    }
    let st = stage();
    // Without XDG_RUNTIME_DIR, the attacker takes the name an earlier keyward used in
    // the shared temp dir, and answers with credentials of its choosing.
    let victim_uid_dir = st.shared.join(format!("keyward-{VICTIM}"));
    let mut fake = plant(&st, &victim_uid_dir, "creds");
    let out = victim(
        &st,
        &["keyward-credential-process", "--profile", "work"],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the helper succeeded: {stdout}");
    assert!(
        !stdout.contains("AKIAATTACKER"),
        "attacker's credentials printed: {stdout}"
    );
    assert_eq!(received(&st), "", "the fake daemon heard from the victim");
    let _ = fake.kill();
    let _ = fake.wait();

    // With XDG_RUNTIME_DIR in a place the attacker could write, its `keyward` dir is
    // refused by name, and a reply naming a command is never reached.
    let runtime = st.shared.join("run");
    std::fs::create_dir(&runtime).unwrap();
    mode(&runtime, 0o1777);
    let mut fake = plant(&st, &runtime.join("keyward"), "cmd");
    let out = victim(
        &st,
        &["keyward-credential-process", "--profile", "work"],
        Some(&runtime),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("belongs to uid {ATTACKER}")),
        "{stderr}"
    );
    let status = victim(&st, &["keyward", "status"], Some(&runtime));
    assert!(!status.status.success());
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("will not talk to it"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(received(&st), "", "the fake daemon heard from the victim");
    assert!(
        !st.marker.exists(),
        "the attacker's command ran as the victim"
    );
    let _ = fake.kill();
    let _ = fake.wait();
}
