//! `keyward-bench exec`: a credential fetch through `keyward exec`'s loopback endpoint
//! (an HTTP GET, as the SDKs make it) against the credential_process helper (a process
//! per fetch, as ~/.aws/config makes it), p50 in one run.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use keyward_tests::world::World;

use crate::{ms, percentile, time_runs};

/// In the command `keyward exec` runs: `n` GETs, each on a new connection; prints the
/// sorted latencies in microseconds. The token never leaves this process.
pub fn probe(n: usize) {
    let uri = std::env::var("AWS_CONTAINER_CREDENTIALS_FULL_URI").expect("inside keyward exec");
    let token = std::env::var("AWS_CONTAINER_AUTHORIZATION_TOKEN").expect("inside keyward exec");
    let host = uri
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
    );
    let mut out: Vec<u128> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut s = TcpStream::connect(&host).expect("connect");
            s.write_all(request.as_bytes()).expect("write");
            let mut body = Vec::new();
            s.read_to_end(&mut body).expect("read");
            assert!(body.starts_with(b"HTTP/1.1 200"), "endpoint refused");
            t.elapsed().as_micros()
        })
        .collect();
    out.sort_unstable();
    println!(
        "{}",
        out.iter()
            .map(u128::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

pub fn run(runs: usize) {
    let Some(w) = World::new("bench-exec") else {
        eprintln!(
            "bench: a part of the test world is missing; run ./tests/run.sh once to install them"
        );
        std::process::exit(1);
    };
    w.machine("bench", None);
    let login = w.keyward(&["login", "--profile", "bench"]).output();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    println!("## a credential fetch: keyward exec's endpoint vs the credential_process helper, {runs} runs each");
    let me = std::env::current_exe().expect("own path");
    let mut c = w.command(w.bin("keyward"));
    c.args(["exec", "bench", "--"])
        .arg(&me)
        .args(["exec-probe", &runs.to_string()]);
    let out = c.output().expect("keyward exec");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let endpoint: Vec<Duration> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|us| Duration::from_micros(us.parse().expect("micros")))
        .collect();
    let helper = time_runs(runs, || {
        let mut c = w.command(w.bin("keyward-credential-process"));
        c.args(["--profile", "bench"]);
        c
    });
    let (e, h) = (percentile(&endpoint, 0.5), percentile(&helper, 0.5));
    println!(
        "endpoint GET (new connection)   p50 {:>10}  p99 {:>10}",
        ms(e),
        ms(percentile(&endpoint, 0.99))
    );
    println!(
        "credential_process helper       p50 {:>10}  p99 {:>10}",
        ms(h),
        ms(percentile(&helper, 0.99))
    );
    println!(
        "endpoint/helper p50 ratio: {:.2}x",
        e.as_secs_f64() / h.as_secs_f64()
    );
}
