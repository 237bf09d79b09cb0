//! First-run setup of a computer, enrollment of a second one, resume and abort.

use keyward_tests::world::{which, World};
use serde_json::Value;

use crate::common::{account, bootstrap, enroll_code, err, names, ok, statements};

#[test]
fn bootstrap_setup_registers_alice_laptop() {
    let Some(w) = World::new("bootstrap_setup_registers_alice_laptop") else {
        return;
    };
    if which("aws").is_none() {
        keyward_tests::world::skip(&w.test, "the AWS CLI (`aws`) is not on PATH");
        return;
    }
    let acct = account(&w);
    let out = bootstrap(&w, &acct, "laptop");
    let report: Value = serde_json::from_str(&ok(&out, "setup")).unwrap();
    assert_eq!(report["user"], "alice-laptop");
    assert_eq!(report["changed"], true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("aws iam delete-access-key"),
        "bootstrap advice: {stderr}"
    );

    let u = w.admin(&["user", "alice-laptop"]);
    assert_eq!(u["path"], "/keyward/");
    assert_eq!(u["tags"]["keyward-owner"], "alice");
    assert_eq!(u["tags"]["keyward-machine"], "laptop");
    assert!(u["tags"]["keyward-created-at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(u["tags"]["keyward-buckets"], acct.bucket);
    assert_eq!(u["tags"]["keyward-kms-keys"], acct.key_arn);
    assert_eq!(u["groups"], serde_json::json!(["dev", "ops"]));
    assert_eq!(u["mfa"].as_array().unwrap().len(), 1, "MFA enabled");
    assert_eq!(u["keys"].as_array().unwrap().len(), 1);
    assert!(u["attached"][0]
        .as_str()
        .unwrap()
        .ends_with(":policy/keyward/keyward-self-service"));

    let arn = u["arn"].as_str().unwrap();
    let p = w.admin(&["policies", &acct.bucket, &acct.key_arn]);
    assert!(names(&p["bucket"], arn) && names(&p["key"], arn), "{p}");
    assert_eq!(
        statements(&p["bucket"])[0],
        acct.unrelated,
        "the unrelated statement is unchanged"
    );
    assert!(
        statements(&p["key"])
            .iter()
            .any(|s| s["Sid"] != "KeywardMachines"),
        "the key's own statement stays"
    );

    // Through the new profile, with the real AWS CLI.
    let out = w.aws("alice-laptop", &["sts", "get-caller-identity"]);
    let id: Value = serde_json::from_str(&ok(&out, "aws sts get-caller-identity")).unwrap();
    assert_eq!(id["Arn"], arn);
    assert!(arn.ends_with(":user/keyward/alice-laptop"));
    w.assert_no_leaks();
}

#[test]
fn enroll_registers_a_second_computer_and_the_code_expires() {
    let Some(laptop) = World::new("enroll_registers_a_second_computer_and_the_code_expires") else {
        return;
    };
    let acct = account(&laptop);
    ok(&bootstrap(&laptop, &acct, "laptop"), "bootstrap");
    let work = laptop.sibling("work");

    let code = enroll_code(
        &laptop,
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
    let out = work.setup_enrolled(
        &code,
        &[
            "--machine",
            "work",
            "--yes",
            "--json",
            "--mfa-process",
            &totp,
        ],
    );
    let report: Value = serde_json::from_str(&ok(&out, "setup --enroll")).unwrap();
    assert_eq!(report["user"], "alice-work");
    let u = laptop.admin(&["user", "alice-work"]);
    assert_eq!(u["tags"]["keyward-owner"], "alice");
    assert_eq!(
        u["groups"],
        serde_json::json!(["dev"]),
        "only the groups the code names"
    );
    assert_eq!(u["mfa"].as_array().unwrap().len(), 1);
    let p = laptop.admin(&["policies", &acct.bucket, &acct.key_arn]);
    assert!(names(&p["bucket"], u["arn"].as_str().unwrap()));
    assert_eq!(statements(&p["bucket"])[0], acct.unrelated);
    // The enrolled computer works on its own keychain and daemon.
    let v = work.admin_as_user(&["caller", "alice-work"]);
    assert_eq!(v, u["arn"]);

    // A code past its TTL is refused before any AWS call.
    let short = enroll_code(&laptop, &["--group", "dev", "--ttl", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let third = laptop.sibling("third");
    let before = laptop.proxy.control.total();
    let e = err(&third.setup_enrolled(&short, &["--machine", "third", "--yes"]));
    assert!(e.contains("enrollment code expired"), "{e}");
    assert_eq!(
        laptop.proxy.control.total(),
        before,
        "no AWS call with an expired code"
    );
    // A damaged code too.
    let mut damaged = code.clone().into_bytes();
    damaged[20] = if damaged[20] == b'x' { b'y' } else { b'x' };
    let e = err(&third.setup_enrolled(
        &String::from_utf8(damaged).unwrap(),
        &["--machine", "third"],
    ));
    assert!(e.contains("damaged or was edited"), "{e}");
    assert_eq!(laptop.proxy.control.total(), before);
    laptop.assert_no_leaks();
    work.assert_no_leaks();
}

#[test]
fn rerun_is_a_no_op_kill_then_rerun_completes_and_abort_leaves_no_trace() {
    let Some(w) =
        World::new("rerun_is_a_no_op_kill_then_rerun_completes_and_abort_leaves_no_trace")
    else {
        return;
    };
    let acct = account(&w);
    ok(&bootstrap(&w, &acct, "laptop"), "bootstrap");
    let calls = |a: &str| w.proxy.control.count(a);
    let (users, keys, puts) = (
        calls("CreateUser"),
        calls("CreateAccessKey"),
        calls("PutBucketPolicy"),
    );
    let again: Value =
        serde_json::from_str(&ok(&bootstrap(&w, &acct, "laptop"), "re-run")).unwrap();
    assert_eq!(again["changed"], false, "{again}");
    assert!(
        again["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "already done"),
        "{again}"
    );
    assert_eq!(
        (calls("CreateUser"), calls("CreateAccessKey")),
        (users, keys)
    );
    assert_eq!(
        calls("PutBucketPolicy"),
        puts,
        "no second write of an unchanged policy"
    );

    // A second computer, killed while creating its access key (after step 5).
    w.proxy.control.inject(
        Some("CreateAccessKey"),
        keyward_tests::proxy::Fault::Hang(std::time::Duration::from_secs(30)),
        1,
    );
    let mut c = w.command(w.bin("keyward"));
    c.args([
        "setup",
        "--owner",
        "alice",
        "--machine",
        "desk",
        "--group",
        "dev",
        "--bucket",
        &acct.bucket,
        "--kms-key",
        &acct.key_arn,
        "--yes",
        "--mfa-process",
        &w.device_totp_command("alice-desk"),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    World::as_admin(&mut c);
    let mut child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while calls("CreateAccessKey") < keys + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "setup never reached CreateAccessKey"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let half = w.admin(&["user", "alice-desk"]);
    assert_eq!(half["exists"], true);
    assert!(half["tags"].get("keyward-setup-complete").is_none());
    let arn = half["arn"].as_str().unwrap().to_owned();
    assert!(
        names(
            &w.admin(&["policies", &acct.bucket, &acct.key_arn])["bucket"],
            &arn
        ),
        "step 5 ran"
    );

    // Re-running on the same computer completes it.
    w.proxy.control.clear_faults();
    let done: Value = serde_json::from_str(&ok(
        &w.setup_admin(&[
            "--owner",
            "alice",
            "--machine",
            "desk",
            "--group",
            "dev",
            "--bucket",
            &acct.bucket,
            "--kms-key",
            &acct.key_arn,
            "--yes",
            "--json",
            "--mfa-process",
            &w.device_totp_command("alice-desk"),
        ]),
        "resumed setup",
    ))
    .unwrap();
    assert_eq!(done["changed"], true);
    let full = w.admin(&["user", "alice-desk"]);
    assert!(full["tags"].get("keyward-setup-complete").is_some());
    assert_eq!(full["keys"].as_array().unwrap().len(), 1);

    // --abort takes it all back: IAM, the bucket policy, the key policy, locally too.
    ok(
        &w.setup_admin(&["--abort", "--owner", "alice", "--machine", "desk"]),
        "abort",
    );
    assert_eq!(w.admin(&["user", "alice-desk"])["exists"], false);
    let p = w.admin(&["policies", &acct.bucket, &acct.key_arn]);
    assert!(!names(&p["bucket"], &arn) && !names(&p["key"], &arn), "{p}");
    assert_eq!(statements(&p["bucket"])[0], acct.unrelated);
    assert!(
        names(&p["bucket"], "alice-laptop"),
        "the other computer stays"
    );
    let cfg = std::fs::read_to_string(w.home.join(".aws/config")).unwrap_or_default();
    assert!(!cfg.contains("--profile alice-desk"), "{cfg}");
    assert!(
        cfg.contains("--profile alice-laptop"),
        "the other profile stays: {cfg}"
    );
    w.assert_no_leaks();
}

#[test]
fn bad_input_is_refused_before_any_change() {
    let Some(w) = World::new("bad_input_is_refused_before_any_change") else {
        return;
    };
    let acct = account(&w);
    let totp = w.device_totp_command("x");
    let before = w.proxy.control.total();
    for (args, want) in [
        (
            vec!["--owner", "al ice", "--machine", "laptop"],
            "not a valid owner",
        ),
        (
            vec!["--owner", "alice", "--machine", &"m".repeat(60)],
            "not a valid user name",
        ),
        (
            vec!["--owner", "alice", "--machine", "lap/top"],
            "not a valid machine name",
        ),
    ] {
        let e = err(&w.setup_admin(&args));
        assert!(e.contains(want), "{args:?}: {e}");
    }
    assert_eq!(
        w.proxy.control.total(),
        before,
        "names are checked before any AWS call"
    );

    let e = err(&w.setup_admin(&[
        "--owner",
        "alice",
        "--machine",
        "laptop",
        "--bucket",
        "no-such-bucket",
        "--yes",
        "--mfa-process",
        &totp,
    ]));
    assert!(
        e.contains("bucket no-such-bucket does not exist") && e.contains("Nothing was changed"),
        "{e}"
    );
    let e = err(&w.setup_admin(&[
        "--owner",
        "alice",
        "--machine",
        "laptop",
        "--kms-key",
        "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        "--yes",
    ]));
    assert!(e.contains("does not exist"), "{e}");
    let e = err(&w.setup_admin(&[
        "--owner",
        "alice",
        "--machine",
        "laptop",
        "--group",
        "nope",
        "--yes",
    ]));
    assert!(e.contains("group nope does not exist"), "{e}");

    w.admin(&["make-plain-user", "alice-stranger"]);
    let e = err(&w.setup_admin(&["--owner", "alice", "--machine", "stranger", "--yes"]));
    assert!(e.contains("keyward did not create"), "{e}");

    w.admin(&["put-bucket-policy-raw", &acct.bucket, "{this is not json"]);
    let (users, puts) = (
        w.proxy.control.count("CreateUser"),
        w.proxy.control.count("PutBucketPolicy"),
    );
    let e = err(&w.setup_admin(&[
        "--owner",
        "alice",
        "--machine",
        "laptop",
        "--bucket",
        &acct.bucket,
        "--yes",
    ]));
    assert!(e.contains("not valid JSON"), "{e}");
    assert_eq!(
        w.proxy.control.count("CreateUser"),
        users,
        "nothing was created"
    );
    assert_eq!(
        w.proxy.control.count("PutBucketPolicy"),
        puts,
        "no policy written"
    );

    // No keychain: stop before anything changes, and say how to fix it.
    let mut c = w.command(w.bin("keyward"));
    c.args(["setup", "--owner", "alice", "--machine", "laptop", "--yes"])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    World::as_admin(&mut c);
    let e = err(&w.output(c));
    assert!(e.contains("keychain") && e.contains("gnome-keyring"), "{e}");
    assert_eq!(w.proxy.control.count("CreateUser"), users);
    assert_eq!(w.proxy.control.count("CreateAccessKey"), 0);
}

#[test]
fn init_dry_run_changes_nothing_and_enforce_encryption_adds_the_deny_statements() {
    let Some(w) =
        World::new("init_dry_run_changes_nothing_and_enforce_encryption_adds_the_deny_statements")
    else {
        return;
    };
    let acct = account(&w);
    let writes = |w: &World| {
        [
            "CreatePolicy",
            "CreateRole",
            "PutRolePolicy",
            "CreatePolicyVersion",
        ]
        .map(|a| w.proxy.control.count(a))
    };
    let before = writes(&w);
    let mut c = w.command(w.bin("keyward"));
    c.args(["init", "--dry-run", "--bucket", &acct.bucket]);
    World::as_admin(&mut c);
    let out = ok(&w.output(c), "init --dry-run");
    assert!(
        out.contains("RevokeSameOwner") && out.contains("aws:MultiFactorAuthPresent"),
        "{out}"
    );
    assert!(out.contains("keyward-enroller trust policy"), "{out}");
    assert_eq!(writes(&w), before, "a dry run writes nothing");

    let mut c = w.command(w.bin("keyward"));
    c.args([
        "init",
        "--json",
        "--bucket",
        &acct.bucket,
        "--kms-key",
        &acct.key_arn,
    ]);
    World::as_admin(&mut c);
    let v: Value = serde_json::from_str(&ok(&w.output(c), "init")).unwrap();
    assert_eq!(v["managed_buckets"], serde_json::json!([acct.bucket]));
    assert_eq!(v["managed_kms_keys"], serde_json::json!([acct.key_arn]));
    let mut c = w.command(w.bin("keyward"));
    c.args(["init", "--json"]);
    World::as_admin(&mut c);
    let again: Value = serde_json::from_str(&ok(&w.output(c), "init again")).unwrap();
    assert_eq!(
        again["changes"],
        serde_json::json!([]),
        "idempotent: {again}"
    );
    assert_eq!(
        again["managed_buckets"],
        serde_json::json!([acct.bucket]),
        "managed buckets accumulate"
    );

    let out = w.setup_admin(&[
        "--owner",
        "alice",
        "--machine",
        "vault",
        "--bucket",
        &acct.bucket,
        "--enforce-encryption",
        "--yes",
        "--mfa-process",
        &w.device_totp_command("alice-vault"),
    ]);
    ok(&out, "setup --enforce-encryption");
    let arn = w.admin(&["user", "alice-vault"])["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = w.admin(&["policies", &acct.bucket, &acct.key_arn]);
    let sts = statements(&p["bucket"]);
    let by_sid = |sid: &str| {
        sts.iter()
            .find(|s| s["Sid"] == sid)
            .cloned()
            .unwrap_or_else(|| panic!("no {sid}: {p}"))
    };
    assert_eq!(
        by_sid("KeywardDenyUnencryptedUploads")["Condition"]["StringNotEquals"]
            ["s3:x-amz-server-side-encryption"],
        "aws:kms"
    );
    assert_eq!(
        by_sid("KeywardDenyOthers")["NotPrincipal"]["AWS"],
        serde_json::json!(["arn:aws:iam::123456789012:root", arn])
    );
    assert_eq!(sts[0], acct.unrelated);
}
