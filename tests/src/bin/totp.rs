//! keyward-test-totp SEEDFILE STATEFILE: prints a current TOTP code that it never
//! printed before (like a person waiting for the next code), for use as mfa_process.

use std::time::Duration;

use keyward_tests::totp;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(seed_file), Some(state_file)) = (args.next(), args.next()) else {
        eprintln!("usage: keyward-test-totp SEEDFILE STATEFILE");
        std::process::exit(2);
    };
    let seed = std::fs::read_to_string(&seed_file).expect("seed file");
    let seed = totp::seed_from_base32(&seed).expect("base32 seed");
    // A lock so concurrent runs hand out distinct codes.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(format!("{state_file}.lock"))
        .expect("lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    let last: Option<u64> = std::fs::read_to_string(&state_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    loop {
        let now = totp::now_step();
        let counter = last.map_or(now, |l| (l + 1).max(now - 1));
        if counter <= now + 1 {
            std::fs::write(&state_file, counter.to_string()).expect("state file");
            println!("{}", totp::code(&seed, counter));
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
