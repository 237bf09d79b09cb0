//! The daemon in-process, over a real Unix socket, with a fake STS and the memory key
//! store: the socket, the typed protocol and hostile input, on any machine with plain
//! `cargo test` (no moto, no D-Bus).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keyward_daemon::broker::Broker;
use keyward_daemon::keychain::{KeyStore, MemoryKeyStore};
use keyward_daemon::session::{AccessKey, Session, SessionKind};
use keyward_daemon::sts::{AssumeRoleRequest, Caller, StsError, Upstream};
use keyward_proto::client::{CallError, Client};
use keyward_proto::{CredentialsRequest, ErrorKind, MfaSubmit, PROTOCOL_HEADER, PROTOCOL_VERSION};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// STS that hands out a fresh session for any code.
#[derive(Default)]
struct FakeState {
    calls: AtomicUsize,
}

#[derive(Clone, Default)]
struct FakeSts(Arc<FakeState>);

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
struct Handle {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    fake: FakeSts,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const CONFIG: &str = r#"
[profiles.dev]
mfa_serial = "arn:aws:iam::123456789012:mfa/alice-dev"
"#;

/// `(Client, Handle, TempDir)`: the daemon on a socket in a private temp dir.
fn daemon() -> (Client, Handle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // Clients talk only to a socket in a private directory of their own.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let keys = Arc::new(MemoryKeyStore::default());
    keys.set(
        "dev",
        &AccessKey::new(
            String::from("AKIAFAKEFAKEFAKE0001"),
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
            let broker = Broker::new(upstream, keys as Arc<dyn KeyStore>, config);
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
fn raw(client: &Client, bytes: &[u8]) -> String {
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

fn assert_still_serving(client: &Client) {
    assert_eq!(
        client.status().expect("still serving").protocol,
        PROTOCOL_VERSION
    );
}

#[test]
fn the_typed_protocol_round_trips() {
    let (client, handle, _dir) = daemon();
    let st = client.status().unwrap();
    assert_eq!(st.protocol, PROTOCOL_VERSION);
    let first = client
        .credentials(&CredentialsRequest {
            profile: "dev".into(),
            can_prompt: true,
        })
        .unwrap();
    assert_eq!(first.error().kind, ErrorKind::MfaRequired);
    let creds = client
        .submit_mfa(&MfaSubmit {
            profile: "dev".into(),
            code: "123456".into(),
        })
        .unwrap();
    assert!(creds.is_success());
    let v: serde_json::Value = serde_json::from_slice(&creds.body).unwrap();
    assert_eq!(v["Version"], 1);
    assert_eq!(handle.fake.0.calls.load(Ordering::SeqCst), 1);
    assert_eq!(client.status().unwrap().sessions.len(), 1);
    let checked = client.check().unwrap();
    assert!(checked.checked.iter().all(|c| c.ok), "{checked:?}");
    assert_eq!(client.lock(false).unwrap().forgotten, 1);
    assert!(client.status().unwrap().sessions.is_empty());
    assert!(client.shutdown().unwrap().stopping);
}

#[test]
fn hostile_input_gets_clear_errors_and_the_daemon_keeps_serving() {
    let (client, _handle, _dir) = daemon();
    let v = PROTOCOL_VERSION;
    let garbage = raw(&client, b"\x00\xff\xfe\x16\x03\x01 not http at all\r\n\r\n");
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );
    assert_still_serving(&client);

    let mut big = format!("POST /v1/credentials HTTP/1.1\r\nhost: k\r\n{PROTOCOL_HEADER}: {v}\r\ncontent-length: {}\r\n\r\n", 1024 * 1024).into_bytes();
    big.extend(std::iter::repeat_n(b'{', 1024 * 1024));
    let resp = raw(&client, &big);
    assert!(
        resp.starts_with("HTTP/1.1 413") && resp.contains("\"kind\":\"too_large\""),
        "{resp}"
    );
    assert_still_serving(&client);

    let resp = raw(&client, format!("POST /v1/credentials HTTP/1.1\r\nhost: k\r\n{PROTOCOL_HEADER}: {v}\r\ncontent-length: 9\r\n\r\n{{\"nope\":1").as_bytes());
    assert!(
        resp.starts_with("HTTP/1.1 400") && resp.contains("bad_request"),
        "{resp}"
    );
    let resp = raw(&client, format!("POST /v1/credentials HTTP/1.1\r\nhost: k\r\n{PROTOCOL_HEADER}: 999\r\ncontent-length: 2\r\n\r\n{{}}").as_bytes());
    assert!(
        resp.starts_with("HTTP/1.1 400")
            && resp.contains("protocol_mismatch")
            && resp.contains("keyward daemon restart"),
        "{resp}"
    );
    let resp = raw(&client, format!("DELETE /v1/credentials HTTP/1.1\r\nhost: k\r\n{PROTOCOL_HEADER}: {v}\r\ncontent-length: 0\r\n\r\n").as_bytes());
    assert!(
        resp.starts_with("HTTP/1.1 400") && resp.contains("no route"),
        "{resp}"
    );

    let resp = client
        .credentials(&CredentialsRequest {
            profile: "x".into(),
            can_prompt: false,
        })
        .unwrap();
    assert_eq!(resp.status, 404);
    assert_eq!(resp.error().kind, ErrorKind::UnknownProfile);
    let resp = client
        .submit_mfa(&MfaSubmit {
            profile: "dev".into(),
            code: "12".into(),
        })
        .unwrap();
    assert_eq!(
        resp.error().kind,
        ErrorKind::MfaInvalid,
        "a malformed code never reaches STS"
    );
    match client.lock(false) {
        Ok(r) => assert_eq!(r.forgotten, 0),
        Err(e @ (CallError::Refused(_) | CallError::Unreachable(_))) => panic!("lock failed: {e}"),
    }
    assert_still_serving(&client);
}

#[test]
fn silent_slow_and_idle_clients_are_dropped() {
    let (client, _handle, _dir) = daemon();
    let sock = client.socket().to_path_buf();
    let probes: [&[u8]; 3] = [
        b"",                                           // connects, says nothing
        b"GET /v1/status HTTP/1.1\r\nhost: k\r\n",     // half a header, then silence
        b"GET /v1/status HTTP/1.1\r\nhost: k\r\n\r\n", // one request, then idles on keep-alive
    ];
    let took: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = probes
            .iter()
            .map(|bytes| {
                let sock = sock.clone();
                s.spawn(move || {
                    let mut c = UnixStream::connect(&sock).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    c.write_all(bytes).unwrap();
                    let started = std::time::Instant::now();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                    }
                    started.elapsed()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for t in &took {
        assert!(
            *t < Duration::from_secs(15),
            "a client that stalls is dropped (header timeout 5 s): {took:?}"
        );
    }
    assert_still_serving(&client);
}
