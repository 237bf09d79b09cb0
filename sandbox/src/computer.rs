//! An isolated computer: its own HOME, XDG dirs and runtime dir (0700), and a private
//! Secret Service (dbus-daemon plus gnome-keyring, unlocked with a throw-away
//! password), so that keyward's real keychain code runs without touching the user's.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

/// Every child a computer started, so that an interrupted demo can stop them all.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Sends SIGTERM to every dbus-daemon and gnome-keyring a computer started.
pub fn stop_all_children() {
    for pid in CHILDREN.lock().expect("children").iter() {
        if let Some(p) = rustix::process::Pid::from_raw(i32::try_from(*pid).unwrap_or(0)) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
    }
}

/// The programs a computer's private Secret Service needs.
pub const KEYCHAIN_PARTS: &[&str] = &["dbus-daemon", "gnome-keyring-daemon", "dbus-send"];

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first of `parts` that is not on PATH.
pub fn missing(parts: &[&str]) -> Option<String> {
    parts
        .iter()
        .find(|p| which(p).is_none())
        .map(|p| (*p).to_owned())
}

/// What every process of every computer shares: the emulated AWS, PATH, extra variables.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    pub endpoint: String,
    /// Prepended to PATH (e.g. the Python environment's bin).
    pub path_prefix: Vec<PathBuf>,
    pub vars: Vec<(String, OsString)>,
}

pub struct Computer {
    pub name: String,
    pub home: PathBuf,
    pub run: PathBuf,
    pub dbus: Option<String>,
    shared: Shared,
    children: Vec<Child>,
}

impl Computer {
    /// Makes the directories under `root/name`, without a keychain yet.
    pub fn new(root: &Path, name: &str, shared: Shared) -> Result<Self> {
        let base = root.join(name);
        let home = base.join("home");
        let run = base.join("run");
        for d in [&home, &run] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self {
            name: name.to_owned(),
            home,
            run,
            dbus: None,
            shared,
            children: Vec::new(),
        })
    }

    /// A new computer with a private D-Bus and an unlocked gnome-keyring.
    pub fn with_keychain(root: &Path, name: &str, shared: Shared) -> Result<Self> {
        let mut c = Self::new(root, name, shared)?;
        c.start_keychain()?;
        Ok(c)
    }

    /// Stops this computer's gnome-keyring (its keychain then goes away, as when the
    /// session's keyring dies); dbus-daemon stays.
    pub fn kill_keyring(&mut self) {
        if let Some(mut k) = (self.children.len() >= 2).then(|| self.children.remove(1)) {
            let _ = k.kill();
            let _ = k.wait();
        }
    }

    /// Starts dbus-daemon and gnome-keyring, and waits until the Secret Service answers.
    pub fn start_keychain(&mut self) -> Result<()> {
        if let Some(part) = missing(KEYCHAIN_PARTS) {
            bail!("`{part}` is not installed: install gnome-keyring and dbus (`sudo apt install gnome-keyring dbus`)");
        }
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dbus-daemon")?;
        let mut line = String::new();
        BufReader::new(bus.stdout.take().context("dbus-daemon stdout")?).read_line(&mut line)?;
        CHILDREN.lock().expect("children").push(bus.id());
        self.children.push(bus);
        self.dbus = Some(line.trim().to_owned());
        let mut kr = self.command("gnome-keyring-daemon");
        kr.args(["--unlock", "--foreground", "--components=secrets"])
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut keyring = kr.spawn().context("cannot start gnome-keyring-daemon")?;
        // A non-empty password: gnome-keyring stores an empty-password keyring unencrypted.
        keyring
            .stdin
            .take()
            .context("gnome-keyring stdin")?
            .write_all(b"sandbox-only-keychain-password")?;
        CHILDREN.lock().expect("children").push(keyring.id());
        self.children.push(keyring);
        self.wait_for_secret_service()
    }

    fn wait_for_secret_service(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut probe = self.command("dbus-send");
            probe.args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ]);
            if probe
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("true"))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("gnome-keyring did not take org.freedesktop.secrets on the private D-Bus");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The isolated environment: nothing of the caller's leaks in but PATH.
    pub fn env(&self, cmd: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = self.shared.path_prefix.clone();
        paths.extend(std::env::split_paths(&path));
        cmd.env_clear()
            .env("PATH", std::env::join_paths(paths).unwrap_or(path))
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.run)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("AWS_ENDPOINT_URL", &self.shared.endpoint)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LANG", "C.UTF-8");
        if let Some(bus) = &self.dbus {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", bus);
        }
        for (k, v) in &self.shared.vars {
            cmd.env(k, v);
        }
    }

    /// `program` in this computer's environment, stdin closed.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        self.env(&mut c);
        c.stdin(Stdio::null());
        c
    }

    /// The pid of this computer's keywardd, if one runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        let lock = self
            .run
            .join("keyward")
            .join(keyward_proto::paths::LOCK_NAME);
        let text = std::fs::read_to_string(lock).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// Stops keywardd with SIGTERM and waits up to 5 s for it to go.
    pub fn stop_daemon(&self) {
        let Some(pid) = self.daemon_pid() else { return };
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Computer {
    fn drop(&mut self) {
        self.stop_daemon();
        let mut registry = CHILDREN.lock().expect("children");
        for c in &mut self.children {
            registry.retain(|p| *p != c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
