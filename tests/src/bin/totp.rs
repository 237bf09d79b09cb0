//! keyward-test-totp SEEDFILE STATEFILE: prints a current TOTP code that it never
//! printed before (like a person waiting for the next code), for use as mfa_process.
//! keyward-test-totp --proxy URL --device NAME STATEFILE: the same, with the seed of a
//! device the fault proxy saw created (for `keyward setup`, which creates the device).

use std::time::Duration;

use keyward_tests::totp;

/// GET /__keyward_proxy/seed?device=NAME with a plain HTTP/1.1 request.
fn fetch_seed(url: &str, device: &str) -> String {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).expect("proxy");
    write!(s, "GET /__keyward_proxy/seed?device={device} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("http response");
    if !head.starts_with("HTTP/1.1 200") {
        eprintln!("the proxy knows no MFA device {device}");
        std::process::exit(1);
    }
    body.trim().to_owned()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (seed_b32, state_file) = match args.as_slice() {
        [flag, url, dev_flag, device, state] if flag == "--proxy" && dev_flag == "--device" => {
            (fetch_seed(url, device), state.clone())
        }
        [seed_file, state] => (
            std::fs::read_to_string(seed_file).expect("seed file"),
            state.clone(),
        ),
        _ => {
            eprintln!(
                "usage: keyward-test-totp SEEDFILE STATEFILE | --proxy URL --device NAME STATEFILE"
            );
            std::process::exit(2);
        }
    };
    let seed = totp::seed_from_base32(&seed_b32).expect("base32 seed");
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
        // AWS accepts one step either side: start at t-1, as a person reading a fresh app might.
        let counter = last.map_or(now - 1, |l| (l + 1).max(now - 1));
        if counter <= now + 1 {
            std::fs::write(&state_file, counter.to_string()).expect("state file");
            println!("{}", totp::code(&seed, counter));
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
