//! Desktop notices (notify-send on Linux, osascript on macOS), fire and forget. A
//! missing program or no desktop session is not an error: the notice is also logged.

use std::process::{Command, Stdio};

/// Shows `body` under the title "keyward", unless the user's config says
/// `notify = false`.
pub fn notify(body: &str, enabled: bool) {
    if !enabled {
        return;
    }
    let mut cmd = if cfg!(target_os = "macos") {
        let script = format!(
            "display notification \"{}\" with title \"keyward\"",
            body.replace(['"', '\\'], "'")
        );
        let mut c = Command::new("osascript");
        c.args(["-e", &script]);
        c
    } else {
        let mut c = Command::new("notify-send");
        c.args(["--app-name=keyward", "keyward", body]);
        c
    };
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        // Reaped off the caller's path; the program exits at once.
        std::thread::spawn(move || child.wait());
    }
}
