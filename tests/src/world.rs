//! One isolated world per test. Parts that cannot be found make the test SKIP loudly;
//! with `KEYWARD_E2E_REQUIRED=1` (set by tests/run.sh, so in CI) a skip is a failure.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proxy::FaultProxy;

pub const REGION: &str = "us-east-1";
const ADMIN_KEY_ID: &str = "AKIAADMINEXAMPLE0000";
const ADMIN_SECRET: &str = "admin-secret-not-a-canary";

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

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

/// The directory holding the workspace's built binaries (target/debug).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("target dir")
    } else {
        deps
    };
    dir.to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A machine user registered in moto, its key imported, its profile added.
#[derive(Debug, Clone)]
pub struct Machine {
    pub profile: String,
    pub user_arn: String,
    pub access_key_id: String,
    pub mfa_serial: String,
    pub role_arn: Option<String>,
}

/// moto's server process, shared by the computers of one test.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct World {
    pub test: String,
    moto: Arc<Moto>,
    root: tempfile::TempDir,
    pub home: PathBuf,
    pub run: PathBuf,
    /// Test-only files that are not under HOME (TOTP seeds and state).
    pub outside: PathBuf,
    pub bins: PathBuf,
    pub proxy: Arc<FaultProxy>,
    dbus_addr: String,
    children: Vec<Child>,
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
        for part in [
            "moto_server",
            "python3",
            "dbus-daemon",
            "gnome-keyring-daemon",
            "dbus-send",
        ] {
            if which(part).is_none() {
                skip(test, &format!("`{part}` not found on PATH"));
                return None;
            }
        }
        let bins = bin_dir();
        for b in ["keyward", "keywardd", "keyward-credential-process"] {
            assert!(
                bins.join(b).is_file(),
                "{} missing: build with `cargo build --workspace --bins` first (tests/run.sh does)",
                bins.join(b).display()
            );
        }
        let root = tempfile::Builder::new()
            .prefix("keyward-e2e-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let moto = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Arc::new(Moto { child: moto, port });
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "moto_server did not listen on {port}"
        );
        let proxy = Arc::new(
            FaultProxy::start(&format!("http://127.0.0.1:{port}")).expect("start the fault proxy"),
        );
        Some(Self::computer(test, root, bins, moto, proxy))
    }

    /// Another computer of the same test: its own HOME, keychain and daemon, the same AWS.
    #[must_use]
    pub fn sibling(&self, name: &str) -> World {
        let root = tempfile::Builder::new()
            .prefix("keyward-e2e-")
            .tempdir()
            .expect("tempdir");
        Self::computer(
            &format!("{}/{name}", self.test),
            root,
            self.bins.clone(),
            self.moto.clone(),
            self.proxy.clone(),
        )
    }

    fn computer(
        test: &str,
        root: tempfile::TempDir,
        bins: PathBuf,
        moto: Arc<Moto>,
        proxy: Arc<FaultProxy>,
    ) -> World {
        let home = root.path().join("home");
        let run = root.path().join("run");
        let outside = root.path().join("outside");
        for d in [&home, &run, &outside] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        BufReader::new(dbus.stdout.take().expect("dbus stdout"))
            .read_line(&mut line)
            .expect("dbus address");
        let dbus_addr = line.trim().to_owned();
        let mut world = World {
            test: test.to_owned(),
            moto,
            root,
            home,
            run,
            outside,
            bins,
            proxy,
            dbus_addr,
            children: vec![dbus],
            outputs: Mutex::new(Vec::new()),
            argvs: Mutex::new(Vec::new()),
            canaries: Mutex::new(Vec::new()),
        };
        world.start_keyring();
        world
    }

    fn start_keyring(&mut self) {
        let mut cmd = Command::new("gnome-keyring-daemon");
        cmd.args(["--unlock", "--foreground", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.outside.join("keyring.log")).expect("log"));
        self.env(&mut cmd);
        let mut child = cmd.spawn().expect("start gnome-keyring-daemon");
        // A non-empty password: gnome-keyring stores an empty-password keyring unencrypted.
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"keyward-test-login")
            .expect("unlock password");
        self.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut probe = Command::new("dbus-send");
            probe.args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ]);
            self.env(&mut probe);
            let out = probe.output().expect("dbus-send");
            if String::from_utf8_lossy(&out.stdout).contains("true") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring did not take org.freedesktop.secrets"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The isolated environment every process of this world runs with.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.run)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.dbus_addr)
            .env("AWS_ENDPOINT_URL", self.proxy.url())
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KEYWARD_LOG", "trace")
            .env("LANG", "C.UTF-8");
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        self.env(&mut c);
        c.stdin(Stdio::null());
        c
    }

    /// The world's root temp dir (mode 0700).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }

    /// Runs and records a command; returns its output whatever its status.
    pub fn output(&self, mut cmd: Command) -> Output {
        let argv = format!(
            "{:?} {:?}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>()
        );
        self.argvs.lock().unwrap().push(argv);
        let out = cmd.output().expect("spawn");
        let mut o = self.outputs.lock().unwrap();
        o.push(String::from_utf8_lossy(&out.stderr).into_owned());
        out
    }

    pub fn keyward(&self, args: &[&str]) -> Output {
        let mut c = self.command(self.bin("keyward"));
        c.args(args);
        self.output(c)
    }

    /// Runs keyward and insists it succeeds; returns stdout.
    pub fn keyward_ok(&self, args: &[&str]) -> String {
        let out = self.keyward(args);
        assert!(
            out.status.success(),
            "keyward {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The credential_process helper, exactly as ~/.aws/config runs it.
    pub fn helper(&self, profile: &str) -> Output {
        let mut c = self.command(self.bin("keyward-credential-process"));
        c.args(["--profile", profile]);
        self.output(c)
    }

    /// Runs the admin script (boto3 with throw-away admin keys) and parses its JSON.
    pub fn admin(&self, args: &[&str]) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/aws_admin.py");
        let mut c = self.command("python3");
        c.arg(script)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ADMIN_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ADMIN_SECRET);
        let out = c.output().expect("python3");
        assert!(
            out.status.success(),
            "aws_admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("admin JSON")
    }

    /// moto itself, not through the proxy.
    pub fn moto_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.moto.port)
    }

    /// Turns moto's own authentication and IAM enforcement on or off.
    pub fn moto_auth(&self, on: bool) {
        use std::io::Read;
        let body = if on { "0" } else { "inf" };
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.moto.port)).expect("moto");
        write!(s, "POST /moto-api/reset-auth HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 200"), "moto reset-auth: {out}");
    }

    /// Asks moto directly (no proxy) who a long-term key belongs to: `Ok(arn)` or the error code.
    pub fn moto_whoami(&self, key_id: &str, secret: &str) -> Result<String, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/aws_admin.py");
        let mut c = self.command("python3");
        c.arg(script)
            .args(["caller-direct", &self.moto_url()])
            .env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret);
        let out = c.output().expect("python3");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("caller-direct: {}", String::from_utf8_lossy(&out.stderr)));
        match v["arn"].as_str() {
            Some(a) => Ok(a.to_owned()),
            None => Err(v["code"].as_str().unwrap_or("?").to_owned()),
        }
    }

    /// Gives a command the throw-away admin credentials (for `keyward init/setup`).
    pub fn as_admin(cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", ADMIN_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ADMIN_SECRET);
    }

    /// The mfa_process for a device that `keyward setup` will create.
    pub fn device_totp_command(&self, device: &str) -> String {
        self.totp_command(device)
    }

    /// `keyward setup` as the first computer of the account (admin credentials).
    pub fn setup_admin(&self, args: &[&str]) -> Output {
        let mut c = self.command(self.bin("keyward"));
        c.arg("setup").args(args);
        Self::as_admin(&mut c);
        self.output(c)
    }

    /// `keyward setup --enroll` with the code on stdin.
    pub fn setup_enrolled(&self, code: &str, args: &[&str]) -> Output {
        let mut c = self.command(self.bin("keyward"));
        c.args(["setup", "--enroll"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let line = format!(
            "{:?} {:?}",
            c.get_program(),
            c.get_args().collect::<Vec<_>>()
        );
        self.argvs.lock().unwrap().push(line);
        let mut child = c.spawn().expect("spawn setup");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{code}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        self.outputs
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&out.stderr).into_owned());
        out
    }

    /// boto3 as a client of the user's config (no admin keys in its environment).
    pub fn admin_as_user(&self, args: &[&str]) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/aws_admin.py");
        let mut c = self.command("python3");
        c.arg(script).args(args);
        let out = self.output(c);
        assert!(
            out.status.success(),
            "boto3 {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("boto3 JSON")
    }

    /// Registers a secret that must never leak anywhere.
    pub fn canary(&self, secret: &str) {
        self.canaries.lock().unwrap().push(secret.to_owned());
    }

    /// Creates an IAM user with key and MFA in moto, imports the key (through the
    /// plaintext credentials file, then scrubbed) and adds a base profile that uses
    /// the test TOTP program as its mfa_process.
    pub fn machine(&self, profile: &str, role: Option<&str>) -> Machine {
        let v = self.admin(
            &["make-user", profile, role.unwrap_or("")]
                .iter()
                .copied()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>(),
        );
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
        self.keyward_ok(&[
            "key",
            "import",
            "--profile",
            profile,
            "--from-credentials-profile",
            &format!("import-{profile}"),
            "--scrub",
        ]);
        let serial = s("mfa_serial");
        self.keyward_ok(&[
            "profile",
            "add",
            profile,
            "--mfa-serial",
            &serial,
            "--region",
            REGION,
            "--mfa-process",
            &self.totp_command(profile),
        ]);
        Machine {
            profile: profile.to_owned(),
            user_arn: s("user_arn"),
            access_key_id: s("access_key_id"),
            mfa_serial: serial,
            role_arn: v["role_arn"].as_str().map(str::to_owned),
        }
    }

    /// The mfa_process for a user's device: the emulator plays the phone.
    pub fn totp_command(&self, device: &str) -> String {
        format!(
            "{} emulator-code --url {} --device {device}",
            self.bin("keyward").display(),
            self.proxy.url()
        )
    }

    /// A current, never-handed-out TOTP code for a device (shared with mfa_process).
    pub fn next_code(&self, device: &str) -> String {
        let mut c = self.command(self.bin("keyward"));
        c.args([
            "emulator-code",
            "--url",
            &self.proxy.url(),
            "--device",
            device,
        ]);
        let out = c.output().expect("emulator-code");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The AWS CLI, through the profile's credential_process line. The Debian AWS CLI
    /// predates AWS_ENDPOINT_URL, so the endpoint goes on the command line too.
    pub fn aws(&self, profile: &str, args: &[&str]) -> Output {
        let mut c = self.command("aws");
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
        self.output(c)
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
        let text = std::fs::read_to_string(
            self.run
                .join("keyward")
                .join(keyward_proto::paths::LOCK_NAME),
        )
        .ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(
            self.run
                .join("keyward")
                .join(keyward_proto::paths::LOG_NAME),
        )
        .unwrap_or_default()
    }

    /// The canary search: no registered secret, session credential the proxy saw or
    /// MFA code in any file under the world, any output, any argv or any environment.
    pub fn assert_no_leaks(&self) {
        let mut canaries = self.canaries.lock().unwrap().clone();
        canaries.extend(self.proxy.control.issued_secrets());
        canaries.extend(self.proxy.control.seeds_base32());
        let codes = self.proxy.control.valid_codes();
        let mut places: Vec<(String, Vec<u8>)> = Vec::new();
        for path in walk(self.root.path()) {
            if path.starts_with(&self.outside) {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&path) {
                places.push((path.display().to_string(), bytes));
            }
        }
        for (i, o) in self.outputs.lock().unwrap().iter().enumerate() {
            places.push((format!("stderr of command #{i}"), o.clone().into_bytes()));
        }
        for a in self.argvs.lock().unwrap().iter() {
            places.push((format!("argv {a}"), a.clone().into_bytes()));
        }
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                for f in ["cmdline", "environ"] {
                    if let Ok(b) = std::fs::read(p.path().join(f)) {
                        places.push((format!("{}/{f}", p.path().display()), b));
                    }
                }
            }
        }
        for (place, bytes) in &places {
            for c in &canaries {
                assert!(
                    !contains(bytes, c.as_bytes()),
                    "{}: a secret ({}…) leaked into {place}",
                    self.test,
                    &c[..4.min(c.len())]
                );
            }
            for code in &codes {
                assert!(
                    !contains_token(bytes, code.as_bytes()),
                    "{}: MFA code leaked into {place}",
                    self.test
                );
            }
        }
    }

    /// Stops the daemon with SIGTERM and returns its exit status if it was ours.
    pub fn stop_daemon(&self) {
        if let Some(pid) = self.daemon_pid() {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_daemon();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => out.extend(walk(&p)),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A digit string not embedded in a longer run of digits.
fn contains_token(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).enumerate().any(|(i, w)| {
        w == needle
            && (i == 0 || !hay[i - 1].is_ascii_digit())
            && hay
                .get(i + needle.len())
                .is_none_or(|b| !b.is_ascii_digit())
    })
}
