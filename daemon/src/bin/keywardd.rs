//! keywardd: the per-user daemon. See `keyward_daemon` for the parts.

#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::ExitCode;
use std::sync::Arc;

/// Freed heap blocks are wiped: copies of keys and tokens in other crates' buffers
/// do not outlive their use.
#[global_allocator]
static ALLOCATOR: keyward_daemon::harden::ZeroingAllocator =
    keyward_daemon::harden::ZeroingAllocator;

use anyhow::{bail, Context, Result};
use keyward_daemon::broker::Broker;
use keyward_daemon::keychain::{KeyStore, KeychainError, OsKeyStore, ProfileStore, StoreKind};
use keyward_daemon::{config, harden, server, sts};
use keyward_proto::paths;
use rustix::fs::{flock, FlockOperation};
use tokio::net::UnixListener;
use tokio::sync::watch;

/// The accept queue's length (see `bind_short_backlog`).
const ACCEPT_BACKLOG: i32 = 32;

/// Exit code when another daemon already serves this user.
const EXIT_ALREADY_RUNNING: u8 = 3;

const USAGE: &str = "usage: keywardd [--detach]

Serves AWS session credentials to `keyward credential-process` over
$XDG_RUNTIME_DIR/keyward/keywardd.sock. Logs go to stderr, filtered by KEYWARD_LOG
(e.g. KEYWARD_LOG=debug). Normally started by systemd/launchd or on demand by keyward.";

fn main() -> ExitCode {
    let mut detach = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--detach" => detach = true,
            "-V" | "--version" => {
                println!(
                    "keywardd {} (protocol {})",
                    env!("CARGO_PKG_VERSION"),
                    keyward_proto::PROTOCOL_VERSION
                );
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("keywardd: unknown argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    init_logging();
    if detach {
        // Leave the spawning terminal's session: no controlling tty, no SIGHUP.
        let _ = rustix::process::setsid();
    }
    for problem in harden::harden() {
        tracing::warn!(%problem, "hardening step failed");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keywardd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<AlreadyRunning>().is_some() => {
            eprintln!("keywardd: {e:#}");
            ExitCode::from(EXIT_ALREADY_RUNNING)
        }
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("keywardd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(keyward_daemon::logging::filter("info"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

#[derive(Debug)]
struct AlreadyRunning(String);

impl std::fmt::Display for AlreadyRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "already running ({}); stop it with `keyward daemon stop`",
            self.0
        )
    }
}

impl std::error::Error for AlreadyRunning {}

async fn run() -> Result<()> {
    let dir = paths::ensure_runtime_dir().context("unsafe or unusable runtime directory")?;
    let mut lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(dir.join(paths::LOCK_NAME))
        .with_context(|| format!("cannot open the lock file in {}", dir.display()))?;
    if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = lock.read_to_string(&mut holder);
        let pid = holder.trim();
        return Err(AlreadyRunning(if pid.is_empty() {
            "pid unknown".into()
        } else {
            format!("pid {pid}")
        })
        .into());
    }
    lock.set_len(0)?;
    lock.rewind()?;
    writeln!(lock, "{}", std::process::id())?;

    // Everything that can fail is checked before the socket exists, so a client that
    // started us hears our reason, never a reset connection; see `start_failure`.
    let config_path = config::default_path()?;
    let cfg = match config::Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => bail!("{e}; fix it, or re-create it with `keyward setup`"),
    };
    let store = ProfileStore::new()?;
    probe_keychain(&cfg, &store).await?;
    let upstream = sts::AwsSts::from_env().await;
    let broker = Broker::with_mfa_store(
        upstream,
        Arc::new(store),
        config_path.clone(),
        Some(dir.join(paths::MFA_STEPS_NAME)),
    );
    let (shutdown, _) = watch::channel(false);
    spawn_signal_handler(shutdown.clone())?;
    let listener = listen(&dir)?;
    let socket = dir.join(paths::SOCKET_NAME);
    spawn_key_checks(broker.clone());
    tracing::info!(
        pid = std::process::id(),
        socket = %socket.display(),
        config = %config_path.display(),
        version = env!("CARGO_PKG_VERSION"),
        "keywardd listening"
    );
    server::serve(listener, broker.clone(), shutdown).await;
    let n = broker.lock(true);
    let _ = std::fs::remove_file(&socket);
    tracing::info!(sessions = n, "stopped; sessions dropped and zeroized");
    drop(lock);
    Ok(())
}

/// Binds the socket, 0600. We hold the lock, so a socket already there was left by a
/// daemon that died: reclaim it.
fn listen(dir: &std::path::Path) -> Result<UnixListener> {
    let socket = dir.join(paths::SOCKET_NAME);
    match std::fs::remove_file(&socket) {
        Ok(()) => tracing::info!(path = %socket.display(), "reclaimed a stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot remove the stale socket {}: {e}", socket.display()),
    }
    // Created 0600 from the start: the umask covers the window before the chmod.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = bind_short_backlog(&socket);
    rustix::process::umask(old);
    let listener = bound.with_context(|| format!("cannot listen on {}", socket.display()))?;
    if let Err(e) = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)) {
        let _ = std::fs::remove_file(&socket);
        bail!("cannot make {} private: {e}", socket.display());
    }
    Ok(listener)
}

/// Binds with a short accept queue: connections beyond it wait in `connect` rather than
/// in a long queue, so a flood of idle connections cannot put a thousand strangers
/// ahead of the helper (the daemon sheds idle connections as it accepts).
fn bind_short_backlog(path: &std::path::Path) -> std::io::Result<UnixListener> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    rustix::net::listen(&fd, ACCEPT_BACKLOG)?;
    UnixListener::from_std(std::os::unix::net::UnixListener::from(fd))
}

/// A daemon that cannot reach the keychain its keys are in is useless: say so at start.
/// Keys in encrypted files need no Secret Service (the headless case).
async fn probe_keychain(cfg: &config::Config, store: &ProfileStore) -> Result<()> {
    let kinds: Vec<StoreKind> = cfg
        .profiles
        .iter()
        .filter(|(_, p)| p.role_arn.is_none())
        .map(|(name, _)| store.kind_of(name))
        .collect();
    // With some keys in files, serve those; a profile whose key is nowhere says so
    // when it is asked for.
    if !kinds.contains(&StoreKind::OsKeychain) || kinds.contains(&StoreKind::EncryptedFile) {
        return Ok(());
    }
    let probe = tokio::task::spawn_blocking(|| OsKeyStore.get("keyward-probe")).await?;
    match probe {
        Err(e @ KeychainError::Unavailable(_)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// While sessions are held, ask STS every 10 minutes whether this computer's key
/// still exists, so a revoked computer notices without a new MFA prompt.
fn spawn_key_checks<U: keyward_daemon::sts::Upstream>(broker: Arc<Broker<U>>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        every.tick().await;
        loop {
            every.tick().await;
            broker.check_keys(true).await;
        }
    });
}

fn spawn_signal_handler(shutdown: watch::Sender<bool>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        let _ = shutdown.send(true);
    });
    Ok(())
}
