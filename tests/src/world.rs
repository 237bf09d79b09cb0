//! One isolated world per test: the sandbox's emulated AWS and isolated computer, plus
//! what only tests need: a record of every command, output and secret (for the leak
//! scan), the admin helpers, and `Machine` fixtures. Parts that cannot be found make
//! the test SKIP loudly; with `KEYWARD_E2E_REQUIRED=1` (tests/run.sh, so in CI) a
//! skip is a failure.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward_sandbox::aws::{ROOT_KEY_ID, ROOT_SECRET};
use keyward_sandbox::computer::{Computer, Shared, KEYCHAIN_PARTS};

use crate::cmd::Cmd;
use crate::proxy::FaultProxy;

pub use keyward_sandbox::computer::which;

pub const REGION: &str = "us-east-1";

/// Reports a missing part: a loud SKIP, or a failure where every part must exist.
pub fn skip(test: &str, why: &str) {
    let banner = format!(
        "\n==== SKIPPED {test}: {why} ====\n     (./tests/run.sh installs every part; there nothing skips)\n"
    );
    assert!(
        !std::env::var("KEYWARD_E2E_REQUIRED").is_ok_and(|v| v == "1"),
        "{banner}KEYWARD_E2E_REQUIRED=1, so a missing part is a failure"
    );
    eprintln!("{banner}");
    let _ = writeln!(std::io::stdout(), "SKIPPED {test}: {why}");
}

/// Whether every tool is on PATH; a loud [`skip`] names the first missing one.
pub fn has_tools(test: &str, tools: &[&str]) -> bool {
    match keyward_sandbox::computer::missing(tools) {
        Some(tool) => {
            skip(test, &format!("`{tool}` not found on PATH"));
            false
        }
        None => true,
    }
}

/// The directory holding the workspace's built binaries (target/debug), or
/// `KEYWARD_BIN_DIR` (an installed keyward, or an older build to show a test fails there).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KEYWARD_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("target dir")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// A machine user registered by hand (not by setup), its key imported, its profile added.
#[derive(Debug, Clone)]
pub struct Machine {
    pub profile: String,
    pub user_arn: String,
    pub access_key_id: String,
    pub mfa_serial: String,
    pub role_arn: Option<String>,
    /// The long-term secret, for tests that look for copies of it (a canary too).
    pub secret_access_key: String,
}

pub struct World {
    pub test: String,
    pub proxy: Arc<FaultProxy>,
    computer: Computer,
    root: tempfile::TempDir,
    pub home: PathBuf,
    pub run: PathBuf,
    /// Test-only files that are not under HOME.
    pub outside: PathBuf,
    pub bins: PathBuf,
    /// Everything commands printed, scanned for secrets at the end.
    outputs: Mutex<Vec<String>>,
    /// Every argv we ran.
    argvs: Mutex<Vec<String>>,
    /// Secrets that must never show up anywhere.
    canaries: Mutex<Vec<String>>,
}

impl World {
    /// Builds the world, or returns None after a loud SKIP when a part is missing.
    pub fn new(test: &str) -> Option<World> {
        let (root, bins, proxy) = Self::start_aws(test)?;
        Some(Self::computer(test, root, bins, proxy, true))
    }

    /// A computer with no D-Bus session and no Secret Service (SSH, a VM, WSL, a
    /// container), with its own emulated AWS like [`World::new`].
    pub fn headless(test: &str) -> Option<World> {
        let (root, bins, proxy) = Self::start_aws(test)?;
        Some(Self::computer(test, root, bins, proxy, false))
    }

    /// The parts every world needs, and its emulated AWS.
    fn start_aws(test: &str) -> Option<(tempfile::TempDir, PathBuf, Arc<FaultProxy>)> {
        let mut parts = vec!["moto_server", "python3"];
        parts.extend_from_slice(KEYCHAIN_PARTS);
        if let Some(part) = keyward_sandbox::computer::missing(&parts) {
            skip(test, &format!("`{part}` not found on PATH"));
            return None;
        }
        let bins = bin_dir();
        for b in [
            "keyward",
            "keywardd",
            "keyward-credential-process",
            "keyward-phone",
        ] {
            assert!(
                bins.join(b).is_file(),
                "{} missing: build with `cargo build --workspace --bins` first (tests/run.sh does)",
                bins.join(b).display()
            );
        }
        let root = tempdir();
        let moto = which("moto_server").expect("checked above");
        let proxy =
            Arc::new(FaultProxy::start(&moto, root.path()).expect("start moto and the emulator"));
        Some((root, bins, proxy))
    }

    /// Another computer of the same test: its own HOME, keychain and daemon, the same AWS.
    #[must_use]
    pub fn sibling(&self, name: &str) -> World {
        Self::computer(
            &format!("{}/{name}", self.test),
            tempdir(),
            self.bins.clone(),
            self.proxy.clone(),
            true,
        )
    }

    fn computer(
        test: &str,
        root: tempfile::TempDir,
        bins: PathBuf,
        proxy: Arc<FaultProxy>,
        keychain: bool,
    ) -> World {
        let shared = Shared {
            endpoint: proxy.url(),
            path_prefix: Vec::new(),
            vars: vec![("KEYWARD_LOG".into(), "trace".into())],
        };
        let computer = if keychain {
            Computer::with_keychain(root.path(), "computer", shared)
        } else {
            Computer::new(root.path(), "computer", shared)
        }
        .expect("an isolated computer");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        World {
            test: test.to_owned(),
            home: computer.home.clone(),
            run: computer.run.clone(),
            proxy,
            computer,
            root,
            outside,
            bins,
            outputs: Mutex::new(Vec::new()),
            argvs: Mutex::new(Vec::new()),
            canaries: Mutex::new(Vec::new()),
        }
    }

    /// The isolated environment every process of this world runs with.
    pub fn env(&self, cmd: &mut Command) {
        self.computer.env(cmd);
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.computer.command(program)
    }

    /// A recorded command of this world (see [`Cmd`]).
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Cmd<'_> {
        Cmd::new(self, self.command(program))
    }

    /// `keyward ARGS` on this computer: the one way tests run keyward.
    pub fn keyward(&self, args: &[&str]) -> Cmd<'_> {
        let mut c = self.cmd(self.bin("keyward"));
        c.args(args);
        c
    }

    /// `keyward ARGS` with the account's root credentials (the bootstrap admin).
    pub fn keyward_admin(&self, args: &[&str]) -> Cmd<'_> {
        let mut c = self.keyward(args);
        c.env("AWS_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ROOT_SECRET);
        c
    }

    /// The world's root temp dir (mode 0700).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }

    pub fn record_argv(&self, argv: String) {
        self.argvs.lock().unwrap().push(argv);
    }

    pub fn record_output(&self, stderr: &[u8], stdout: &[u8]) {
        let mut o = self.outputs.lock().unwrap();
        o.push(String::from_utf8_lossy(stderr).into_owned());
        o.push(String::from_utf8_lossy(stdout).into_owned());
    }

    /// Runs and records a command; returns its output whatever its status.
    pub fn output(&self, cmd: Command) -> Output {
        Cmd::new(self, cmd).output()
    }

    /// The credential_process helper, exactly as ~/.aws/config runs it.
    pub fn helper(&self, profile: &str) -> Output {
        let mut c = self.cmd(self.bin("keyward-credential-process"));
        c.args(["--profile", profile]).secret_stdout();
        c.output()
    }

    /// The admin script (boto3 as the account's root) and its JSON answer.
    pub fn admin(&self, args: &[&str]) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/aws_admin.py");
        let mut c = self.command("python3");
        c.arg(script)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ROOT_SECRET);
        let out = c.output().expect("python3");
        assert!(
            out.status.success(),
            "aws_admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("admin JSON")
    }

    /// moto itself, not through the emulator.
    pub fn moto_url(&self) -> String {
        self.proxy.moto_url()
    }

    /// Gives a command the account root's credentials (for `keyward init/setup`).
    pub fn as_admin(cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ROOT_SECRET);
    }

    /// The mfa_process for a device that `keyward setup` will create.
    pub fn device_totp_command(&self, device: &str) -> String {
        self.totp_command(device)
    }

    /// The mfa_process for a user's device: the emulator plays the phone.
    pub fn totp_command(&self, device: &str) -> String {
        format!(
            "{} --url {} --device {device}",
            self.bin("keyward-phone").display(),
            self.proxy.url()
        )
    }

    /// A current, never-handed-out TOTP code for a device (shared with mfa_process).
    pub fn next_code(&self, device: &str) -> String {
        keyward_sandbox::phone::next_code(&self.proxy.url(), device)
            .expect("a code from the emulated phone")
    }

    /// `keyward setup` as the first computer of the account (root credentials).
    pub fn setup_admin(&self, args: &[&str]) -> Output {
        let mut all = vec!["setup"];
        all.extend_from_slice(args);
        self.keyward_admin(&all).output()
    }

    /// `keyward setup --enroll` with the code on stdin.
    pub fn setup_enrolled(&self, code: &str, args: &[&str]) -> Output {
        let mut all = vec!["setup", "--enroll"];
        all.extend_from_slice(args);
        let mut c = self.keyward(&all);
        c.stdin(format!("{code}\n").into_bytes());
        c.output()
    }

    /// boto3 as a client of the user's config (no admin keys in its environment).
    pub fn admin_as_user(&self, args: &[&str]) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/aws_admin.py");
        let mut c = self.cmd("python3");
        c.arg(script).args(args);
        c.ok().json()
    }

    /// Writes an executable shell script `name` into this world's fake-program
    /// directory, which [`World::path_with_fakes`] puts first on PATH.
    pub fn fake_program(&self, name: &str, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = self.root().join("fakebin");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// This computer's PATH with the fake programs first.
    pub fn path_with_fakes(&self) -> String {
        let probe = self.command("true");
        let path = probe
            .get_envs()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| v)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{}:{path}", self.root().join("fakebin").display())
    }

    /// Registers a secret that must never leak anywhere.
    pub fn canary(&self, secret: &str) {
        self.canaries.lock().unwrap().push(secret.to_owned());
    }

    /// Creates an IAM user with key and MFA (as root), imports the key through the
    /// plaintext credentials file (then scrubbed) and adds a base profile that uses the
    /// emulated phone as its mfa_process.
    pub fn machine(&self, profile: &str, role: Option<&str>) -> Machine {
        let mut args = vec!["make-user", profile];
        args.extend(role);
        let v = self.admin(&args);
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let secret = s("secret_access_key");
        self.canary(&secret);
        let creds = self.home.join(".aws/credentials");
        std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
        let mut text = std::fs::read_to_string(&creds).unwrap_or_default();
        let _ = write!(
            text,
            "[import-{profile}]\naws_access_key_id = {}\naws_secret_access_key = {secret}\n",
            s("access_key_id")
        );
        std::fs::write(&creds, text).unwrap();
        let from = format!("import-{profile}");
        self.keyward(&[
            "key",
            "import",
            "--profile",
            profile,
            "--from-credentials-profile",
            &from,
            "--scrub",
        ])
        .ok();
        let serial = s("mfa_serial");
        let totp = self.totp_command(profile);
        self.keyward(&[
            "profile",
            "add",
            profile,
            "--mfa-serial",
            &serial,
            "--region",
            REGION,
            "--mfa-process",
            &totp,
        ])
        .ok();
        Machine {
            profile: profile.to_owned(),
            user_arn: s("user_arn"),
            access_key_id: s("access_key_id"),
            mfa_serial: serial,
            role_arn: v["role_arn"].as_str().map(str::to_owned),
            secret_access_key: secret,
        }
    }

    /// The AWS CLI, through the profile's credential_process line. The Debian AWS CLI
    /// predates AWS_ENDPOINT_URL, so the endpoint goes on the command line too.
    pub fn aws(&self, profile: &str, args: &[&str]) -> Output {
        let mut c = self.cmd("aws");
        c.args([
            "--profile",
            profile,
            "--endpoint-url",
            &self.proxy.url(),
            "--region",
            REGION,
            "--output",
            "json",
        ])
        .args(args);
        c.output()
    }

    /// A proto client on this world's socket.
    pub fn client(&self) -> keyward_proto::client::Client {
        keyward_proto::client::Client::new(
            self.run
                .join("keyward")
                .join(keyward_proto::paths::SOCKET_NAME),
        )
        .with_timeout(Duration::from_secs(60))
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        self.computer.daemon_pid()
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(
            self.run
                .join("keyward")
                .join(keyward_proto::paths::LOG_NAME),
        )
        .unwrap_or_default()
    }

    /// Stops the daemon with SIGTERM.
    pub fn stop_daemon(&self) {
        self.computer.stop_daemon();
    }

    /// Kills this computer's gnome-keyring: its Secret Service is gone.
    pub fn kill_keyring(&mut self) {
        self.computer.kill_keyring();
    }

    /// The canary search (also run on drop): no registered secret, session credential the emulator saw
    /// or MFA code in any file under the world, any output, any argv or any environment.
    pub fn assert_no_leaks(&self) {
        crate::leaks::assert_none(
            self,
            &self.canaries.lock().unwrap(),
            &self.outputs.lock().unwrap(),
            &self.argvs.lock().unwrap(),
        );
    }
}

/// Every world is leak-scanned when it goes, siblings too. `Drop::drop` runs before the
/// fields are dropped, so the daemon, the keyring and the files are still there to scan.
/// Not while panicking: the test has failed already, and a second panic would abort.
impl Drop for World {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_no_leaks();
        }
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("keyward-e2e-")
        .tempdir()
        .expect("tempdir")
}

/// Spawns `cmd` with `input` on its stdin and waits for its output.
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}
