//! Clients verify the daemon before they send anything, and never run a command a
//! daemon sent. Fake daemons here run as this same user (the other-user attack is in
//! the e2e suite, which can switch users): a linked directory or socket is refused, a
//! daemon that accepts and never answers is called hung within seconds, and a reply
//! that names an mfa_process runs nothing.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward_proto::client::Client;
use keyward_proto::credential_process::{fetch, Prompt};
use keyward_proto::paths::SOCKET_NAME;

fn private_dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// A listener that counts connections and, for each, runs `answer`.
fn fake_daemon(
    socket: &Path,
    answer: fn(UnixStream),
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let listener = UnixListener::bind(socket).unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || answer(s));
        }
    });
    seen
}

fn never_answers(s: UnixStream) {
    std::thread::sleep(Duration::from_secs(120));
    drop(s);
}

fn seen(n: &std::sync::atomic::AtomicUsize) -> usize {
    n.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_linked_directory_or_socket_is_refused_before_connecting() {
    let t = tempfile::tempdir().unwrap();
    let real = private_dir(t.path(), "real");
    let count = fake_daemon(&real.join(SOCKET_NAME), never_answers);
    let linked_dir = t.path().join("linked");
    std::os::unix::fs::symlink(&real, &linked_dir).unwrap();
    let e = Client::new(linked_dir.join(SOCKET_NAME))
        .status()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");

    let other = private_dir(t.path(), "other");
    std::os::unix::fs::symlink(real.join(SOCKET_NAME), other.join(SOCKET_NAME)).unwrap();
    let e = Client::new(other.join(SOCKET_NAME)).status().unwrap_err();
    assert!(e.to_string().contains("not a socket"), "{e}");

    let open = t.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = Client::new(open.join(SOCKET_NAME)).status().unwrap_err();
    assert!(e.to_string().contains("expected 700"), "{e}");
    assert_eq!(seen(&count), 0, "nothing reached the listener");
}

#[test]
fn a_daemon_that_accepts_and_never_answers_is_called_hung_within_seconds() {
    let t = tempfile::tempdir().unwrap();
    let dir = private_dir(t.path(), "run");
    let count = fake_daemon(&dir.join(SOCKET_NAME), never_answers);
    let client = Client::new(dir.join(SOCKET_NAME));
    let e = fetch(&client, "dev", Prompt::Never).unwrap_err();
    assert!(
        e.message.contains("did not answer within") && e.message.contains("keyward daemon restart"),
        "{}",
        e.message
    );
    assert!(seen(&count) >= 1);
}

/// Answers every request with `mfa_required` naming a command, as a fake daemon of
/// protocol 2 did, then credentials.
fn names_a_command(mut s: UnixStream) {
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf);
    let marker = std::env::temp_dir().join(format!("keyward-pwned-{}", std::process::id()));
    let body = format!(
        r#"{{"kind":"mfa_required","message":"code please","mfa_process":["touch","{}"]}}"#,
        marker.display()
    );
    let _ = write!(
        s,
        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn a_command_named_in_a_reply_is_never_run() {
    let t = tempfile::tempdir().unwrap();
    // This test's own config dir: no mfa_process of the user's anywhere.
    std::env::set_var("XDG_CONFIG_HOME", t.path().join("config"));
    std::env::set_var("HOME", t.path());
    let dir = private_dir(t.path(), "run");
    fake_daemon(&dir.join(SOCKET_NAME), names_a_command);
    let client = Client::new(dir.join(SOCKET_NAME));
    let e = fetch(&client, "dev", Prompt::IfTerminal).unwrap_err();
    let marker = std::env::temp_dir().join(format!("keyward-pwned-{}", std::process::id()));
    assert!(!marker.exists(), "the daemon's command ran");
    assert!(e.message.contains("code please"), "{}", e.message);
}
