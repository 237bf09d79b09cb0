//! The in-process daemon fixture (atuin's `lifecycle.rs` shape): `(Client, Handle,
//! TempDir)` over a fake STS and the memory key store, on a real Unix socket in a
//! private directory. Shared by the lifecycle, hostile-input and local-trust tests.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keyward_daemon::broker::Broker;
use keyward_daemon::keychain::{KeyStore, MemoryKeyStore};
use keyward_daemon::session::{AccessKey, Session, SessionKind};
use keyward_daemon::sts::{AssumeRoleRequest, Caller, StsError, Upstream};
use keyward_proto::client::Client;
use keyward_proto::PROTOCOL_VERSION;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// STS that hands out a fresh session for any code.
#[derive(Default)]
pub struct FakeState {
    pub calls: AtomicUsize,
}

#[derive(Clone, Default)]
pub struct FakeSts(pub Arc<FakeState>);

fn session(n: usize, kind: SessionKind, d: Duration) -> Session {
    Session::new(
        format!("ASIAFAKE{n:08}"),
        SecretString::from("fake-secret"),
        SecretString::from("fake-token"),
        SystemTime::now() + d,
        kind,
    )
}

impl Upstream for FakeSts {
    async fn get_session_token(
        &self,
        _k: AccessKey,
        _r: Option<String>,
        _s: String,
        _c: Zeroizing<String>,
        d: Duration,
    ) -> Result<Session, StsError> {
        Ok(session(
            self.0.calls.fetch_add(1, Ordering::SeqCst),
            SessionKind::Base,
            d,
        ))
    }

    async fn assume_role(&self, _c: Caller, req: AssumeRoleRequest) -> Result<Session, StsError> {
        Ok(session(
            self.0.calls.fetch_add(1, Ordering::SeqCst),
            SessionKind::Role,
            req.duration,
        ))
    }

    async fn check_key(&self, _k: AccessKey, _r: Option<String>) -> Result<(), StsError> {
        Ok(())
    }
}

/// A running daemon; dropping it shuts it down.
pub struct Handle {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub fake: FakeSts,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub const CONFIG: &str = r#"
[profiles.dev]
mfa_serial = "arn:aws:iam::123456789012:mfa/alice-dev"
"#;

/// `(Client, Handle, TempDir)`: the daemon on a socket in a private temp dir.
pub fn daemon() -> (Client, Handle, tempfile::TempDir) {
    daemon_with(CONFIG)
}

/// [`daemon`] with another config file.
pub fn daemon_with(config_text: &str) -> (Client, Handle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // Clients talk only to a socket in a private directory of their own.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_text).unwrap();
    let store = Arc::new(MemoryKeyStore::default());
    store
        .set(
            "dev",
            &AccessKey::new(
                String::from("fake-access-key-id-0001"),
                SecretString::from("long-term-secret".to_owned()),
            ),
        )
        .unwrap();
    let fake = FakeSts::default();
    let socket = dir.path().join("keywardd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let (stop, _) = tokio::sync::watch::channel(false);
    let (upstream, shutdown) = (fake.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            let broker = Broker::new(upstream, store as Arc<dyn KeyStore>, config);
            keyward_daemon::server::serve(listener, broker, shutdown).await;
        });
    });
    let client = Client::new(socket).with_timeout(Duration::from_secs(20));
    (
        client,
        Handle {
            stop,
            thread: Some(thread),
            fake,
        },
        dir,
    )
}

/// Sends raw bytes, returns whatever came back before the daemon closed.
pub fn raw(client: &Client, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(client.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Write from another thread: the daemon may answer (and hang up) before reading it all.
    let mut writer = s.try_clone().unwrap();
    let bytes = bytes.to_vec();
    let t = std::thread::spawn(move || {
        let _ = writer.write_all(&bytes);
        let _ = writer.shutdown(std::net::Shutdown::Write);
    });
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    let _ = t.join();
    String::from_utf8_lossy(&out).into_owned()
}

pub fn assert_still_serving(client: &Client) {
    assert_eq!(
        client.status().expect("still serving").protocol,
        PROTOCOL_VERSION
    );
}
