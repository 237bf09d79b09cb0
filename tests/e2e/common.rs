//! Helpers shared by the end-to-end tests.

use std::process::Output;

use keyward_tests::world::World;
use serde_json::Value;

pub fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn err(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected a failure, got: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub struct Account {
    pub bucket: String,
    pub key_arn: String,
    pub unrelated: Value,
}

pub fn account(w: &World) -> Account {
    let v = w.admin(&["make-world", "data-bucket", "dev", "ops"]);
    Account {
        bucket: v["bucket"].as_str().unwrap().to_owned(),
        key_arn: v["key_arn"].as_str().unwrap().to_owned(),
        unrelated: v["unrelated"].clone(),
    }
}

/// `keyward setup` for alice-<machine> with both groups, the bucket and the key.
pub fn bootstrap(w: &World, acct: &Account, machine: &str) -> Output {
    let user = format!("alice-{machine}");
    w.setup_admin(&[
        "--owner",
        "alice",
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
        &w.device_totp_command(&user),
    ])
}

pub fn statements(doc: &Value) -> Vec<Value> {
    doc["Statement"].as_array().cloned().unwrap_or_default()
}

pub fn names(doc: &Value, arn: &str) -> bool {
    serde_json::to_string(doc).unwrap().contains(arn)
}

/// alice-laptop, registered by bootstrap, and its enrollment code for another computer.
pub fn enroll_code(w: &World, args: &[&str]) -> String {
    let mut all = vec!["enroll", "--profile", "alice-laptop"];
    all.extend_from_slice(args);
    let out = w.keyward(&all);
    let code = ok(&out, "keyward enroll").trim().to_owned();
    assert!(code.starts_with("kw1."), "{code}");
    code
}

/// alice-work, a second computer enrolled from alice-laptop into `dev`, the bucket and the key.
pub fn enroll_work(laptop: &World, acct: &Account) -> World {
    let work = laptop.sibling("work");
    let code = enroll_code(
        laptop,
        &[
            "--group",
            "dev",
            "--bucket",
            &acct.bucket,
            "--kms-key",
            &acct.key_arn,
        ],
    );
    let totp = work.device_totp_command("alice-work");
    ok(
        &work.setup_enrolled(
            &code,
            &["--machine", "work", "--yes", "--mfa-process", &totp],
        ),
        "setup --enroll",
    );
    work
}
