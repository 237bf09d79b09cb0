//! `keyward demo`: the whole story against a throw-away emulated AWS, and the
//! emulated phone it uses for MFA codes.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};

/// Prints the next MFA code of `device` from a keyward emulator (the demo's phone).
/// Loopback only: the emulator is a local, throw-away AWS.
pub fn emulator_code(url: &str, device: &str) -> Result<()> {
    let host = url
        .strip_prefix("http://")
        .context("the emulator URL must start with http://")?
        .trim_end_matches('/');
    let addr: std::net::SocketAddr = host
        .parse()
        .context("the emulator URL must be http://127.0.0.1:PORT")?;
    if !addr.ip().is_loopback() {
        bail!(
            "the emulator must be on this computer (127.0.0.1), not {}",
            addr.ip()
        );
    }
    if !device
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        bail!("`{device}` is not an MFA device name");
    }
    let mut s = std::net::TcpStream::connect(addr)
        .with_context(|| format!("the emulator at {url} does not answer"))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(45)))?;
    write!(s, "GET /__keyward_emulator/code?device={device} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .context("unreadable answer from the emulator")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("the emulator knows no MFA device `{device}`");
    }
    println!("{}", body.trim());
    Ok(())
}

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use clap::Args;

use crate::aws::Aws;
use crate::ui;

#[derive(Args)]
pub struct DemoArgs {}

const ADMIN_KEY: &str = "AKIA-DEMO-ADMIN";
const ADMIN_SECRET: &str = "demo-admin-secret-not-real";
const STEPS: usize = 7;
/// Every process the demo starts carries this, so an interrupted demo finds them all.
const ROOT_MARKER: &str = "KEYWARD_DEMO_ROOT";

/// One emulated computer: its own HOME, XDG dirs, D-Bus and Secret Service.
struct Computer {
    home: PathBuf,
    run: PathBuf,
    dbus: Option<String>,
}

/// Everything the demo started; dropping it stops and removes all of it.
struct World {
    root: Option<tempfile::TempDir>,
    endpoint: String,
    venv: PathBuf,
    children: Vec<Child>,
    computers: Vec<Computer>,
    stop_emulator: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for World {
    fn drop(&mut self) {
        for c in &self.computers {
            let mut stop = self.keyward(c);
            stop.args(["daemon", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = stop.status();
        }
        for ch in &mut self.children {
            let _ = ch.kill();
            let _ = ch.wait();
        }
        if let Some(s) = self.stop_emulator.take() {
            let _ = s.send(());
        }
        if let Some(root) = self.root.take() {
            let path = root.path().display().to_string();
            drop(root);
            println!("cleaned up: every demo process stopped, {path} removed");
        }
    }
}

impl World {
    fn root(&self) -> &Path {
        self.root.as_ref().expect("root until drop").path()
    }

    /// `keyward` (this binary) as `computer`, in its isolated environment.
    fn keyward(&self, c: &Computer) -> Command {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("keyward"));
        let mut cmd = Command::new(exe);
        self.env(c, &mut cmd);
        cmd
    }

    fn env(&self, c: &Computer, cmd: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.venv.join("bin")];
        paths.extend(std::env::split_paths(&path));
        cmd.env_clear()
            .env("PATH", std::env::join_paths(paths).unwrap_or(path))
            .env("HOME", &c.home)
            .env("XDG_RUNTIME_DIR", &c.run)
            .env("XDG_CONFIG_HOME", c.home.join(".config"))
            .env("XDG_DATA_HOME", c.home.join(".local/share"))
            .env("XDG_CACHE_HOME", c.home.join(".cache"))
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LANG", "C.UTF-8")
            .env(ROOT_MARKER, self.root())
            .stdin(Stdio::null());
        if let Some(bus) = &c.dbus {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", bus);
        }
    }

    fn computer(&mut self, name: &'static str) -> Result<usize> {
        use std::os::unix::fs::PermissionsExt;
        let base = self.root().join(name);
        let home = base.join("home");
        let run = base.join("run");
        std::fs::create_dir_all(&home)?;
        std::fs::create_dir_all(&run)?;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))?;
        let mut c = Computer {
            home,
            run,
            dbus: None,
        };
        // A private Secret Service: D-Bus plus gnome-keyring, unlocked with a throw-away password.
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .env(ROOT_MARKER, self.root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dbus-daemon")?;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(bus.stdout.take().context("dbus stdout")?),
            &mut line,
        )?;
        self.children.push(bus);
        c.dbus = Some(line.trim().to_owned());
        let mut kr = Command::new("gnome-keyring-daemon");
        kr.args(["--unlock", "--foreground", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.env(&c, &mut kr);
        kr.stdin(Stdio::piped());
        let mut keyring = kr.spawn().context("cannot start gnome-keyring-daemon")?;
        keyring
            .stdin
            .take()
            .context("keyring stdin")?
            .write_all(b"demo-only-keychain-password")?;
        self.children.push(keyring);
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
            self.env(&c, &mut probe);
            if probe
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("true"))
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("gnome-keyring did not start on the demo's private D-Bus");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.computers.push(c);
        Ok(self.computers.len() - 1)
    }

    fn mfa_process(&self, device: &str) -> String {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("keyward"));
        format!(
            "{} emulator-code --url {} --device {device}",
            exe.display(),
            self.endpoint
        )
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// moto and the AWS CLI, in a venv made on first use in keyward's cache dir
/// (or `KEYWARD_DEMO_VENV`, for a venv that already has them).
fn venv() -> Result<PathBuf> {
    let dir = match std::env::var_os("KEYWARD_DEMO_VENV") {
        Some(d) => PathBuf::from(d),
        None => directories::ProjectDirs::from("", "", "keyward")
            .context("no home directory")?
            .cache_dir()
            .join("demo-venv"),
    };
    if dir.join("bin/moto_server").is_file() && dir.join("bin/aws").is_file() {
        return Ok(dir);
    }
    if which("python3").is_none() {
        bail!("the demo runs moto, an AWS emulator written in Python: install python3 and python3-venv");
    }
    let spinner = ui::Spinner::start(&format!(
        "first run: installing moto and the AWS CLI into {}",
        dir.display()
    ));
    let ok = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(dir.join("bin/pip"))
            .args([
                "install",
                "-q",
                "--disable-pip-version-check",
                "moto[server]>=5,<6",
                "awscli>=1.32",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        drop(spinner);
        let _ = std::fs::remove_dir_all(&dir);
        bail!("could not create the demo's Python environment (python3 -m venv, then pip install moto[server] awscli); is python3-venv installed and PyPI reachable?");
    }
    spinner.finish("the emulator's Python environment is ready");
    Ok(dir)
}

fn step(n: usize, what: &str) -> Instant {
    println!("\n[{n}/{STEPS}] {what}");
    Instant::now()
}

fn took(started: Instant) {
    println!("      ({:.1}s)", started.elapsed().as_secs_f64());
}

/// Shows the steps a keyward command reported (its `✓`/`·` lines), then its stdout.
fn show_steps(out: Output, what: &str, lines: usize) -> Result<String> {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    for l in text
        .lines()
        .filter(|l| l.starts_with("✓ ") || l.starts_with("· "))
    {
        println!("      │ {l}");
    }
    show(
        &Output {
            stderr: Vec::new(),
            ..out
        },
        what,
        lines,
    )
}

/// Shows a command's output, indented, and insists it succeeded.
fn show(out: &Output, what: &str, lines: usize) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for l in stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| !l.trim().is_empty())
        .take(lines)
    {
        println!("      │ {l}");
    }
    if !out.status.success() {
        bail!("{what} failed:\n{stderr}");
    }
    Ok(stdout)
}

pub fn demo(_a: &DemoArgs) -> Result<()> {
    for tool in ["dbus-daemon", "gnome-keyring-daemon", "dbus-send"] {
        if which(tool).is_none() {
            bail!("the demo gives each emulated computer a private Secret Service and needs `{tool}`: install gnome-keyring and dbus (`sudo apt install gnome-keyring dbus`). Your own keychain is never used.");
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let story = tokio::task::spawn_blocking(run_story);
        tokio::select! {
            r = story => r.context("the demo stopped")?,
            _ = tokio::signal::ctrl_c() => {
                // The story's World is dropped as the process unwinds below; stop the
                // daemons it started (they run in their own sessions) right here too.
                eprintln!("\ninterrupted: cleaning up");
                cleanup_after_interrupt();
                std::process::exit(130);
            }
        }
    })
}

/// Paths of demo worlds alive in this process, for Ctrl-C.
static LIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn cleanup_after_interrupt() {
    let roots: Vec<PathBuf> = LIVE.lock().map(|v| v.clone()).unwrap_or_default();
    for root in roots {
        for name in ["laptop", "work"] {
            let run = root.join(name).join("run");
            let lock = run.join("keyward").join(keyward_proto::paths::LOCK_NAME);
            if let Some(pid) = std::fs::read_to_string(&lock)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        // Our own children (moto, D-Bus, keyrings) got the same Ctrl-C from the terminal;
        // make sure of it, then remove the files.
        kill_children_of(&root);
        let _ = std::fs::remove_dir_all(&root);
        println!("cleaned up {}", root.display());
    }
}

/// Terminates processes whose environment or command line names `root`.
fn kill_children_of(root: &Path) {
    let needle = root.display().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let env = std::fs::read(p.path().join("environ")).unwrap_or_default();
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let hit = |b: &[u8]| b.windows(needle.len()).any(|w| w == needle.as_bytes());
        if hit(&env) || hit(&cmd) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
    }
}

fn run_story() -> Result<()> {
    let started_all = Instant::now();
    println!("keyward demo: one IAM user per computer, its key in the keychain, MFA sessions for every AWS tool.");
    println!("Everything runs against a throw-away emulated AWS on 127.0.0.1 (moto plus keyward's emulator).");
    println!("Nothing here touches your ~/.aws, your keychain or any AWS account.");
    let venv = venv()?;
    let root = tempfile::Builder::new().prefix("keyward-demo-").tempdir()?;
    LIVE.lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .push(root.path().to_path_buf());
    println!("workspace: {}", root.path().display());
    let mut w = World {
        root: Some(root),
        endpoint: String::new(),
        venv,
        children: Vec::new(),
        computers: Vec::new(),
        stop_emulator: None,
    };

    // 1. The emulated AWS.
    let t = step(1, "Start an emulated AWS: moto, with keyward's emulator in front (it also plays alice's phone)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let moto = Command::new(w.venv.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("HOME", w.root())
        .env(ROOT_MARKER, w.root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start moto_server")?;
    w.children.push(moto);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("moto did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    w.endpoint = format!("http://{}", listener.local_addr()?);
    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    w.stop_emulator = Some(stop);
    let handle = tokio::runtime::Handle::current();
    let upstream = format!("http://127.0.0.1:{port}");
    handle.spawn(async move {
        if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
            keyward_emulator::serve(
                l,
                keyward_emulator::Emulator::default(),
                upstream,
                Arc::new(keyward_emulator::NoFaults),
                stop_rx,
            )
            .await;
        }
    });
    let laptop = w.computer("laptop")?;
    let work = w.computer("work")?;
    // The account's admin prepares a group, a bucket and a KMS key.
    let admin = handle.block_on(Aws::at_endpoint(
        Credentials::new(ADMIN_KEY, ADMIN_SECRET, None, None, "demo-admin"),
        &w.endpoint,
    ));
    let key_arn = handle.block_on(prepare_account(&admin))?;
    println!(
        "      emulated AWS at {}; group `developers`, bucket s3://alice-data, KMS key ready",
        w.endpoint
    );
    took(t);

    // 2. First computer.
    let t = step(2, "Set up alice's laptop: IAM user alice-laptop, MFA, group, bucket and key policies, key into its keychain");
    let mut c = w.keyward(&w.computers[laptop]);
    c.args([
        "setup",
        "--owner",
        "alice",
        "--machine",
        "laptop",
        "--group",
        "developers",
        "--bucket",
        "alice-data",
        "--kms-key",
        &key_arn,
        "--yes",
        "--mfa-process",
        &w.mfa_process("alice-laptop"),
    ])
    .env("AWS_ACCESS_KEY_ID", ADMIN_KEY)
    .env("AWS_SECRET_ACCESS_KEY", ADMIN_SECRET);
    let out = c.output()?;
    show_steps(out, "keyward setup", 3)?;
    took(t);

    // 3. Login.
    let t = step(
        3,
        "Log in with MFA: one code, one STS session held in keywardd's memory",
    );
    let mut c = w.keyward(&w.computers[laptop]);
    c.args(["login", "--profile", "alice-laptop"]);
    show(&c.output()?, "keyward login", 4)?;
    took(t);

    // 4. The AWS CLI through credential_process.
    let t = step(
        4,
        "Run `aws sts get-caller-identity --profile alice-laptop` (credential_process → keyward)",
    );
    let cfg =
        std::fs::read_to_string(w.computers[laptop].home.join(".aws/config")).unwrap_or_default();
    for l in cfg
        .lines()
        .filter(|l| l.contains("credential_process") || l.starts_with("[profile alice-laptop"))
    {
        println!("      ~/.aws/config: {l}");
    }
    let mut c = Command::new(w.venv.join("bin/aws"));
    w.env(&w.computers[laptop], &mut c);
    c.args([
        "--profile",
        "alice-laptop",
        "--endpoint-url",
        &w.endpoint,
        "sts",
        "get-caller-identity",
        "--output",
        "text",
    ]);
    show(&c.output()?, "aws sts get-caller-identity", 3)?;
    took(t);

    // 5. Enroll a second computer.
    let t = step(
        5,
        "Enroll alice's work computer with a 15-minute code from the laptop",
    );
    let mut c = w.keyward(&w.computers[laptop]);
    c.args([
        "enroll",
        "--profile",
        "alice-laptop",
        "--group",
        "developers",
        "--bucket",
        "alice-data",
    ]);
    let out = c.output()?;
    let code = zeroize::Zeroizing::new(
        show(
            &Output {
                stdout: Vec::new(),
                ..out.clone()
            },
            "keyward enroll",
            1,
        )
        .map(|_| String::from_utf8_lossy(&out.stdout).trim().to_owned())?,
    );
    println!(
        "      │ code: {}… (a secret: it is piped, never put on a command line)",
        &code[..12.min(code.len())]
    );
    let mut c = w.keyward(&w.computers[work]);
    c.args([
        "setup",
        "--enroll",
        "--machine",
        "work",
        "--yes",
        "--mfa-process",
        &w.mfa_process("alice-work"),
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{}\n", code.as_str()).as_bytes())?;
    drop(code);
    let out = child.wait_with_output()?;
    show_steps(out, "keyward setup --enroll", 2)?;
    took(t);

    // 6. Revoke the laptop.
    let t = step(6, "The laptop is stolen: revoke it from the work computer");
    let mut c = w.keyward(&w.computers[work]);
    c.args(["revoke", "laptop", "--yes"]);
    let out = c.output()?;
    show_steps(out, "keyward revoke", 2)?;
    took(t);

    // 7. The refusal.
    let t = step(
        7,
        "The laptop's key is refused, and its daemon knows it was revoked",
    );
    let mut c = w.keyward(&w.computers[laptop]);
    c.args(["status", "--check"]);
    let out = c.output()?;
    for l in String::from_utf8_lossy(&out.stdout).lines().take(3) {
        println!("      │ {l}");
    }
    let mut c = w.keyward(&w.computers[laptop]);
    c.args(["credential-process", "--profile", "alice-laptop"]);
    let out = c.output()?;
    if out.status.success() {
        bail!("the revoked laptop still got credentials");
    }
    for l in String::from_utf8_lossy(&out.stderr).lines().take(2) {
        println!("      │ {l}");
    }
    let mut c = w.keyward(&w.computers[work]);
    c.args(["machines"]);
    show(&c.output()?, "keyward machines", 4)?;
    took(t);

    println!(
        "\nDone in {:.1}s. That was keyward: install it for real with ./install/install.sh",
        started_all.elapsed().as_secs_f64()
    );
    drop(w);
    LIVE.lock().map_err(|_| anyhow::anyhow!("lock"))?.clear();
    Ok(())
}

async fn prepare_account(admin: &Aws) -> Result<String> {
    use crate::iam::describe;
    admin
        .iam
        .create_group()
        .group_name("developers")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("create group: {}", describe(&e)))?;
    admin
        .s3
        .create_bucket()
        .bucket("alice-data")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("create bucket: {}", describe(&e)))?;
    let key = admin
        .kms
        .create_key()
        .description("keyward demo key")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("create key: {}", describe(&e)))?;
    key.key_metadata()
        .and_then(|m| m.arn())
        .map(str::to_owned)
        .context("the emulator made a key without an ARN")
}
