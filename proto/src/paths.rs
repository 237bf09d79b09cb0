//! Where the daemon's socket lives: `$XDG_RUNTIME_DIR/keyward/`, or a per-uid 0700
//! directory under the temp dir when that is unset.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const SOCKET_NAME: &str = "keywardd.sock";
pub const LOCK_NAME: &str = "keywardd.lock";
pub const START_LOCK_NAME: &str = "start.lock";
pub const LOG_NAME: &str = "keywardd.log";

/// The runtime directory, not created.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("keyward"),
        _ => std::env::temp_dir().join(format!("keyward-{}", rustix::process::getuid().as_raw())),
    }
}

pub fn socket_path() -> PathBuf {
    runtime_dir().join(SOCKET_NAME)
}

/// Creates the runtime dir 0700 if missing, then checks that we own it and that nobody
/// else can enter it. Returns the reason when it is unsafe.
pub fn ensure_runtime_dir() -> io::Result<PathBuf> {
    let dir = runtime_dir();
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", dir.display()),
            ))
        }
    }
    check_private_dir(&dir)?;
    Ok(dir)
}

/// The directory must be a real directory (not a link), owned by us, mode 0700.
pub fn check_private_dir(dir: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let uid = rustix::process::getuid().as_raw();
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory; remove it and retry",
            dir.display()
        )));
    }
    if meta.uid() != uid {
        return Err(io::Error::other(format!(
            "{} is owned by uid {}, not by you (uid {uid}); remove it and retry",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode != 0o700 {
        return Err(io::Error::other(format!(
            "{} has mode {mode:o}, expected 700; run `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}
