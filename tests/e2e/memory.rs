//! After `keyward lock`, no copy of a secret is left in keywardd's memory: the long-term
//! key, the session's secret key and its token. Read from /proc/<pid>/mem as root (the
//! daemon is not dumpable, so nobody else can), every writable mapping, counted.

use std::io::{Read, Seek, SeekFrom};

use keyward_tests::e2e;
use keyward_tests::world::skip;

/// How often `needle` occurs in the writable memory of `pid`.
fn copies_in_memory(pid: i32, needles: &[&str]) -> Vec<usize> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut counts = vec![0; needles.len()];
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (start, end) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; usize::try_from(end - start).unwrap()];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        for (n, needle) in needles.iter().enumerate() {
            counts[n] += buf
                .windows(needle.len())
                .filter(|w| *w == needle.as_bytes())
                .count();
        }
    }
    counts
}

e2e! {
    fn after_lock_no_secret_is_left_in_the_daemons_memory(w) {
        if !rustix::process::getuid().is_root() {
            skip(&w.test, "reading a non-dumpable daemon's memory needs root");
            return;
        }
        let m = w.machine("alice-laptop", None);
        let out = w.helper("alice-laptop");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let creds: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let secret = creds["SecretAccessKey"].as_str().unwrap().to_owned();
        let token = creds["SessionToken"].as_str().unwrap().to_owned();
        let pid = w.daemon_pid().expect("the daemon runs");
        let needles = [
            m.secret_access_key.as_str(),
            secret.as_str(),
            token.as_str(),
        ];
        let before = copies_in_memory(pid, &needles);
        assert!(
            before[1] >= 1,
            "the scan finds the live session: {before:?}"
        );
        w.keyward(&["lock"]).ok();
        let after = copies_in_memory(pid, &needles);
        eprintln!("copies before lock {before:?}, after lock {after:?} (long-term key, session secret, session token)");
        assert_eq!(
            after,
            vec![0, 0, 0],
            "copies left after lock (long-term key, session secret, session token)"
        );
    }
}
