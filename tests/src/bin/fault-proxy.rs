//! keyward-fault-proxy [--moto PROGRAM]: the emulated AWS of the tests as a standalone
//! process (moto plus keyward's emulator with IAM enforcement), for the benchmark and
//! for poking at by hand. Prints its URL, then serves until SIGTERM or SIGINT, when it
//! stops its moto too.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;

fn main() {
    let mut moto = PathBuf::from("moto_server");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--moto" => moto = args.next().map(PathBuf::from).unwrap_or(moto),
            _ => {
                eprintln!("usage: keyward-fault-proxy [--moto PATH_TO_moto_server]");
                std::process::exit(2);
            }
        }
    }
    // Handlers first: a stop that comes the moment the URL is out must still stop moto.
    let (rt, stop) = stop_signals();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let proxy = keyward_tests::proxy::FaultProxy::start(&moto, dir.path()).unwrap_or_else(|e| {
        eprintln!("keyward-fault-proxy: {e:#}");
        std::process::exit(1);
    });
    println!("{}", proxy.url());
    let _ = std::io::stdout().flush();
    rt.block_on(stop);
    // Dropping the proxy kills and reaps moto (its own process group, so the signal
    // never reached it); then the temporary directory goes.
    drop(proxy);
    drop(dir);
}

/// A runtime with SIGTERM and SIGINT handlers installed, and the wait for either.
fn stop_signals() -> (
    tokio::runtime::Runtime,
    impl std::future::Future<Output = ()>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a signal runtime");
    let (mut term, mut int) = rt.block_on(async {
        (
            signal(SignalKind::terminate()).expect("SIGTERM handler"),
            signal(SignalKind::interrupt()).expect("SIGINT handler"),
        )
    });
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    (rt, stop)
}
