//! The leak scan: no secret key, session token, enrollment credential, MFA seed or
//! valid MFA code in any file under the world, any output, any argv, or any process's
//! command line or environment.

use std::path::{Path, PathBuf};

use crate::world::World;

pub fn assert_none(w: &World, registered: &[String], outputs: &[String], argvs: &[String]) {
    let mut canaries = registered.to_vec();
    canaries.extend(w.proxy.control.issued_secrets());
    canaries.extend(w.proxy.control.seeds_base32());
    let codes = w.proxy.control.valid_codes();
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    for path in walk(w.root()) {
        if path.starts_with(&w.outside) {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&path) {
            places.push((path.display().to_string(), bytes));
        }
    }
    for (i, o) in outputs.iter().enumerate() {
        places.push((format!("output #{i} of a command"), o.clone().into_bytes()));
    }
    for a in argvs {
        places.push((format!("argv {a}"), a.clone().into_bytes()));
    }
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            for f in ["cmdline", "environ"] {
                if let Ok(b) = std::fs::read(p.path().join(f)) {
                    places.push((format!("{}/{f}", p.path().display()), b));
                }
            }
        }
    }
    for (place, bytes) in &places {
        for c in &canaries {
            assert!(
                !contains(bytes, c.as_bytes()),
                "{}: a secret ({}…) leaked into {place}",
                w.test,
                &c[..4.min(c.len())]
            );
        }
        for code in &codes {
            assert!(
                !contains_token(bytes, code.as_bytes()),
                "{}: MFA code leaked into {place}",
                w.test
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => out.extend(walk(&p)),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A digit string not embedded in a longer run of digits.
fn contains_token(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).enumerate().any(|(i, w)| {
        w == needle
            && (i == 0 || !hay[i - 1].is_ascii_digit())
            && hay
                .get(i + needle.len())
                .is_none_or(|b| !b.is_ascii_digit())
    })
}
