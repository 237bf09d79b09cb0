//! First-run setup of a computer, enrollment of a second one as pairing, resume and
//! abort. Every request is authorized by the emulator's IAM evaluator.

use keyward_tests::e2e;
use serde_json::Value;

use crate::common::{
    account, bootstrap, enroll, names, statement_named, statements, status_of, step_ids,
};

fn mfa_required(st: &Value) -> bool {
    st["Condition"]["Bool"]["aws:MultiFactorAuthPresent"] == "true"
}

e2e! {
    fn bootstrap_setup_registers_alice_laptop_with_nothing_denied(w) {
        let acct = account(&w);
        let out = bootstrap(&w, &acct, "alice", "laptop", true);
        let report = out.json();
        assert_eq!(report["complete"], true, "{report}");
        assert!(out.stderr.contains("aws iam delete-access-key") || out.stderr.contains("root access key"), "bootstrap advice: {}", out.stderr);
        assert_eq!(w.proxy.control.denials(), vec![], "the whole setup passes under IAM enforcement");

        let u = w.admin(&["user", "alice-laptop"]);
        assert_eq!(u["path"], "/keyward/");
        assert_eq!(u["tags"]["keyward-owner"], "alice");
        assert_eq!(u["tags"]["keyward-machine"], "laptop");
        assert!(u["tags"]["keyward-enrolled"].as_str().unwrap().ends_with('Z'));
        assert_eq!(u["groups"], serde_json::json!(["dev", "ops"]));
        assert_eq!(u["mfa"].as_array().unwrap().len(), 1, "MFA enabled");
        assert_eq!(u["keys"].as_array().unwrap().len(), 1);
        assert_eq!(u["attached"], serde_json::json!(["arn:aws:iam::123456789012:policy/keyward/keyward-machine"]));

        let arn = u["arn"].as_str().unwrap();
        let p = w.admin(&["policies", &acct.bucket, &acct.key_arn]);
        assert_eq!(statements(&p["bucket"])[0], acct.unrelated, "the unrelated statement is unchanged");
        for doc in [&p["bucket"], &p["key"]] {
            let st = statement_named(doc, "KeywardMachines");
            assert!(names(&st, arn) && mfa_required(&st), "{st}");
        }
        let admin = w.admin(&["role", "keyward-admin"]);
        assert!(names(&admin["trust"], arn), "designated admin: {admin}");

        let id = w.aws("alice-laptop", &["sts", "get-caller-identity"]);
        let id: Value = serde_json::from_slice(&id.stdout).unwrap_or_else(|_| panic!("aws: {}", String::from_utf8_lossy(&id.stderr)));
        assert_eq!(id["Arn"], arn);
        assert_eq!(w.admin_as_user(&["caller", "alice-laptop"]), serde_json::json!(arn), "boto3 too");

        // Re-running changes nothing, and its report lists the same steps.
        let again = bootstrap(&w, &acct, "alice", "laptop", true).json();
        assert_eq!(step_ids(&again), step_ids(&report));
        assert!(again["steps"].as_array().unwrap().iter().all(|s| s["status"] == "already_done"), "{again}");
    }
}

e2e! {
    fn setup_dry_run_and_run_list_the_same_steps(w) {
        let acct = account(&w);
        let totp = w.device_totp_command("alice-desk");
        let args = ["setup", "--owner", "alice", "--machine", "desk", "--group", "dev", "--bucket", &acct.bucket, "--json", "--mfa-process", &totp];
        let mut dry = args.to_vec();
        dry.push("--dry-run");
        let planned = w.keyward_admin(&dry).ok().json();
        assert_eq!(planned["dry_run"], true);
        assert_eq!(w.admin(&["user", "alice-desk"])["exists"], false, "a dry run creates nothing");
        let mut run = args.to_vec();
        run.push("--yes");
        let done = w.keyward_admin(&run).ok().json();
        assert_eq!(step_ids(&planned), step_ids(&done));
        assert_eq!(status_of(&planned, "create_user"), "would_do");
        assert_eq!(status_of(&done, "create_user"), "done");
    }
}

e2e! {
    fn enroll_pairs_a_second_computer_and_grants_only_what_it_names(laptop) {
        let acct = account(&laptop);
        bootstrap(&laptop, &acct, "alice", "laptop", true);
        let work = laptop.sibling("work");
        let (lines, setup) = enroll(&laptop, &work, "work", &["--group", "dev", "--bucket", &acct.bucket]);
        assert_eq!(lines[0]["user"], "alice-work");
        let pairing = setup.stdout.split("pairing code ").nth(1).map(str::trim).unwrap_or_default().to_owned();
        assert_eq!(pairing.len(), 9, "{}", setup.stdout);
        let enroll_stderr = laptop.proxy.control.denials();
        assert_eq!(enroll_stderr, vec![], "enrollment and pairing pass under enforcement");
        let grant = lines.last().unwrap();
        assert_eq!(grant["complete"], true, "{grant}");

        let u = laptop.admin(&["user", "alice-work"]);
        assert_eq!(u["tags"]["keyward-owner"], "alice");
        assert!(u["tags"].get("keyward-enrolled").is_some());
        assert_eq!(u["groups"], serde_json::json!(["dev"]), "only the groups named at enroll");
        let p = laptop.admin(&["policies", &acct.bucket, &acct.key_arn]);
        assert!(names(&p["bucket"], u["arn"].as_str().unwrap()));
        assert!(!names(&p["key"], u["arn"].as_str().unwrap()), "the key was not named");
        assert_eq!(work.admin_as_user(&["caller", "alice-work"]), u["arn"]);
        assert!(!laptop.admin(&["role", "keyward-admin"])["trust"].to_string().contains("alice-work"), "an enrolled computer is an ordinary machine");
    }
}

e2e! {
    fn an_enrollment_code_works_once_for_its_computer_and_not_after_15_minutes(laptop) {
        let acct = account(&laptop);
        bootstrap(&laptop, &acct, "alice", "laptop", true);
        let work = laptop.sibling("work");
        let code = laptop.keyward(&["enroll", "--machine", "work", "--no-wait", "--json"]).ok().json()["code"].as_str().unwrap().to_owned();
        let totp = work.device_totp_command("alice-work");
        assert!(work.setup_enrolled(&code, &["--yes", "--mfa-process", &totp]).status.success());

        // The same code on another computer: AWS (the evaluator) refuses a second key.
        let thief = laptop.sibling("thief");
        let out = thief.setup_enrolled(&code, &["--yes", "--mfa-process", &totp]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains("already registered"), "{e}");
        assert_eq!(laptop.proxy.control.keys_of("alice-work").len(), 1, "still one key");

        // For another name: refused before any AWS call.
        let before = laptop.proxy.control.total();
        let out = thief.setup_enrolled(&code, &["--machine", "other", "--yes"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("registers the computer `work`, not `other`"));
        assert_eq!(laptop.proxy.control.total(), before);

        // Past 15 minutes, AWS refuses the session itself.
        let late = laptop.keyward(&["enroll", "--machine", "late", "--no-wait", "--json"]).ok().json()["code"].as_str().unwrap().to_owned();
        laptop.proxy.control.advance_clock(std::time::Duration::from_secs(16 * 60));
        let out = thief.setup_enrolled(&late, &["--yes", "--mfa-process", &thief.device_totp_command("alice-late")]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains("expired"), "{e}");
        assert_eq!(laptop.admin(&["user", "alice-late"])["exists"], false);
    }
}

e2e! {
    fn rerun_is_a_no_op_kill_then_rerun_completes_and_abort_leaves_no_trace(w) {
        let acct = account(&w);
        bootstrap(&w, &acct, "alice", "laptop", true);
        let calls = |a: &str| w.proxy.control.count(a);
        let keys = calls("CreateAccessKey");
        // A second computer, killed while creating its access key.
        w.proxy.control.inject(Some("CreateAccessKey"), keyward_tests::proxy::Fault::Hang(std::time::Duration::from_secs(30)), 1);
        let totp = w.device_totp_command("alice-desk");
        let args = ["setup", "--owner", "alice", "--machine", "desk", "--group", "dev", "--bucket", &acct.bucket, "--kms-key", &acct.key_arn, "--yes", "--mfa-process", &totp];
        let running = w.keyward_admin(&args).spawn();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while calls("CreateAccessKey") < keys + 1 {
            assert!(std::time::Instant::now() < deadline, "setup never reached CreateAccessKey");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        running.kill();
        let half = w.admin(&["user", "alice-desk"]);
        assert_eq!(half["exists"], true);
        assert!(half["tags"].get("keyward-enrolled").is_none());
        let arn = half["arn"].as_str().unwrap().to_owned();
        assert!(names(&w.admin(&["policies", &acct.bucket, &acct.key_arn])["bucket"], &arn), "the policy step ran before the key");

        w.proxy.control.clear_faults();
        let mut resumed = args.to_vec();
        resumed.push("--json");
        let done = w.keyward_admin(&resumed).ok().json();
        assert_eq!(status_of(&done, "create_user"), "already_done");
        assert_eq!(status_of(&done, "store_key"), "done");
        let full = w.admin(&["user", "alice-desk"]);
        assert!(full["tags"].get("keyward-enrolled").is_some());
        assert_eq!(full["keys"].as_array().unwrap().len(), 1);

        // --abort takes it all back: IAM, the bucket policy, the key policy, locally too.
        w.keyward_admin(&["setup", "--abort", "--owner", "alice", "--machine", "desk"]).ok();
        assert_eq!(w.admin(&["user", "alice-desk"])["exists"], false);
        let p = w.admin(&["policies", &acct.bucket, &acct.key_arn]);
        assert!(!names(&p["bucket"], &arn) && !names(&p["key"], &arn), "{p}");
        assert_eq!(statements(&p["bucket"])[0], acct.unrelated);
        assert!(names(&p["bucket"], "alice-laptop"), "the other computer stays");
        let cfg = std::fs::read_to_string(w.home.join(".aws/config")).unwrap_or_default();
        assert!(!cfg.contains("--profile alice-desk") && cfg.contains("--profile alice-laptop"), "{cfg}");
    }
}

e2e! {
    fn bad_input_is_refused_before_any_change(w) {
        let acct = account(&w);
        let totp = w.device_totp_command("x");
        let before = w.proxy.control.total();
        for (args, want) in [
            (vec!["--owner", "al ice", "--machine", "laptop"], "not a valid owner"),
            (vec!["--owner", "Alice", "--machine", "laptop"], "not a valid owner"),
            (vec!["--owner", "alice", "--machine", &"m".repeat(60)], "not a valid user name"),
            (vec!["--owner", "alice", "--machine", "lap/top"], "not a valid machine name"),
        ] {
            let mut all = vec!["setup"];
            all.extend(args.iter().copied());
            let e = w.keyward_admin(&all).fails().stderr;
            assert!(e.contains(want), "{args:?}: {e}");
        }
        assert_eq!(w.proxy.control.total(), before, "names are checked before any AWS call");

        let e = w.keyward_admin(&["setup", "--owner", "alice", "--machine", "laptop", "--bucket", "no-such-bucket", "--yes", "--mfa-process", &totp]).fails().stderr;
        assert!(e.contains("bucket no-such-bucket does not exist") && e.contains("Nothing was changed"), "{e}");
        let e = w.keyward_admin(&["setup", "--owner", "alice", "--machine", "laptop", "--kms-key", "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000", "--yes"]).fails().stderr;
        assert!(e.contains("does not exist"), "{e}");
        let e = w.keyward_admin(&["setup", "--owner", "alice", "--machine", "laptop", "--group", "nope", "--yes"]).fails().stderr;
        assert!(e.contains("group nope does not exist"), "{e}");
        assert_eq!(w.proxy.control.count("CreateUser"), 0);

        w.admin(&["make-plain-user", "alice-stranger"]);
        let e = w.keyward_admin(&["setup", "--owner", "alice", "--machine", "stranger", "--yes", "--mfa-process", &totp]).fails().stderr;
        assert!(e.contains("keyward did not create"), "{e}");

        w.admin(&["put-bucket-policy-raw", &acct.bucket, "{this is not json"]);
        let puts = w.proxy.control.count("PutBucketPolicy");
        let e = w.keyward_admin(&["setup", "--owner", "alice", "--machine", "laptop", "--bucket", &acct.bucket, "--yes", "--mfa-process", &totp]).fails().stderr;
        assert!(e.contains("not valid JSON"), "{e}");
        assert_eq!(w.proxy.control.count("PutBucketPolicy"), puts, "no policy written");

        // No keychain: stop before anything changes, and say how to fix it.
        let users = w.proxy.control.count("CreateUser");
        let e = w.keyward_admin(&["setup", "--owner", "alice", "--machine", "laptop", "--yes", "--store", "os-keychain"]).env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus").fails().stderr;
        assert!(e.contains("keychain is not reachable") && e.contains("--store encrypted-file"), "{e}");
        // Left to choose, it picks the encrypted file, and wants its passphrase first.
        let e = w.keyward_admin(&["setup", "--owner", "alice", "--machine", "laptop", "--yes"]).env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus").fails().stderr;
        assert!(e.contains("passphrase") && e.contains("--passphrase-stdin"), "{e}");
        assert_eq!(w.proxy.control.count("CreateUser"), users);
        assert_eq!(w.proxy.control.count("CreateAccessKey"), 0);
    }
}
