//! Finding the daemon, and starting it when nobody else did.
//!
//! Like atuin's `ensure_daemon_running`: take a start lock, probe again, spawn, poll, and
//! when the start fails report the daemon's own reason rather than a bare timeout.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use crate::client::Client;
use crate::paths;

const START_TIMEOUT: Duration = Duration::from_secs(8);

fn daemon_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// The `keywardd` next to this executable, else the one on PATH.
pub fn daemon_binary() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let sibling = dir.join("keywardd");
            if sibling.is_file() {
                return sibling;
            }
        }
    }
    PathBuf::from("keywardd")
}

/// Makes sure a daemon answers on the client's socket, starting one if needed.
pub fn ensure_running(client: &Client) -> Result<(), String> {
    match client.connect() {
        Ok(_) => return Ok(()),
        Err(e) if daemon_missing(&e) => {}
        Err(e) => {
            return Err(format!(
                "cannot reach keywardd at {}: {e}",
                client.socket().display()
            ))
        }
    }
    let dir = paths::ensure_runtime_dir().map_err(|e| format!("cannot start keywardd: {e}"))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join(paths::START_LOCK_NAME))
        .map_err(|e| format!("cannot open the start lock in {}: {e}", dir.display()))?;
    flock(&lock, FlockOperation::LockExclusive)
        .map_err(|e| format!("cannot take the start lock: {e}"))?;
    // Someone else may have started it while we waited for the lock.
    if client.connect().is_ok() {
        return Ok(());
    }
    start(client, &dir)
}

fn start(client: &Client, dir: &std::path::Path) -> Result<(), String> {
    let log_path = dir.join(paths::LOG_NAME);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let log_start = log.seek(SeekFrom::End(0)).unwrap_or(0);
    let bin = daemon_binary();
    let mut child = Command::new(&bin)
        .arg("--detach")
        // The daemon reads its key from the keychain, never from the environment.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {}: {e}; is keyward installed? (see ./install/install.sh)",
                bin.display()
            )
        })?;
    let started = Instant::now();
    loop {
        if client.connect().is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut tail = String::new();
            let _ = log.seek(SeekFrom::Start(log_start));
            let _ = log.take(8192).read_to_string(&mut tail);
            let reason = tail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output")
                .trim()
                .to_owned();
            return Err(format!("keywardd failed to start ({status}): {reason}"));
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "keywardd did not answer within {}s; see {}",
                START_TIMEOUT.as_secs(),
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
