//! keyward-fault-proxy [--moto PROGRAM]: the emulated AWS of the tests as a standalone
//! process (moto plus keyward's emulator with IAM enforcement), for the benchmark and
//! for poking at by hand. Prints its URL, then serves until killed.

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
    let dir = tempfile::tempdir().expect("a temporary directory");
    let proxy = keyward_tests::proxy::FaultProxy::start(&moto, dir.path()).unwrap_or_else(|e| {
        eprintln!("keyward-fault-proxy: {e:#}");
        std::process::exit(1);
    });
    println!("{}", proxy.url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
