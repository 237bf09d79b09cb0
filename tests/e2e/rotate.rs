//! Key rotation: `keyward rotate` killed at each step (in flight, or its call landing
//! after the kill), then run again: the AWS CLI works before, between and after;
//! exactly one key is left, a new one; no secret leaks. And the daemon's own rotation
//! once the key is older than `rotate_after`, with its desktop notice.

use std::time::{Duration, Instant};

use keyward_tests::e2e;
use keyward_tests::proxy::Fault;
use keyward_tests::world::World;
use serde_json::Value;

use crate::common::{account, bootstrap};

/// A keyward machine (its machine policy lets it rotate its own key).
struct Laptop {
    profile: String,
    access_key_id: String,
}

fn laptop(w: &World) -> Laptop {
    let acct = account(w);
    bootstrap(w, &acct, "alice", "laptop", false);
    Laptop {
        profile: "alice-laptop".into(),
        access_key_id: iam_keys(w, "alice-laptop")[0].clone(),
    }
}

fn iam_keys(w: &World, user: &str) -> Vec<String> {
    let u = w.admin(&["user", user]);
    u["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// The AWS CLI works, and so does the stored key (STS, through the daemon's check).
fn cli_works(w: &World, profile: &str, when: &str) {
    let out = w.aws(profile, &["sts", "get-caller-identity"]);
    assert!(
        out.status.success(),
        "{when}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = w.client().check().unwrap();
    assert!(
        check.checked.iter().all(|k| k.ok),
        "{when}: {:?}",
        check.checked
    );
}

/// `keyward lock` first: a brand-new MFA session from the stored key.
fn fresh_session_works(w: &World, profile: &str, when: &str) {
    w.keyward(&["lock"]).ok();
    cli_works(w, profile, when);
}

/// Starts `keyward rotate` with `fault` on `action`, kills it once the call is seen.
fn killed_during(w: &World, profile: &str, action: &str, fault: Fault) {
    w.proxy.control.inject(Some(action), fault, 1);
    let before = w.proxy.control.count(action);
    let mut running = w.keyward(&["rotate", "--profile", profile]).spawn();
    let started = Instant::now();
    while w.proxy.control.count(action) == before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "rotate never called {action}"
        );
        assert!(running.is_running(), "rotate ended before {action}");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.kill();
}

e2e! {
    fn a_rotation_killed_at_each_step_finishes_on_a_rerun_with_one_new_key(w) {
    let m = laptop(&w);
    let user = "alice-laptop";
    fresh_session_works(&w, &m.profile, "before");
    // A kill right after CreateAccessKey landed: IAM holds a key whose secret is lost.
    w.admin(&["lose-a-new-key", user]);
    assert_eq!(iam_keys(&w, user).len(), 2);
    // The next run deletes that key first; killed there, before it lands.
    killed_during(&w, &m.profile, "DeleteAccessKey", Fault::Hang(Duration::from_secs(30)));
    assert_eq!(iam_keys(&w, user).len(), 2);
    cli_works(&w, &m.profile, "after a kill while tidying");
    // Killed while creating the new key, then while STS is asked about it.
    killed_during(&w, &m.profile, "CreateAccessKey", Fault::Hang(Duration::from_secs(30)));
    assert_eq!(iam_keys(&w, user), vec![m.access_key_id.clone()], "the lost key is gone");
    cli_works(&w, &m.profile, "after a kill at the new key");
    killed_during(&w, &m.profile, "GetCallerIdentity", Fault::Hang(Duration::from_secs(30)));
    assert_eq!(iam_keys(&w, user).len(), 2, "the new key is staged");
    fresh_session_works(&w, &m.profile, "after a kill before the switch");
    // Killed while deleting the old key, after the switch: the new key works.
    killed_during(&w, &m.profile, "DeleteAccessKey", Fault::Hang(Duration::from_secs(30)));
    assert_eq!(iam_keys(&w, user).len(), 2);
    fresh_session_works(&w, &m.profile, "after a kill before the old key went");

    let out = w.keyward(&["rotate", "--profile", &m.profile, "--json"]).ok();
    let report: Value = out.json();
    assert_eq!(report["complete"], true, "{report:#}");
    let keys = iam_keys(&w, user);
    assert_eq!(keys.len(), 1, "exactly one key: {keys:?}");
    assert_ne!(keys[0], m.access_key_id, "a new one");
    fresh_session_works(&w, &m.profile, "after");
    let secret = w.proxy.control.secret_of(&iam_keys(&w, user)[0]).unwrap();
    w.canary(&secret);
    }
}

e2e! {
    fn the_daemon_rotates_a_key_older_than_rotate_after_and_says_so(w) {
    let m = laptop(&w);
    // A key is "old" after one second here: the clock the check reads has moved past it.
    let cfg = w.home.join(".config/keyward/config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("rotate_after = \"1s\"\n{text}")).unwrap();
    let said = w.root().join("notices.txt");
    w.fake_program("notify-send", &format!("printf '%s\\n' \"$*\" >> {}", said.display()));
    w.stop_daemon();
    std::thread::sleep(Duration::from_secs(2));
    let mut c = w.cmd(w.bin("keyward-credential-process"));
    c.args(["--profile", &m.profile]).env("PATH", w.path_with_fakes()).secret_stdout();
    let out = c.output();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let started = Instant::now();
    loop {
        let keys = iam_keys(&w, "alice-laptop");
        if keys.len() == 1 && keys[0] != m.access_key_id {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "no automatic rotation: {keys:?}\n{}", w.daemon_log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let started = Instant::now();
    while !std::fs::read_to_string(&said).unwrap_or_default().contains("rotated the access key") {
        assert!(started.elapsed() < Duration::from_secs(30), "no notice: {}", w.daemon_log());
        std::thread::sleep(Duration::from_millis(200));
    }
    fresh_session_works(&w, &m.profile, "after the automatic rotation");
    let secret = w.proxy.control.secret_of(&iam_keys(&w, "alice-laptop")[0]).unwrap();
    w.canary(&secret);
    }
}
