//! Requests signed by `aws-sigv4` as a client signs them, then checked.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::*;

const KEY: &str = "AKIATESTKEY";
const SECRET: &str = "test-secret";

/// The emulator's time in these tests: a fixed date, not today's.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_553_445) // 2030-01-02T03:04:05Z
}

fn emulator() -> Emulator {
    let emu = Emulator::default();
    emu.pin_clock(now());
    emu.add_root_key(KEY, SECRET);
    emu
}

/// A POST to STS signed with `secret` at `time`, as its parts and body.
fn signed_post(secret: &str, time: SystemTime, body: &'static [u8]) -> (Parts, &'static [u8]) {
    let identity: Identity = Credentials::new(KEY, secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [
        ("host", "127.0.0.1:9"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let req = SignableRequest::new(
        "POST",
        "http://127.0.0.1:9/",
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    let mut http = hyper::Request::builder().method("POST").uri("/");
    for (k, v) in headers {
        http = http.header(k, v);
    }
    let mut http = http.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut http);
    (http.into_parts().0, body)
}

fn check(parts: &Parts, body: &[u8]) -> Result<(), Failure> {
    let signed = parse(parts)?.expect("signed");
    verify(&emulator(), parts, body, &signed)
}

#[test]
fn the_right_secret_passes_and_a_wrong_one_does_not() {
    let (parts, body) = signed_post(SECRET, now(), b"Action=GetCallerIdentity");
    assert_eq!(check(&parts, body), Ok(()));
    let (parts, body) = signed_post("other", now(), b"Action=GetCallerIdentity");
    assert_eq!(check(&parts, body), Err(Failure::Mismatch));
}

#[test]
fn a_changed_body_breaks_the_signature() {
    let (parts, _) = signed_post(SECRET, now(), b"Action=GetCallerIdentity");
    assert_eq!(check(&parts, b"Action=CreateUser"), Err(Failure::Mismatch));
}

#[test]
fn twenty_minutes_old_is_expired_five_is_not() {
    let old = now() - Duration::from_secs(20 * 60);
    let (parts, body) = signed_post(SECRET, old, b"Action=GetCallerIdentity");
    assert!(matches!(
        check(&parts, body),
        Err(Failure::Skewed { expired: true, .. })
    ));
    let recent = now() - Duration::from_secs(5 * 60);
    let (parts, body) = signed_post(SECRET, recent, b"Action=GetCallerIdentity");
    assert_eq!(check(&parts, body), Ok(()));
}

#[test]
fn the_window_follows_aws_clock() {
    let (parts, body) = signed_post(SECRET, now(), b"Action=GetCallerIdentity");
    let emu = emulator();
    emu.skew_aws_clock(7200);
    let signed = parse(&parts).unwrap().unwrap();
    assert!(matches!(
        verify(&emu, &parts, body, &signed),
        Err(Failure::Skewed { expired: true, .. })
    ));
}

#[test]
fn a_long_term_key_carries_no_token() {
    let (mut parts, body) = signed_post(SECRET, now(), b"Action=GetCallerIdentity");
    parts
        .headers
        .insert("x-amz-security-token", "someone-elses".parse().unwrap());
    assert_eq!(check(&parts, body), Err(Failure::BadToken));
}

#[test]
fn malformed_headers_are_named() {
    let parts = |auth: &str| {
        hyper::Request::builder()
            .header("authorization", auth)
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    for auth in [
        "AWS4-HMAC-SHA256 Credential=AKIA",
        "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/sts/aws4_request, SignedHeaders=host",
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AKIA/2026/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
    ] {
        assert!(
            matches!(parse(&parts(auth)), Err(Failure::Malformed(_))),
            "{auth}"
        );
    }
    let unsigned = hyper::Request::builder().body(()).unwrap().into_parts().0;
    assert!(matches!(parse(&unsigned), Ok(None)));
}

#[test]
fn each_protocol_words_it_as_aws_does() {
    let (status, code, _) = refusal(Protocol::Json, &Failure::Mismatch);
    assert_eq!((status, code), (400, "InvalidSignatureException"));
    let (status, code, _) = refusal(Protocol::RestXml, &Failure::BodyHash);
    assert_eq!((status, code), (400, "XAmzContentSHA256Mismatch"));
    let skewed = Failure::Skewed {
        expired: true,
        date: "20260101T000000Z".into(),
        now: "20260101T002000Z".into(),
    };
    let (status, code, message) = refusal(Protocol::Query, &skewed);
    assert_eq!((status, code), (403, "SignatureDoesNotMatch"));
    assert_eq!(
        message,
        "Signature expired: 20260101T000000Z is now earlier than 20260101T000500Z (20260101T002000Z - 15 min.)"
    );
}

/// An aws-chunked body of `chunks` (the empty last one added), each signed over the
/// previous signature from `seed`.
fn chunked_body(seed: &str, chunks: &[&[u8]], time: SystemTime) -> Vec<u8> {
    let identity: Identity = Credentials::new(KEY, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap();
    let mut previous = seed.to_owned();
    let mut body = Vec::new();
    for chunk in chunks.iter().copied().chain([&b""[..]]) {
        let sig = v4::sign_chunk(&bytes::Bytes::copy_from_slice(chunk), &previous, &params)
            .unwrap()
            .signature()
            .to_owned();
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
        previous = sig;
    }
    body
}

#[test]
fn every_chunk_of_a_streaming_body_is_checked() {
    let time = now();
    let identity: Identity = Credentials::new(KEY, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap();
    let body = chunked_body("seed", &[b"hello ", b"world"], time);
    assert_eq!(chunked::verify(&body, "seed", &params, false), Ok(()));
    let tampered: Vec<u8> = String::from_utf8(body.clone())
        .unwrap()
        .replacen("world", "WORLD", 1)
        .into_bytes();
    assert_eq!(
        chunked::verify(&tampered, "seed", &params, false),
        Err(Failure::Mismatch)
    );
    assert_eq!(
        chunked::verify(&body, "another seed", &params, false),
        Err(Failure::Mismatch)
    );
    assert_eq!(
        chunked::verify(&body[..body.len() - 40], "seed", &params, false),
        Err(Failure::IncompleteBody)
    );
}
