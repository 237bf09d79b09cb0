//! Helpers shared by the end-to-end tests: an account with groups, a bucket and a key;
//! alice's first computer (bootstrap); and enrollment as pairing.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use keyward_tests::cmd::Out;
use keyward_tests::world::World;
use serde_json::Value;

pub struct Account {
    pub bucket: String,
    pub key_arn: String,
    pub unrelated: Value,
}

/// Groups `dev` and `ops`, a bucket with an unrelated statement, and a KMS key.
pub fn account(w: &World) -> Account {
    let v = w.admin(&["make-world", "data-bucket", "dev", "ops"]);
    Account {
        bucket: v["bucket"].as_str().unwrap().to_owned(),
        key_arn: v["key_arn"].as_str().unwrap().to_owned(),
        unrelated: v["unrelated"].clone(),
    }
}

/// `keyward setup` for `<owner>-<machine>` with the account's root credentials, in both
/// groups, the bucket and the key; `--admin` designates it an admin computer.
pub fn bootstrap(w: &World, acct: &Account, owner: &str, machine: &str, admin: bool) -> Out {
    let user = format!("{owner}-{machine}");
    let totp = w.device_totp_command(&user);
    let mut args = vec![
        "setup",
        "--owner",
        owner,
        "--machine",
        machine,
        "--group",
        "dev",
        "--group",
        "ops",
        "--bucket",
        &acct.bucket,
        "--kms-key",
        &acct.key_arn,
        "--yes",
        "--json",
        "--mfa-process",
        &totp,
    ];
    if admin {
        args.push("--admin");
    }
    w.kw_admin(&args).ok()
}

/// `keyward enroll` on `admin` for `machine`, and `keyward setup --enroll` on `new`
/// with its code. Returns (the enroll command's lines, the setup's output).
pub fn enroll(admin: &World, new: &World, machine: &str, grants: &[&str]) -> (Vec<Value>, Out) {
    let log = admin.outside.join(format!("enroll-{machine}.stderr"));
    let mut c = admin.command(admin.bin("keyward"));
    c.args(["enroll", "--machine", machine, "--yes", "--json"])
        .args(grants);
    c.stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    admin.record_argv(format!(
        "{:?} {:?}",
        c.get_program(),
        c.get_args().collect::<Vec<_>>()
    ));
    let mut child = c.spawn().expect("spawn enroll");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        lines.map_while(Result::ok).collect::<Vec<String>>()
    });
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    let Ok(first) = rx.recv_timeout(std::time::Duration::from_secs(120)) else {
        let _ = child.kill();
        panic!("enroll printed no code within 120 s:\n{}", stderr());
    };
    let line: Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("enroll printed no code ({e}): {first}\n{}", stderr()));
    let code = line["code"].as_str().unwrap().to_owned();
    let user = line["user"].as_str().unwrap().to_owned();
    let totp = new.device_totp_command(&user);
    let setup = new.setup_enrolled(&code, &["--yes", "--mfa-process", &totp]);
    let setup = Out {
        status: setup.status,
        stdout: String::from_utf8_lossy(&setup.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&setup.stderr).into_owned(),
    };
    if !setup.status.success() {
        let _ = child.kill();
        panic!(
            "setup --enroll failed:\n{}\n{}\nenroll said:\n{}",
            setup.stdout,
            setup.stderr,
            stderr()
        );
    }
    let status = child.wait().unwrap();
    let rest = reader.join().unwrap();
    admin.record_output(stderr().as_bytes(), rest.join("\n").as_bytes());
    assert!(status.success(), "enroll failed: {}\n{rest:?}", stderr());
    let mut lines = vec![line];
    lines.extend(
        rest.iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap()),
    );
    (lines, setup)
}

pub fn statements(doc: &Value) -> Vec<Value> {
    doc["Statement"].as_array().cloned().unwrap_or_default()
}

/// The statement with this Sid (panics when there is none).
pub fn statement_named(doc: &Value, sid: &str) -> Value {
    statements(doc)
        .into_iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}: {doc}"))
}

pub fn names(doc: &Value, arn: &str) -> bool {
    serde_json::to_string(doc).unwrap().contains(arn)
}

/// The step ids of a `--json` plan report, in order.
pub fn step_ids(report: &Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The status of the first step with this id.
pub fn status_of<'a>(report: &'a Value, id: &str) -> &'a str {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .and_then(|s| s["status"].as_str())
        .unwrap_or("absent")
}
