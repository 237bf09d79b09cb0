//! The emulated AWS checks signatures as AWS does: a wrong secret, another key's
//! session token and a signature 20 minutes old are refused on STS, IAM, S3 and KMS,
//! with each service's own code, before anything changes; presigned URLs and signed
//! streaming uploads are checked too. Plus two smaller gaps: S3 HEAD keeps its
//! Content-Length, and the fault proxy stops its moto when told to stop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use keyward_sandbox::aws::{ROOT_KEY_ID, ROOT_SECRET};
use keyward_tests::e2e;
use keyward_tests::world::{which, World};
use serde_json::{json, Value};

use crate::common::{attack, call};

/// One read call per service.
fn one_per_service() -> Value {
    json!([
        call("sts", "sts", "get_caller_identity", &json!({})),
        call("iam", "iam", "get_user", &json!({"UserName": "sig-alice"})),
        call("s3", "s3", "list_buckets", &json!({})),
        call("kms", "kms", "list_keys", &json!({})),
    ])
}

fn codes(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| {
            assert_eq!(r["ok"], false, "{} went through: {r}", r["name"]);
            r["code"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

fn all_ok(results: &[Value], who: &str) {
    for r in results {
        assert_eq!(r["ok"], true, "{who} on {}: {r}", r["name"]);
    }
}

fn root() -> Value {
    json!({"AccessKeyId": ROOT_KEY_ID, "SecretAccessKey": ROOT_SECRET})
}

/// boto3 calls signed `ago` seconds in the past.
fn attack_signed_ago(w: &World, creds: &Value, calls: &Value, ago: u64) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/attack.py");
    let input = json!({"creds": creds, "calls": calls, "signed_ago": ago}).to_string();
    let mut c = w.cmd("python3");
    c.arg(script).stdin(input.into_bytes()).secret_stdout();
    c.ok().json().as_array().cloned().unwrap_or_default()
}

/// One hand-shaped request from tests/py/raw_sigv4.py.
fn raw(w: &World, creds: &Value, case: &str, extra: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/raw_sigv4.py");
    let mut doc = json!({"endpoint": w.proxy.url(), "creds": creds, "case": case});
    for (k, v) in extra.as_object().into_iter().flatten() {
        doc[k] = v.clone();
    }
    let mut c = w.cmd("python3");
    c.arg(script)
        .stdin(doc.to_string().into_bytes())
        .secret_stdout();
    c.ok().json()
}

/// sig-alice, allowed everything, and her long-term key.
fn alice(w: &World) -> Value {
    let u = w.admin(&["make-user", "sig-alice"]);
    let secret = u["secret_access_key"].as_str().unwrap();
    w.canary(secret);
    let all = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let put = call(
        "allow all",
        "iam",
        "put_user_policy",
        &json!({"UserName": "sig-alice", "PolicyName": "all", "PolicyDocument": all.to_string()}),
    );
    all_ok(&attack(w, &root(), &json!([put])), "root");
    json!({"AccessKeyId": u["access_key_id"], "SecretAccessKey": secret})
}

fn session(result: &Value) -> Value {
    let c = &result["result"]["Credentials"];
    json!({"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"], "SessionToken": c["SessionToken"]})
}

e2e! {
    fn a_wrong_secret_a_foreign_token_or_an_old_signature_is_refused_everywhere(w) {
        let key = alice(&w);
        let gst = call("session", "sts", "get_session_token", &json!({}));
        let s = attack(&w, &key, &json!([gst.clone(), gst]));
        let (one, two) = (session(&s[0]), session(&s[1]));
        assert_ne!(one["AccessKeyId"], two["AccessKeyId"]);

        // The right secret works, for the root, a user's key and a session.
        for (who, creds) in [("root", root()), ("key", key.clone()), ("session", one.clone())] {
            all_ok(&attack(&w, &creds, &one_per_service()), who);
        }

        let mut wrong = key.clone();
        wrong["SecretAccessKey"] = json!("not-the-secret-of-this-key-0123456789abcd");
        assert_eq!(
            codes(&attack(&w, &wrong, &one_per_service())),
            ["SignatureDoesNotMatch", "SignatureDoesNotMatch", "SignatureDoesNotMatch", "InvalidSignatureException"]
        );
        let mut wrong_session = one.clone();
        wrong_session["SecretAccessKey"] = two["SecretAccessKey"].clone();
        assert_eq!(codes(&attack(&w, &wrong_session, &one_per_service()))[0], "SignatureDoesNotMatch");

        let mut foreign = one.clone();
        foreign["SessionToken"] = two["SessionToken"].clone();
        assert_eq!(
            codes(&attack(&w, &foreign, &one_per_service())),
            ["InvalidClientTokenId", "InvalidClientTokenId", "InvalidToken", "UnrecognizedClientException"]
        );
        let mut key_with_token = key.clone();
        key_with_token["SessionToken"] = one["SessionToken"].clone();
        assert_eq!(codes(&attack(&w, &key_with_token, &one_per_service()))[0], "InvalidClientTokenId");

        for (who, creds) in [("root", root()), ("key", key.clone()), ("session", one.clone())] {
            let old = attack_signed_ago(&w, &creds, &one_per_service(), 20 * 60);
            assert_eq!(
                codes(&old),
                ["SignatureDoesNotMatch", "SignatureDoesNotMatch", "RequestTimeTooSkewed", "InvalidSignatureException"],
                "{who}: {old:?}"
            );
            let msg = old[0]["message"].as_str().unwrap_or_default();
            assert!(msg.starts_with("Signature expired: ") && msg.ends_with(" - 15 min.)"), "{msg}");
        }
        // Within the window (5 minutes off) AWS still takes it.
        all_ok(&attack_signed_ago(&w, &key, &one_per_service(), 5 * 60), "5 min ago");
    }
}

e2e! {
    fn refused_signatures_change_nothing(w) {
        let key = alice(&w);
        let mut wrong = key.clone();
        wrong["SecretAccessKey"] = json!("not-the-secret-of-this-key-0123456789abcd");
        let bucket = "sig-bucket";
        all_ok(&attack(&w, &root(), &json!([call("mb", "s3", "create_bucket", &json!({"Bucket": bucket}))])), "root");
        let writes = json!([
            call("iam", "iam", "create_user", &json!({"UserName": "sig-mallory"})),
            call("s3", "s3", "put_object", &json!({"Bucket": bucket, "Key": "planted", "Body": "x"})),
            call("kms", "kms", "create_alias", &json!({"AliasName": "alias/planted", "TargetKeyId": "nope"})),
        ]);
        assert_eq!(
            codes(&attack(&w, &wrong, &writes)),
            ["SignatureDoesNotMatch", "SignatureDoesNotMatch", "InvalidSignatureException"]
        );
        assert_eq!(w.admin(&["user", "sig-mallory"])["exists"], false);

        let nobody = json!({"AccessKeyId": "AKIAEXAMPLENOBODY000", "SecretAccessKey": "whatever"});
        assert_eq!(
            codes(&attack(&w, &nobody, &one_per_service())),
            ["InvalidClientTokenId", "InvalidClientTokenId", "InvalidAccessKeyId", "UnrecognizedClientException"]
        );

        let at = json!({"bucket": bucket, "key": "tampered", "body": "the body that was signed"});
        let r = raw(&w, &key, "body-mismatch", &at);
        assert_eq!((r["status"].as_u64(), r["code"].as_str()), (Some(400), Some("XAmzContentSHA256Mismatch")), "{r}");
        let r = raw(&w, &key, "malformed-auth", &json!({}));
        assert_eq!((r["status"].as_u64(), r["code"].as_str()), (Some(400), Some("IncompleteSignature")), "{r}");
        let r = raw(&w, &key, "no-date", &at);
        assert_eq!((r["status"].as_u64(), r["code"].as_str()), (Some(403), Some("AccessDenied")), "{r}");
        assert!(r["body"].as_str().unwrap_or_default().contains("x-amz-date"), "{r}");

        let listed = attack(&w, &root(), &json!([call("ls", "s3", "list_objects_v2", &json!({"Bucket": bucket}))]));
        assert_eq!(listed[0]["result"]["KeyCount"], 0, "nothing was written: {listed:?}");
    }
}

e2e! {
    fn presigned_urls_and_signed_chunked_uploads_are_checked(w) {
        let key = alice(&w);
        let mut wrong = key.clone();
        wrong["SecretAccessKey"] = json!("not-the-secret-of-this-key-0123456789abcd");
        let bucket = "sig-chunks";
        all_ok(&attack(&w, &root(), &json!([call("mb", "s3", "create_bucket", &json!({"Bucket": bucket}))])), "root");

        let body = "a streamed body, signed chunk by chunk: aaaa bbbb";
        let good = json!({"bucket": bucket, "key": "streamed", "body": body});
        let r = raw(&w, &key, "chunked", &good);
        assert_eq!(r["status"], 200, "{r}");
        let got = attack(&w, &key, &json!([call("get", "s3", "get_object", &json!({"Bucket": bucket, "Key": "streamed"}))]));
        assert_eq!(got[0]["result"]["Body"], body, "{got:?}");

        let bad = json!({"bucket": bucket, "key": "tampered", "body": body});
        let r = raw(&w, &key, "chunked-tampered", &bad);
        assert_eq!((r["status"].as_u64(), r["code"].as_str()), (Some(403), Some("SignatureDoesNotMatch")), "{r}");
        let head = attack(&w, &root(), &json!([call("head", "s3", "head_object", &json!({"Bucket": bucket, "Key": "tampered"}))]));
        assert_eq!(head[0]["ok"], false, "the tampered upload was not stored: {head:?}");

        let r = raw(&w, &key, "presign-s3", &good);
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["body"], body);
        let r = raw(&w, &wrong, "presign-s3", &good);
        assert_eq!((r["status"].as_u64(), r["code"].as_str()), (Some(403), Some("SignatureDoesNotMatch")), "{r}");
        let r = raw(&w, &key, "presign-sts", &json!({}));
        assert_eq!(r["status"], 200, "{r}");
        assert!(r["body"].as_str().unwrap_or_default().contains("user/keyward/sig-alice") || r["body"].as_str().unwrap_or_default().contains("sig-alice"), "{r}");
        let r = raw(&w, &wrong, "presign-sts", &json!({}));
        assert_eq!((r["status"].as_u64(), r["code"].as_str()), (Some(403), Some("SignatureDoesNotMatch")), "{r}");
    }
}

e2e! {
    fn s3_head_answers_with_content_length_etag_and_type(w) {
        let bucket = "sig-head";
        let calls = json!([
            call("mb", "s3", "create_bucket", &json!({"Bucket": bucket})),
            call("put", "s3", "put_object", &json!({"Bucket": bucket, "Key": "k.csv", "Body": "a,b\n1,2\n", "ContentType": "text/csv"})),
            call("head", "s3", "head_object", &json!({"Bucket": bucket, "Key": "k.csv"})),
        ]);
        let r = attack(&w, &root(), &calls);
        all_ok(&r, "root");
        let head = &r[2]["result"];
        assert_eq!(head["ContentLength"], 8, "{head}");
        assert_eq!(head["ContentType"], "text/csv", "{head}");
        assert_eq!(head["ETag"], r[1]["result"]["ETag"], "{head}");
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
        let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
        if after.split_whitespace().nth(1) == Some(&pid.to_string()) {
            out.push(child);
        }
    }
    out
}

fn gone(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, a)| a.split_whitespace().next());
    matches!(state, None | Some("Z"))
}

e2e! {
    fn the_fault_proxy_stops_its_moto_on_sigterm_and_sigint(w) {
        let moto = which("moto_server").expect("moto_server");
        for sig in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
            let mut proxy = std::process::Command::new(w.bin("keyward-fault-proxy"))
                .arg("--moto")
                .arg(&moto)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(proxy.stdout.take().unwrap()).read_line(&mut line).unwrap();
            assert!(line.starts_with("http://127.0.0.1:"), "{line}");
            let motos = children(proxy.id());
            assert!(!motos.is_empty(), "moto runs under the proxy");
            let pid = rustix::process::Pid::from_raw(proxy.id() as i32).unwrap();
            rustix::process::kill_process(pid, sig).unwrap();
            let status = proxy.wait().unwrap();
            assert!(status.success(), "{sig:?}: {status}");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !motos.iter().all(|m| gone(*m)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(motos.iter().all(|m| gone(*m)), "{sig:?} left moto {motos:?} running");
        }
    }
}
