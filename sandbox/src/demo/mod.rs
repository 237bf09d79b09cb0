//! `keyward-demo`: the whole keyward story on a throw-away emulated AWS that enforces
//! IAM: the first computer, MFA login, the AWS CLI, a second computer enrolled by
//! pairing, the first one stolen and revoked from the second, and its refusal.
//! It uses the `keyward` and `keyward-phone` installed next to it, its own computers
//! (HOME and a private keychain each), and removes everything when it ends, also on
//! Ctrl-C.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::aws::{EmulatedAws, ROOT_KEY_ID, ROOT_SECRET};
use crate::computer::{missing, Computer, Shared, KEYCHAIN_PARTS};
use crate::emulator::{Emulator, NoFaults};

mod story;

const STEPS: usize = 7;

/// The demo's throw-away world; dropping it stops and removes everything.
pub struct World {
    root: Option<tempfile::TempDir>,
    pub aws: Option<EmulatedAws>,
    pub computers: Vec<Computer>,
    pub python: PathBuf,
    bin_dir: PathBuf,
}

impl World {
    fn computer(&mut self, name: &str) -> Result<usize> {
        let shared = Shared {
            endpoint: self.aws.as_ref().context("AWS first")?.url(),
            path_prefix: vec![self.python.join("bin")],
            vars: Vec::new(),
        };
        let c = Computer::with_keychain(self.root(), name, shared)?;
        self.computers.push(c);
        Ok(self.computers.len() - 1)
    }

    fn root(&self) -> &Path {
        self.root.as_ref().expect("until drop").path()
    }

    /// `keyward ARGS` on computer `c`, in a process group of its own: the terminal's
    /// Ctrl-C reaches only the demo, which stops everything and cleans up.
    pub fn keyward(&self, c: usize, args: &[&str]) -> Command {
        let mut cmd = self.computers[c].command(self.bin_dir.join("keyward"));
        cmd.args(args).process_group(0);
        cmd
    }

    /// The same, with the account root's credentials (the bootstrap admin).
    pub fn keyward_as_root(&self, c: usize, args: &[&str]) -> Command {
        let mut cmd = self.keyward(c, args);
        cmd.env("AWS_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ROOT_SECRET);
        cmd
    }

    /// The AWS CLI on computer `c`.
    pub fn aws_cli(&self, c: usize, args: &[&str]) -> Command {
        let mut cmd = self.computers[c].command(self.python.join("bin/aws"));
        cmd.arg("--endpoint-url")
            .arg(self.endpoint())
            .args(args)
            .process_group(0);
        cmd
    }

    pub fn endpoint(&self) -> String {
        self.aws.as_ref().map(EmulatedAws::url).unwrap_or_default()
    }

    /// The emulated phone of `device`, as an mfa_process.
    pub fn phone(&self, device: &str) -> String {
        format!(
            "{} --url {} --device {device}",
            self.bin_dir.join("keyward-phone").display(),
            self.endpoint()
        )
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Computers stop their daemons and keychains; then the emulated AWS; then files.
        self.computers.clear();
        self.aws = None;
        if let Some(root) = self.root.take() {
            let path = root.path().display().to_string();
            drop(root);
            println!("cleaned up: every demo process stopped, {path} removed");
        }
    }
}

pub fn step(n: usize, what: &str) -> Instant {
    println!("\n[{n}/{STEPS}] {what}");
    Instant::now()
}

/// A spinner for a wait that outlasts 2 s, on a terminal only; cleared when dropped.
pub struct Waiting {
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Waiting {
    pub fn start(what: &str) -> Self {
        use std::io::{IsTerminal as _, Write as _};
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let what = what.to_owned();
        let tty = std::io::stdout().is_terminal();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut shown = false;
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut i = 0;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if tty && started.elapsed() > std::time::Duration::from_secs(2) {
                    print!(
                        "\r      {} {what} ({}s)",
                        frames[i % frames.len()],
                        started.elapsed().as_secs()
                    );
                    let _ = std::io::stdout().flush();
                    shown = true;
                    i += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if shown {
                print!("\r\x1b[2K");
                let _ = std::io::stdout().flush();
            }
        });
        Self {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn took(started: Instant) {
    println!("      ({:.1}s)", started.elapsed().as_secs_f64());
}

/// Shows a command's output, indented, and insists it succeeded. `lines` caps what is
/// shown; the `✓`/`…` step lines of keyward come first.
pub fn show(out: &Output, what: &str, lines: usize) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let steps = stderr
        .lines()
        .filter(|l| l.starts_with("✓ ") || l.starts_with("… "));
    for l in steps
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

fn bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate keyward-demo")?;
    let dir = exe
        .parent()
        .context("keyward-demo has no directory")?
        .to_path_buf();
    for b in [
        "keyward",
        "keywardd",
        "keyward-credential-process",
        "keyward-phone",
    ] {
        if !dir.join(b).is_file() {
            bail!("{} is missing next to keyward-demo; install keyward with ./install/install.sh --demo", dir.join(b).display());
        }
    }
    Ok(dir)
}

fn prepare() -> Result<World> {
    if let Some(part) = missing(KEYCHAIN_PARTS) {
        bail!("the demo gives each emulated computer a private Secret Service and needs `{part}`: install gnome-keyring and dbus (`sudo apt install gnome-keyring dbus`). Your own keychain is never used.");
    }
    let bin_dir = bin_dir()?;
    let python = crate::pyenv::ensure(&|m| println!("{m}"))?;
    let root = tempfile::Builder::new().prefix("keyward-demo-").tempdir()?;
    println!("workspace: {}", root.path().display());
    interrupt::watch(root.path());
    Ok(World {
        root: Some(root),
        aws: None,
        computers: Vec::new(),
        python,
        bin_dir,
    })
}

fn start_aws(w: &mut World) -> Result<(usize, usize)> {
    let _wait = Waiting::start("starting moto and a private keychain per computer");
    let aws = EmulatedAws::start(
        &w.python.join("bin/moto_server"),
        w.root(),
        Emulator::default(),
        Arc::new(NoFaults),
    )?;
    interrupt::child(aws.moto.pid());
    w.aws = Some(aws);
    let laptop = w.computer("laptop")?;
    let work = w.computer("work")?;
    Ok((laptop, work))
}

/// Runs the story; the exit code is 0 when it ran to the end.
pub fn main() -> ExitCode {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        println!("keyward-demo: the whole keyward story on a throw-away emulated AWS (moto plus keyward's emulator, which enforces IAM), with private keychains. Nothing touches your ~/.aws, your keychain or any AWS account. The first run installs moto and the AWS CLI into ~/.cache/keyward/python.");
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    println!("keyward demo: one IAM user per computer, its key in the keychain, MFA sessions for every AWS tool.");
    println!("Everything runs against a throw-away emulated AWS on 127.0.0.1 that enforces IAM like AWS does.");
    println!("Nothing here touches your ~/.aws, your keychain or any AWS account.");
    let result = prepare().and_then(|mut w| {
        let (laptop, work) = start_aws(&mut w)?;
        story::run(&w, laptop, work)
    });
    if interrupt::requested() {
        // The Ctrl-C thread owns the exit (code 130) once it has cleaned up.
        loop {
            std::thread::park();
        }
    }
    match result {
        Ok(()) => {
            println!(
                "\nDone in {:.1}s. That was keyward: install it for real with ./install/install.sh",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keyward-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C: the terminal's SIGINT reaches only this process (children run in their own
/// process groups, so moto prints no traceback); this stops every daemon and child the
/// demo started and removes its files.
mod interrupt {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    static ROOT: Mutex<Option<PathBuf>> = Mutex::new(None);
    static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    static REQUESTED: AtomicBool = AtomicBool::new(false);

    /// True once Ctrl-C arrived: the story's failures after that are the cleanup's doing.
    pub fn requested() -> bool {
        REQUESTED.load(Ordering::SeqCst)
    }

    pub fn child(pid: u32) {
        CHILDREN.lock().expect("children").push(pid);
    }

    pub fn watch(root: &Path) {
        *ROOT.lock().expect("root") = Some(root.to_path_buf());
        std::thread::spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    REQUESTED.store(true, Ordering::SeqCst);
                    eprintln!("\ninterrupted: cleaning up");
                    clean_up();
                    std::process::exit(130);
                }
            });
        });
    }

    fn term(pid: u32) {
        if let Some(p) = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(0)) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
    }

    fn clean_up() {
        let Some(root) = ROOT.lock().expect("root").clone() else {
            return;
        };
        for name in ["laptop", "work"] {
            let lock = root
                .join(name)
                .join("run/keyward")
                .join(keyward_proto::paths::LOCK_NAME);
            if let Some(pid) = std::fs::read_to_string(lock)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                term(pid);
            }
        }
        for pid in CHILDREN.lock().expect("children").iter() {
            term(*pid);
        }
        crate::computer::stop_all_children();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(&root);
        println!("cleaned up {}", root.display());
    }
}
