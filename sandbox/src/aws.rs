//! The emulated AWS as a running thing: a moto server, and keyward's emulator in front
//! of it on its own loopback port and runtime thread. Requests signed with
//! [`ROOT_KEY_ID`] act as the account's root.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::emulator::{self, Emulator, Interceptor};

/// The throw-away account root's key (the emulator knows it; it is no secret).
pub const ROOT_KEY_ID: &str = "sandbox-root-key-id";
pub const ROOT_SECRET: &str = "sandbox-root-secret-not-a-real-one";

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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

/// moto_server, with moto's own partial bucket- and key-policy checks turned off. The
/// emulator decides every request with iam-rs first; moto's checks ignore conditions,
/// so a deny for "everyone but the whitelist" (or an MFA allow) refuses what AWS
/// allows.
const MOTO_WITHOUT_POLICY_GUESSES: &str = "\
import sys
import moto.s3.models as s3
from moto.iam.access_control import PermissionResult
s3.FakeBucket.get_permission = lambda self, action, resource: PermissionResult.NEUTRAL
import moto.kms.responses as kms
kms.validate_policy = lambda key, action: None
from moto.server import main
main(sys.argv[1:])
";

/// The Python that runs a `moto_server` script (its `#!` line).
fn interpreter(program: &Path) -> Option<std::path::PathBuf> {
    let text = std::fs::read(program).ok()?;
    let first = text.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?.trim();
    let python = line.split_whitespace().next()?;
    (!line.contains(' ') && Path::new(python).is_file()).then(|| python.into())
}

/// moto's server process.
pub struct MotoServer {
    child: Child,
    pub port: u16,
}

impl MotoServer {
    /// Starts `moto_server` (the program given, or the one on PATH) on a free port.
    pub fn start(program: &Path, home: &Path) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = match interpreter(program) {
            Some(python) => {
                let mut c = Command::new(python);
                c.args(["-c", MOTO_WITHOUT_POLICY_GUESSES]);
                c
            }
            None => Command::new(program),
        };
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Its own process group: a terminal's Ctrl-C is ours to handle, not moto's.
            .process_group(0)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let server = Self { child, port };
        if !wait_for_port(port, Duration::from_secs(30)) {
            bail!("moto_server did not listen on port {port} within 30 s");
        }
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// keyward's emulator, serving on a loopback port from its own thread.
pub struct EmulatorServer {
    pub addr: std::net::SocketAddr,
    pub emulator: Emulator,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmulatorServer {
    /// Starts in front of `upstream` (moto), with `faults` seeing every request first.
    pub fn start(upstream: &str, emulator: Emulator, faults: Arc<dyn Interceptor>) -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        emulator.add_root_key(ROOT_KEY_ID, ROOT_SECRET);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let emu = emulator.clone();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let thread = std::thread::Builder::new()
            .name("keyward-emulator".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
                        emulator::serve(l, emu, upstream, faults, stop_rx).await;
                    }
                });
            })?;
        Ok(Self {
            addr,
            emulator,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EmulatorServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// moto plus the emulator: one throw-away AWS account on loopback.
pub struct EmulatedAws {
    pub server: EmulatorServer,
    pub moto: MotoServer,
}

impl EmulatedAws {
    pub fn start(
        moto_server: &Path,
        home: &Path,
        emulator: Emulator,
        faults: Arc<dyn Interceptor>,
    ) -> Result<Self> {
        let moto = MotoServer::start(moto_server, home)?;
        let server = EmulatorServer::start(&moto.url(), emulator, faults)?;
        Ok(Self { server, moto })
    }

    /// The endpoint clients use (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn emulator(&self) -> &Emulator {
        &self.server.emulator
    }
}
