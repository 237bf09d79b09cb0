//! Helpers shared by the end-to-end tests: an account with groups, a bucket and a key;
//! alice's first computer (bootstrap); and enrollment as pairing.

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
    w.keyward_admin(&args).ok()
}

/// A computer of `owner` registered from `admin` without granting it anything:
/// `keyward enroll --no-wait`, then `keyward setup --enroll` on a new sibling world.
pub fn enroll_bare(admin: &World, owner: &str, machine: &str) -> World {
    let new = admin.sibling(&format!("{owner}-{machine}"));
    let line = admin
        .keyward(&[
            "enroll",
            "--machine",
            machine,
            "--owner",
            owner,
            "--no-wait",
            "--json",
        ])
        .ok()
        .json();
    let totp = new.device_totp_command(&format!("{owner}-{machine}"));
    let out = new.setup_enrolled(
        line["code"].as_str().unwrap(),
        &["--yes", "--mfa-process", &totp],
    );
    assert!(
        out.status.success(),
        "setup --enroll of {owner}-{machine}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    new
}

/// `keyward enroll` on `admin` for `machine`, and `keyward setup --enroll` on `new`
/// with its code. Returns (the enroll command's lines, the setup's output).
pub fn enroll(admin: &World, new: &World, machine: &str, grants: &[&str]) -> (Vec<Value>, Out) {
    let running = admin
        .keyward(&["enroll", "--machine", machine, "--yes", "--json"])
        .args(grants)
        // Its first line carries the enrollment code by design; the rest is scanned below.
        .secret_stdout()
        .spawn();
    let first = first_line(&running, std::time::Duration::from_secs(120));
    let stderr = || running.stderr_so_far();
    let Some(first) = first else {
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
    assert!(
        setup.status.success(),
        "setup --enroll failed:\n{}\n{}\nenroll said:\n{}",
        setup.stdout,
        setup.stderr,
        stderr()
    );
    let enrolled = running.wait();
    assert!(
        enrolled.status.success(),
        "enroll failed: {}\n{}",
        enrolled.stderr,
        enrolled.stdout
    );
    let rest = enrolled
        .stdout
        .split_once('\n')
        .map_or("", |(_, rest)| rest);
    admin.record_output(b"", rest.as_bytes());
    let lines = enrolled.json_lines();
    assert_eq!(lines.first(), Some(&line), "the code line comes first");
    (lines, setup)
}

/// The first whole line a running command printed, waiting up to `limit` for it.
fn first_line(running: &keyward_tests::cmd::Running, limit: std::time::Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some((first, _)) = running.stdout_so_far().split_once('\n') {
            return Some(first.to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
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

/// The credentials a profile's credential_process hands out (what malware would take).
pub fn creds_of(w: &World, profile: &str) -> Value {
    let out = w.helper(profile);
    assert!(
        out.status.success(),
        "credential_process {profile}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("credential_process JSON")
}

/// A long-term key as credentials (the bare key of a machine, taken from its keychain).
pub fn key_creds(w: &World, user: &str) -> Value {
    let id = w
        .proxy
        .control
        .keys_of(user)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{user} has no key"));
    let secret = w
        .proxy
        .control
        .secret_of(&id)
        .expect("the emulator saw the secret");
    serde_json::json!({"AccessKeyId": id, "SecretAccessKey": secret})
}

/// Runs `calls` (`[{"name", "service", "op", "args"}]`) with `creds` through boto3.
pub fn attack(w: &World, creds: &Value, calls: &Value) -> Vec<Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/attack.py");
    let input = serde_json::json!({"creds": creds, "calls": calls}).to_string();
    let mut c = w.cmd("python3");
    c.arg(script).stdin(input.into_bytes()).secret_stdout();
    c.ok().json().as_array().cloned().unwrap_or_default()
}

/// One call, as `{"name", "service", "op", "args"}`.
pub fn call(name: &str, service: &str, op: &str, args: &Value) -> Value {
    serde_json::json!({"name": name, "service": service, "op": op, "args": args})
}

/// Asserts AWS refused the call, naming `action` (e.g. `iam:PutUserPolicy`).
pub fn assert_denied(r: &Value, action: &str) {
    assert_eq!(r["ok"], false, "{} was allowed: {r}", r["name"]);
    let msg = r["message"].as_str().unwrap_or_default();
    assert!(
        r["code"] == "AccessDenied" || r["code"] == "AccessDeniedException",
        "{}: {r}",
        r["name"]
    );
    assert!(
        msg.contains(&format!("perform: {action} ")),
        "{} should be denied {action}: {msg}",
        r["name"]
    );
}

pub fn assert_allowed(r: &Value) {
    assert_eq!(r["ok"], true, "{} was refused: {r}", r["name"]);
}
