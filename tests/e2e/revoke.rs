//! Remote revocation of a lost computer, deregistration, and the machines inventory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keyward_tests::proxy::Fault;
use keyward_tests::world::{which, World};
use serde_json::Value;

use crate::common::{account, bootstrap, enroll_code, enroll_work, err, names, ok, statements};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn revoking_alice_laptop_from_alice_work_cuts_it_off_and_nothing_else() {
    let Some(laptop) =
        World::new("revoking_alice_laptop_from_alice_work_cuts_it_off_and_nothing_else")
    else {
        return;
    };
    if which("aws").is_none() {
        keyward_tests::world::skip(&laptop.test, "the AWS CLI (`aws`) is not on PATH");
        return;
    }
    let acct = account(&laptop);
    ok(
        &bootstrap(&laptop, &acct, "laptop"),
        "bootstrap alice-laptop",
    );
    let work = enroll_work(&laptop, &acct);
    let before = laptop.admin(&["user", "alice-laptop"]);
    let laptop_arn = before["arn"].as_str().unwrap().to_owned();
    let laptop_key = before["keys"][0].as_str().unwrap().to_owned();
    let work_user = laptop.admin(&["user", "alice-work"]);
    let work_key = work_user["keys"][0].as_str().unwrap().to_owned();
    // The laptop holds a live session when it is lost.
    ok(&laptop.helper("alice-laptop"), "laptop credentials before");

    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let report = json(&ok(
        &work.keyward(&["revoke", "laptop", "--yes", "--json"]),
        "revoke laptop",
    ));
    assert_eq!(report["complete"], true, "{report}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "cut live sessions",
            "delete access keys",
            "leave groups",
            "leave bucket and key policies",
            "delete MFA device",
            "tag as revoked"
        ]
    );
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "done"),
        "{report}"
    );

    let u = laptop.admin(&["user", "alice-laptop"]);
    assert_eq!(u["groups"], serde_json::json!([]));
    assert_eq!(u["keys"], serde_json::json!([]));
    assert_eq!(u["mfa"], serde_json::json!([]), "MFA device gone");
    assert_eq!(u["tags"]["keyward-revoked-by"], "alice-work");
    // The exact deny document: moto cannot see GetSessionToken sessions, so this is
    // how the live-session cut-off is verified.
    let deny = u["inline"]["keyward-revoked-deny-all"].clone();
    let cut = deny["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        deny,
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "KeywardRevokeOlderSessions", "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": cut}}}]})
    );
    assert!(
        cut >= started && cut.ends_with('Z'),
        "cut-off {cut} is the time of the revocation (after {started})"
    );
    assert_eq!(u["tags"]["keyward-revoked-at"], cut);

    let p = laptop.admin(&["policies", &acct.bucket, &acct.key_arn]);
    assert!(
        !names(&p["bucket"], &laptop_arn) && !names(&p["key"], &laptop_arn),
        "{p}"
    );
    assert_eq!(
        statements(&p["bucket"])[0],
        acct.unrelated,
        "other statements unchanged"
    );
    assert!(
        names(&p["bucket"], work_user["arn"].as_str().unwrap()),
        "alice-work stays"
    );

    // The laptop's daemon notices at its next key check, drops its sessions and stops asking.
    let st = json(&ok(
        &laptop.keyward(&["status", "--check", "--json"]),
        "status --check",
    ));
    assert_eq!(
        st["daemon"]["revoked"],
        serde_json::json!(["alice-laptop"]),
        "{st}"
    );
    assert_eq!(st["daemon"]["sessions"], serde_json::json!([]), "{st}");
    let gsts = laptop.proxy.control.count("GetSessionToken");
    let e = err(&laptop.helper("alice-laptop"));
    assert!(
        e.contains("this computer's key was revoked or deleted") && e.contains("keyward setup"),
        "{e}"
    );
    assert_eq!(
        laptop.proxy.control.count("GetSessionToken"),
        gsts,
        "no MFA prompt, no STS call"
    );
    let text = ok(&laptop.keyward(&["status"]), "status");
    assert!(text.contains("revoked or deleted"), "{text}");

    // moto's own auth enforcement, as an independent judge of the long-term keys.
    let laptop_secret = laptop
        .proxy
        .control
        .secret_of(&laptop_key)
        .expect("secret seen at creation");
    let work_secret = laptop
        .proxy
        .control
        .secret_of(&work_key)
        .expect("secret seen at creation");
    laptop.moto_auth(true);
    let dead = laptop.moto_whoami(&laptop_key, &laptop_secret);
    let alive = laptop.moto_whoami(&work_key, &work_secret);
    laptop.moto_auth(false);
    assert_eq!(dead, Err("InvalidClientTokenId".to_owned()));
    assert_eq!(alive.as_deref(), Ok(work_user["arn"].as_str().unwrap()));

    // The inventory shows it, and alice-work still gets credentials.
    let rows = json(&ok(&work.keyward(&["machines", "--json"]), "machines"));
    let row = |user: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["user"] == user)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("alice-laptop")["revoked"], cut);
    assert_eq!(row("alice-laptop")["mfa"], false);
    assert_eq!(row("alice-work")["this_computer"], true);
    assert_eq!(
        row("alice-work")["access_key"],
        work_key[work_key.len() - 4..]
    );
    assert_eq!(row("alice-work")["groups"], serde_json::json!(["dev"]));
    let table = ok(&work.keyward(&["machines"]), "machines table");
    assert!(
        table.contains("REVOKED") && table.contains("this computer"),
        "{table}"
    );
    let id = json(&ok(
        &work.aws("alice-work", &["sts", "get-caller-identity"]),
        "alice-work after",
    ));
    assert_eq!(id["Arn"], work_user["arn"]);

    // A second revoke changes nothing.
    let writes = |w: &World| {
        [
            "PutUserPolicy",
            "DeleteAccessKey",
            "RemoveUserFromGroup",
            "PutBucketPolicy",
            "PutKeyPolicy",
            "TagUser",
            "DeleteVirtualMFADevice",
        ]
        .map(|a| w.proxy.control.count(a))
    };
    let counts = writes(&work);
    let all_before = work.proxy.control.counts();
    let again = json(&ok(
        &work.keyward(&["revoke", "laptop", "--yes", "--json"]),
        "second revoke",
    ));
    assert_eq!(again["complete"], true);
    assert!(
        again["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] != "done"),
        "{again}"
    );
    let all_after = work.proxy.control.counts();
    let delta: Vec<_> = all_after
        .iter()
        .filter(|a| !all_before.contains(a))
        .collect();
    assert_eq!(
        writes(&work),
        counts,
        "no write on a second revoke: {delta:?}"
    );

    // --purge deletes the tombstone.
    ok(
        &work.keyward(&["revoke", "alice-laptop", "--yes", "--purge"]),
        "revoke --purge",
    );
    assert_eq!(laptop.admin(&["user", "alice-laptop"])["exists"], false);
    laptop.assert_no_leaks();
    work.assert_no_leaks();
}

#[test]
fn refusals_partial_failure_concurrent_edit_and_deregister() {
    let Some(laptop) = World::new("refusals_partial_failure_concurrent_edit_and_deregister") else {
        return;
    };
    let acct = account(&laptop);
    ok(
        &bootstrap(&laptop, &acct, "laptop"),
        "bootstrap alice-laptop",
    );
    let work = enroll_work(&laptop, &acct);
    let desk = laptop.sibling("desk");
    let code = enroll_code(
        &laptop,
        &["--bucket", &acct.bucket, "--kms-key", &acct.key_arn],
    );
    ok(
        &desk.setup_enrolled(
            &code,
            &[
                "--machine",
                "desk",
                "--yes",
                "--mfa-process",
                &desk.device_totp_command("alice-desk"),
            ],
        ),
        "enroll desk",
    );
    let bob = laptop.sibling("bob");
    ok(
        &bob.setup_admin(&[
            "--owner",
            "bob",
            "--machine",
            "pc",
            "--yes",
            "--mfa-process",
            &bob.device_totp_command("bob-pc"),
        ]),
        "bob's pc",
    );

    // Refusals.
    let e = err(&work.keyward(&["revoke", "work", "--yes"]));
    assert!(
        e.contains("is this computer") && e.contains("keyward deregister"),
        "{e}"
    );
    let e = err(&work.keyward(&["revoke", "tablet", "--yes"]));
    assert!(
        e.contains("no machine `tablet` of alice; known: alice-desk, alice-laptop, alice-work"),
        "{e}"
    );
    let e = err(&work.keyward(&["revoke", "bob-pc", "--yes"]));
    assert!(
        e.contains("belongs to owner bob") && e.contains("--admin"),
        "{e}"
    );
    assert_eq!(
        laptop.admin(&["user", "bob-pc"])["keys"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "bob's pc untouched"
    );
    let mut c = work.command(work.bin("keyward"));
    c.args(["revoke", "bob-pc", "--admin", "--dry-run"]);
    World::as_admin(&mut c);
    let plan = work.output(c);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(String::from_utf8_lossy(&plan.stderr).contains("dry run: nothing changed"));

    // Step 4 fails: the report says what is done and what is not; a re-run finishes.
    let desk_arn = laptop.admin(&["user", "alice-desk"])["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    laptop
        .proxy
        .control
        .inject(Some("PutBucketPolicy"), Fault::ServerError, 50);
    let out = work.keyward(&["revoke", "desk", "--yes"]);
    let e = err(&out);
    assert!(
        e.contains("NOT done: leave bucket and key policies, delete MFA device, tag as revoked"),
        "{e}"
    );
    assert!(e.contains("keyward revoke desk --yes` again"), "{e}");
    assert!(names(
        &laptop.admin(&["policies", &acct.bucket, &acct.key_arn])["bucket"],
        &desk_arn
    ));
    laptop.proxy.control.clear_faults();

    // Someone edits the bucket policy between keyward's read and its write.
    let seen = Arc::new(AtomicUsize::new(0));
    let admin = {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/aws_admin.py");
        let mut c = laptop.command("python3");
        c.arg(script).args(["add-foreign-statement", &acct.bucket]);
        World::as_admin(&mut c);
        std::sync::Mutex::new(c)
    };
    let hook_seen = seen.clone();
    laptop.proxy.control.inject(
        Some("GetBucketPolicy"),
        Fault::Before(Arc::new(move || {
            if hook_seen.fetch_add(1, Ordering::SeqCst) == 1 {
                let out = admin.lock().unwrap().output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        })),
        100,
    );
    let done = json(&ok(
        &work.keyward(&["revoke", "desk", "--yes", "--json"]),
        "re-run revoke desk",
    ));
    laptop.proxy.control.clear_faults();
    assert_eq!(done["complete"], true);
    let p = laptop.admin(&["policies", &acct.bucket, &acct.key_arn]);
    assert!(
        !names(&p["bucket"], &desk_arn) && !names(&p["key"], &desk_arn),
        "{p}"
    );
    assert!(
        statements(&p["bucket"])
            .iter()
            .any(|s| s["Sid"] == "AddedMeanwhile"),
        "their edit is kept: {p}"
    );
    assert_eq!(statements(&p["bucket"])[0], acct.unrelated);
    assert!(seen.load(Ordering::SeqCst) >= 3, "the policy was re-read");

    // A bucket that is gone is a skipped step, not a failed run.
    let e = ok(
        &work.keyward(&[
            "revoke",
            "laptop",
            "--yes",
            "--bucket",
            "bucket-that-is-gone",
        ]),
        "revoke laptop",
    );
    assert!(e.contains("revoked"), "{e}");

    // deregister leaves nothing of alice-work anywhere.
    let work_arn = laptop.admin(&["user", "alice-work"])["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&work.keyward(&["deregister", "--yes"]), "deregister");
    assert_eq!(laptop.admin(&["user", "alice-work"])["exists"], false);
    let p = laptop.admin(&["policies", &acct.bucket, &acct.key_arn]);
    assert!(
        !names(&p["bucket"], &work_arn) && !names(&p["key"], &work_arn),
        "{p}"
    );
    let cfg = std::fs::read_to_string(work.home.join(".aws/config")).unwrap_or_default();
    assert!(!cfg.contains("credential_process"), "{cfg}");
    let list = ok(
        &work.keyward(&["profile", "list", "--json"]),
        "profile list",
    );
    assert_eq!(json(&list), serde_json::json!({}));
    if which("secret-tool").is_some() {
        let mut look = work.command("secret-tool");
        look.args(["lookup", "service", "keyward", "username", "alice-work"]);
        assert!(
            look.output().unwrap().stdout.is_empty(),
            "keychain entry gone"
        );
    }
    laptop.assert_no_leaks();
    work.assert_no_leaks();
}
