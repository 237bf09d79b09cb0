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

/// The variables a daemon started on demand inherits: where home, config and the
/// keychain's D-Bus are, the locale, keyward's log filter, and the non-secret AWS
/// settings of [`crate::RELEVANT_ENV`] (endpoints, region, CA bundle, proxy).
const DAEMON_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "KEYWARD_LOG",
];

fn passes_to_daemon(name: &str) -> bool {
    DAEMON_ENV.contains(&name) || crate::RELEVANT_ENV.contains(&name)
}

/// When a request failed: the variables whose values differ between this process and
/// the daemon, which may be why (a daemon started from another shell).
pub fn environment_hint(daemon: &crate::Status) -> Option<String> {
    let mut diffs = Vec::new();
    for k in crate::RELEVANT_ENV {
        let mine = std::env::var(k).ok();
        let theirs = daemon.environment.get(*k).cloned();
        let mine_shown = mine.as_deref().map(crate::hide_userinfo);
        if mine_shown != theirs {
            let show = |v: Option<String>| v.unwrap_or_else(|| "unset".into());
            diffs.push(format!("{k}={} (here: {})", show(theirs), show(mine_shown)));
        }
    }
    (!diffs.is_empty()).then(|| {
        format!(
            "keywardd runs with {}; to start it with this shell's settings, run `keyward daemon restart`",
            diffs.join(", ")
        )
    })
}

fn daemon_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// The daemon log's last non-empty line: why a daemon that went away exited.
pub fn last_log_line() -> Option<String> {
    let text = std::fs::read(paths::runtime_dir().join(paths::LOG_NAME)).ok()?;
    let tail = &text[text.len().saturating_sub(8192)..];
    String::from_utf8_lossy(tail)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

/// Words for a connection the daemon dropped: it exited, and its log says why.
pub fn explain_gone(e: &io::Error) -> String {
    let exited = matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionRefused
    );
    if !exited {
        return format!("keywardd did not answer ({e})");
    }
    match last_log_line() {
        Some(line) => format!("keywardd exited; its last log line: {line}"),
        None => "keywardd exited and left no log line".to_owned(),
    }
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

/// Whether an error means nobody listens on the socket.
pub fn is_daemon_missing(e: &io::Error) -> bool {
    daemon_missing(e)
}

/// Makes sure a daemon of our protocol answers on the client's socket: starts one if
/// none runs, replaces one that speaks another protocol version.
pub fn ensure_running(client: &Client) -> Result<(), String> {
    match client.status() {
        Ok(st) if st.protocol == crate::PROTOCOL_VERSION => return Ok(()),
        Ok(st) => {
            return replace(
                client,
                &format!("protocol {} (keywardd {})", st.protocol, st.version),
            )
        }
        Err(e) if daemon_missing(&e) => {}
        // Something answers but not as we expect: an older or newer daemon.
        Err(e) if client.connect().is_ok() => {
            return replace(client, &format!("an unreadable status ({e})"))
        }
        Err(e) => {
            return Err(format!(
                "cannot reach keywardd at {}: {e}",
                client.socket().display()
            ))
        }
    }
    start_locked(client)
}

/// Stops a daemon that speaks another protocol version and starts ours.
pub fn replace(client: &Client, what: &str) -> Result<(), String> {
    let _lock = start_lock()?;
    if client
        .status()
        .is_ok_and(|s| s.protocol == crate::PROTOCOL_VERSION)
    {
        return Ok(());
    }
    eprintln!(
        "keyward: replacing a keywardd that speaks {what} with version {} (protocol {})",
        env!("CARGO_PKG_VERSION"),
        crate::PROTOCOL_VERSION
    );
    // `POST /v1/shutdown` is answered by every protocol version; the pid in the lock
    // file is the fallback.
    let _ = client.shutdown();
    if !wait_gone(client, Duration::from_secs(3)) {
        if let Some(pid) = std::fs::read_to_string(paths::runtime_dir().join(paths::LOCK_NAME))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if !wait_gone(client, Duration::from_secs(5)) {
            return Err(format!(
                "the old keywardd at {} does not stop; stop it and retry",
                client.socket().display()
            ));
        }
    }
    let dir = paths::ensure_runtime_dir().map_err(|e| format!("cannot start keywardd: {e}"))?;
    start(client, &dir)
}

fn wait_gone(client: &Client, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if client.connect().is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn start_lock() -> Result<std::fs::File, String> {
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
    Ok(lock)
}

/// Starts a daemon unless one appeared while we waited for the start lock.
fn start_locked(client: &Client) -> Result<(), String> {
    let _lock = start_lock()?;
    if client.connect().is_ok() {
        return Ok(());
    }
    let dir = paths::ensure_runtime_dir().map_err(|e| format!("cannot start keywardd: {e}"))?;
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
    let mut cmd = Command::new(&bin);
    // The daemon gets a fixed set of variables, never the caller's whole environment:
    // no credentials, no profile, nothing a later client would not expect.
    cmd.arg("--detach").env_clear();
    for (k, v) in std::env::vars_os() {
        if k.to_str().is_some_and(passes_to_daemon) {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
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
        // Started means answering: a daemon that listens and then fails is not.
        if client
            .status()
            .is_ok_and(|s| s.protocol == crate::PROTOCOL_VERSION)
        {
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
