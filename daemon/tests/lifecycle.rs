//! The daemon in-process, over a real Unix socket, with a fake STS and the memory key
//! store: the socket, the typed protocol and hostile input, on any machine with plain
//! `cargo test` (no moto, no D-Bus).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::{assert_still_serving, daemon, raw};
use keyward_proto::client::CallError;
use keyward_proto::{CredentialsRequest, ErrorKind, MfaSubmit, PROTOCOL_HEADER, PROTOCOL_VERSION};

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
