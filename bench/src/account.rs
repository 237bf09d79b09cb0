//! The bulk account reader at scale, against the emulator: `keyward machines` (as an
//! admin computer, then per machine as an ordinary one) and `keyward audit`, with the
//! number of AWS calls each makes and its wall time.

use std::time::Instant;

use keyward_tests::world::World;

/// AWS calls and seconds of one keyward command on `w`.
fn measure(w: &World, args: &[&str]) -> (usize, f64) {
    let before = w.proxy.control.total();
    let started = Instant::now();
    let out = w.keyward(args).output();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (w.proxy.control.total() - before, secs)
}

/// alice-laptop, an admin computer, in a fresh emulated account with `machines` more
/// machines of alice and `buckets` buckets.
fn account(machines: usize, buckets: usize) -> World {
    let w = World::new(&format!("bench-account-{machines}")).expect("the test parts");
    w.admin(&["make-world", "data-bucket", "dev"]);
    let totp = w.device_totp_command("alice-laptop");
    let out = w
        .keyward_admin(&[
            "setup",
            "--owner",
            "alice",
            "--machine",
            "laptop",
            "--admin",
            "--group",
            "dev",
            "--yes",
            "--mfa-process",
            &totp,
        ])
        .output();
    assert!(
        out.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Through the emulator up to 100 (so the per-machine path is authorized as in
    // AWS); beyond, straight into moto: the emulator re-reads the account after every
    // IAM write, which is right for authorization and far too slow for 1,000 users.
    if machines <= 100 {
        w.admin(&["make-machines", &machines.to_string(), "alice"]);
    } else {
        direct(&w, &["make-machines", &machines.to_string(), "alice"]);
    }
    if buckets > 0 {
        direct(&w, &["make-buckets", &buckets.to_string()]);
    }
    // The MFA sessions (this computer's and the admin role's) first: a code may wait
    // for the next 30 s step, which is not the reader's time.
    let warm = w
        .keyward(&["machines", "--json", "--owner", "nobody"])
        .output();
    assert!(
        warm.status.success(),
        "{}",
        String::from_utf8_lossy(&warm.stderr)
    );
    w
}

fn direct(w: &World, args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/py/aws_admin.py");
    let mut c = w.command("python3");
    c.arg(script)
        .args(args)
        .env("AWS_ENDPOINT_URL", w.moto_url())
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench");
    let out = c.output().expect("python3");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn run() {
    println!("## keyward machines: AWS calls and wall time (emulator, enforcing)");
    println!(
        "{:>9}  {:>14} {:>10}  {:>18} {:>10}",
        "machines", "bulk (admin)", "", "per machine (old)", ""
    );
    println!(
        "{:>9}  {:>14} {:>10}  {:>18} {:>10}",
        "", "calls", "time", "calls", "time"
    );
    for n in [10usize, 100, 1000] {
        let w = account(n, 0);
        let (calls, secs) = measure(&w, &["machines", "--json"]);
        let old = if n <= 100 {
            let (c, s) = measure(&w, &["machines", "--json", "--no-admin"]);
            (c.to_string(), format!("{s:.1} s"))
        } else {
            ("(skipped)".into(), String::new())
        };
        println!(
            "{:>9}  {:>14} {:>8.1} s  {:>18} {:>10}",
            n + 1,
            calls,
            secs,
            old.0,
            old.1
        );
    }
    println!();
    println!("## keyward audit: 1,000 machines and 200 buckets (budget: under 60 s)");
    let w = account(1000, 200);
    let (calls, secs) = measure(&w, &["audit", "--json", "--fail-on", "never", "--no-local"]);
    println!("audit: {calls} AWS calls in {secs:.1} s");
}
