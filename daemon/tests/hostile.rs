//! Every malformed-HTTP attack of the outside review, kept as a regression test against
//! the in-process daemon: each gets a clear refusal (or a closed connection), and the
//! daemon keeps serving. No moto, no D-Bus: plain `cargo test`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::common::{assert_still_serving, daemon, daemon_with, raw, CONFIG};
use keyward_proto::{CredentialsRequest, ErrorKind, MfaSubmit, PROTOCOL_HEADER, PROTOCOL_VERSION};

fn post_head(path: &str, extra: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nhost: k\r\n{PROTOCOL_HEADER}: {PROTOCOL_VERSION}\r\n{extra}")
}

#[test]
fn a_huge_header_is_refused() {
    let (client, _h, _dir) = daemon();
    let req = format!(
        "GET /v1/status HTTP/1.1\r\nhost: k\r\nx-big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let resp = raw(&client, req.as_bytes());
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 431"),
        "{resp}"
    );
    assert_still_serving(&client);
}

#[test]
fn a_100_mb_content_length_is_refused_without_reading_it() {
    let (client, _h, _dir) = daemon();
    let req = post_head("/v1/credentials", "content-length: 104857600\r\n\r\n{");
    let resp = raw(&client, req.as_bytes());
    assert!(
        resp.starts_with("HTTP/1.1 413") && resp.contains("too_large"),
        "{resp}"
    );
    assert_still_serving(&client);
}

#[test]
fn a_never_ending_chunked_body_is_cut_off() {
    let (client, _h, _dir) = daemon();
    let mut s = UnixStream::connect(client.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut writer = s.try_clone().unwrap();
    let head = post_head("/v1/credentials", "transfer-encoding: chunked\r\n\r\n");
    let feeder = std::thread::spawn(move || {
        let mut sent = 0usize;
        let _ = writer.write_all(head.as_bytes());
        let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
        // Keeps going until the daemon hangs up (at most 16 MiB).
        while sent < 16 << 20 && writer.write_all(chunk.as_bytes()).is_ok() {
            sent += 0x1000;
        }
        sent
    });
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let sent = feeder.join().unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(
        sent < 16 << 20,
        "the daemon stopped reading early ({sent} bytes)"
    );
    assert_still_serving(&client);
}

#[test]
fn deeply_nested_json_and_invalid_utf8_are_bad_requests() {
    let (client, _h, _dir) = daemon();
    let nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    for body in [nested.into_bytes(), b"{\"profile\":\"\xff\xfe\"}".to_vec()] {
        let mut req = post_head(
            "/v1/credentials",
            &format!("content-length: {}\r\n\r\n", body.len()),
        )
        .into_bytes();
        req.extend_from_slice(&body);
        let resp = raw(&client, &req);
        assert!(
            resp.starts_with("HTTP/1.1 400") && resp.contains("bad_request"),
            "{resp}"
        );
    }
    assert_still_serving(&client);
}

#[test]
fn an_http2_preface_pipelining_and_smuggling_get_nothing_extra() {
    let (client, _h, _dir) = daemon();
    let h2 = raw(&client, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(!h2.contains("\"protocol\""), "{h2}");
    assert_still_serving(&client);

    // Two requests in one write: each gets its own answer, in order.
    let one = "GET /v1/status HTTP/1.1\r\nhost: k\r\n\r\n";
    let two = "GET /v1/status HTTP/1.1\r\nhost: k\r\nconnection: close\r\n\r\n";
    let piped = raw(&client, format!("{one}{two}").as_bytes());
    assert_eq!(piped.matches("HTTP/1.1 200").count(), 2, "{piped}");

    // Content-Length and Transfer-Encoding together: no second request hides inside.
    let smuggled = "GET /v1/status HTTP/1.1\r\nhost: k\r\n\r\n";
    let body = format!("0\r\n\r\n{smuggled}");
    let req = post_head(
        "/v1/lock",
        &format!(
            "content-length: {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let resp = raw(&client, req.as_bytes());
    assert!(
        !resp.contains("\"protocol\""),
        "a smuggled request was answered: {resp}"
    );
    assert_still_serving(&client);
}

#[test]
fn profile_names_that_could_forge_log_lines_are_refused() {
    let (client, _h, _dir) = daemon();
    for name in [
        "dev\n2026-11-30T00:00:00Z  INFO keywardd: forged",
        "dev\u{1b}[2J",
        "",
        &"x".repeat(65),
        "../../etc",
    ] {
        let resp = client
            .credentials(&CredentialsRequest {
                profile: name.to_owned(),
                can_prompt: false,
            })
            .unwrap();
        assert_eq!(resp.status, 400, "{name:?}");
        let e = resp.error();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(
            !e.message.contains('\n') && !e.message.contains('\u{1b}'),
            "{e:?}"
        );
    }
    assert_still_serving(&client);
}

#[test]
fn malformed_mfa_codes_never_reach_sts() {
    let (client, h, _dir) = daemon();
    for code in [
        "",
        "12345",
        "1234567",
        "abcdef",
        "12 456",
        "１２３４５６",
        "123456\n",
    ] {
        let resp = client
            .submit_mfa(&MfaSubmit {
                profile: "dev".into(),
                code: code.into(),
            })
            .unwrap();
        assert_eq!(resp.error().kind, ErrorKind::MfaInvalid, "{code:?}");
    }
    assert_eq!(h.fake.0.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_profile_without_a_key_says_so_before_anyone_types_a_code() {
    let config = format!(
        "{CONFIG}\n[profiles.nokey]\nmfa_serial = \"arn:aws:iam::123456789012:mfa/nokey\"\n"
    );
    let (client, _h, _dir) = daemon_with(&config);
    let resp = client
        .credentials(&CredentialsRequest {
            profile: "nokey".into(),
            can_prompt: true,
        })
        .unwrap();
    let e = resp.error();
    assert_eq!(e.kind, ErrorKind::NoKey, "{e:?}");
    assert!(
        e.message.contains("keyward setup") && e.message.contains("keyward key import"),
        "{}",
        e.message
    );
}
