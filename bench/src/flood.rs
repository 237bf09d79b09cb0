//! The helper's latency while another process of the user holds 2000 idle
//! connections to the daemon, whose open-file limit is pinned at 1024 (the issue's
//! setting): the daemon sheds idle connections and rate-limits its warning.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Keeps up to `n` idle connections open until `stop`, reconnecting closed ones.
fn hold_idle(socket: &Path, n: usize, stop: &AtomicBool) -> usize {
    let mut held: Vec<UnixStream> = Vec::new();
    let mut most = 0;
    while !stop.load(Ordering::SeqCst) {
        held.retain(|s| {
            let mut buf = [0u8; 1];
            s.set_nonblocking(true).is_ok()
                && matches!(std::io::Read::read(&mut &*s, &mut buf), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
        });
        while held.len() < n {
            match UnixStream::connect(socket) {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
        most = most.max(held.len());
        std::thread::sleep(Duration::from_millis(100));
    }
    most
}

/// Raises this process's own open-file limit, so that it can hold the flood.
fn raise_own_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    );
}

/// Pins the daemon's open-file limit with util-linux `prlimit`.
pub fn pin_daemon_limit(pid: i32, limit: u32) -> bool {
    Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `measure` while 2000 idle connections are held; returns its result and the
/// most connections held at once.
pub fn during_flood<T>(socket: &Path, measure: impl FnOnce() -> T) -> (T, usize) {
    raise_own_limit();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let holder = s.spawn(|| hold_idle(socket, 2000, &stop));
        std::thread::sleep(Duration::from_secs(2));
        let out = measure();
        stop.store(true, Ordering::SeqCst);
        (out, holder.join().unwrap_or(0))
    })
}
