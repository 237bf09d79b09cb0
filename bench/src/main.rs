//! keyward-bench: prints figures, asserts nothing. Build with `--release`; see bench/run.sh.
//!
//! Everything runs against the test world (moto behind the fault proxy, a private
//! Secret Service), and each figure is printed beside its baseline from the same run.

#![forbid(unsafe_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_proto::client::Client;
use keyward_proto::CredentialsRequest;
use keyward_tests::world::{which, World};

mod account;
mod exec;
mod flood;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `cmd` `n` times (stdout discarded), returns sorted wall times.
fn time_runs(n: usize, make: impl FnMut() -> Command) -> Vec<Duration> {
    let (v, failed) = time_runs_counting(n, make);
    assert_eq!(failed, 0, "benchmark command failed");
    v
}

/// [`time_runs`] that counts failed runs instead of stopping at one.
fn time_runs_counting(n: usize, mut make: impl FnMut() -> Command) -> (Vec<Duration>, usize) {
    let mut failed = 0;
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let mut c = make();
            c.stdout(Stdio::null()).stderr(Stdio::null());
            let t = Instant::now();
            let st = c.status().expect("spawn");
            failed += usize::from(!st.success());
            t.elapsed()
        })
        .collect();
    v.sort();
    (v, failed)
}

fn rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn throughput(client: &Client, profile: &str, clients: usize, per_client: usize) -> f64 {
    let body = serde_json::to_vec(&CredentialsRequest {
        profile: profile.to_owned(),
        can_prompt: false,
    })
    .unwrap();
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                for _ in 0..per_client {
                    let r = client
                        .request("POST", "/v1/credentials", Some(&body))
                        .expect("request");
                    assert!(r.is_success());
                }
            });
        }
    });
    (clients * per_client) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    // `keyward-bench account`: only the account reader's figures.
    if std::env::args().nth(1).as_deref() == Some("account") {
        account::run();
        return;
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // `keyward-bench exec`: the endpoint against the helper; `exec-probe N` runs inside.
    match std::env::args().nth(1).as_deref() {
        Some("exec") => return exec::run(runs),
        Some("exec-probe") => {
            return exec::probe(
                std::env::args()
                    .nth(2)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(runs),
            )
        }
        _ => {}
    }
    let Some(w) = World::new("bench") else {
        eprintln!(
            "bench: a part of the test world is missing; run ./tests/run.sh once to install them"
        );
        std::process::exit(1);
    };
    let machine = w.machine("bench", None);
    let client = w.client();
    let login = w.keyward(&["login", "--profile", "bench"]).output();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let pid = w.daemon_pid().expect("daemon pid");
    let idle_rss = rss_kib(pid);

    println!(
        "keyward benchmark ({} build, {} cores)",
        if cfg!(debug_assertions) {
            "DEBUG"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!();
    println!("## credential_process latency, warm cache, {runs} runs each");
    let floor = time_runs(runs, || w.command(w.bin("keyward-bench-floor")));
    let helper = time_runs(runs, || {
        let mut c = w.command(w.bin("keyward-credential-process"));
        c.args(["--profile", "bench"]);
        c
    });
    let full = time_runs(runs, || {
        let mut c = w.command(w.bin("keyward"));
        c.args(["credential-process", "--profile", "bench"]);
        c
    });
    for (name, v) in [
        ("floor (fixed JSON)", &floor),
        ("keyward-credential-process", &helper),
        ("keyward credential-process", &full),
    ] {
        println!(
            "{name:<30} p50 {:>10}  p99 {:>10}  p50/floor {:.2}x",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            percentile(v, 0.5).as_secs_f64() / percentile(&floor, 0.5).as_secs_f64()
        );
    }

    println!();
    println!("## daemon throughput over the socket (one request per connection, like the helper)");
    for clients in [1, 8, 64] {
        let per = 20_000 / clients;
        let rps = throughput(&client, "bench", clients, per);
        println!("{clients:>3} concurrent clients: {rps:>9.0} requests/s");
    }

    println!();
    println!("## helper under a flood: 2000 idle connections, daemon open-file limit 1024");
    if flood::pin_daemon_limit(pid, 1024) {
        let socket = w
            .run
            .join("keyward")
            .join(keyward_proto::paths::SOCKET_NAME);
        let flood_runs = (runs / 5).max(50);
        let ((flooded, failed), held) = flood::during_flood(&socket, || {
            time_runs_counting(flood_runs, || {
                let mut c = w.command(w.bin("keyward-credential-process"));
                c.args(["--profile", "bench"]);
                c
            })
        });
        let (calm, busy) = (percentile(&helper, 0.5), percentile(&flooded, 0.5));
        println!("unloaded helper            p50 {:>10}", ms(calm));
        println!(
            "flooded helper ({held} held) p50 {:>10}  p99 {:>10}  flooded/unloaded {:.2}x (target <= 3x)",
            ms(busy),
            ms(percentile(&flooded, 0.99)),
            busy.as_secs_f64() / calm.as_secs_f64()
        );
        let warnings = w.daemon_log().matches("accept failed").count();
        println!(
            "failed helper runs: {failed} of {flood_runs}; 'accept failed' log lines: {warnings}"
        );
    } else {
        println!("SKIPPED: `prlimit` (util-linux) is missing");
    }

    println!();
    println!("## daemon memory");
    let before = rss_kib(pid);
    throughput(&client, "bench", 8, 100_000 / 8);
    let after = rss_kib(pid);
    println!("RSS idle (after login): {:.1} MB", idle_rss as f64 / 1024.0);
    println!(
        "RSS before 100k requests: {:.1} MB, after: {:.1} MB (+{:.2} MB)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after as f64 - before as f64) / 1024.0
    );

    println!();
    if which("aws").is_some() {
        let aws_runs: usize = std::env::var("BENCH_AWS_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        println!("## aws sts get-caller-identity, {aws_runs} runs each, interleaved");
        let mut through = Vec::new();
        let mut static_keys = Vec::new();
        for _ in 0..aws_runs {
            through.extend(time_runs(1, || {
                let mut c = w.command("aws");
                c.args([
                    "--profile",
                    "bench",
                    "--endpoint-url",
                    &w.proxy.url(),
                    "sts",
                    "get-caller-identity",
                ]);
                c
            }));
            static_keys.extend(time_runs(1, || {
                let mut c = w.command("aws");
                c.args([
                    "--endpoint-url",
                    &w.proxy.url(),
                    "sts",
                    "get-caller-identity",
                ])
                .env("AWS_ACCESS_KEY_ID", &machine.access_key_id)
                .env("AWS_SECRET_ACCESS_KEY", "static-baseline-key");
                c
            }));
        }
        through.sort();
        static_keys.sort();
        let (via, baseline) = (percentile(&through, 0.5), percentile(&static_keys, 0.5));
        println!("through keyward:  p50 {}", ms(via));
        println!("static keys:      p50 {}", ms(baseline));
        println!(
            "overhead:         {:+.1} ms",
            (via.as_secs_f64() - baseline.as_secs_f64()) * 1000.0
        );
    } else {
        println!("## aws sts get-caller-identity: SKIPPED, no `aws` on PATH");
    }
    println!();
    println!(
        "STS calls during the whole benchmark: GetSessionToken {}",
        w.proxy.control.count("GetSessionToken")
    );
    drop(w);
    println!();
    account::run();
}
