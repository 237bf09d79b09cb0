//! Where the daemon's socket and keyward's config live, and the checks that make a
//! client trust a socket before it sends anything.
//!
//! The runtime directory is `$XDG_RUNTIME_DIR/keyward/`. Without that variable it is a
//! private directory under the user's home (`$XDG_STATE_HOME/keyward/run`, by default
//! `~/.local/state/keyward/run`), never a name in a shared directory such as `/tmp`
//! that another user could create first. Only when no home is usable does it fall
//! back to `/tmp/keyward-<uid>`, where the ownership checks below still apply.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const SOCKET_NAME: &str = "keywardd.sock";
pub const LOCK_NAME: &str = "keywardd.lock";
pub const START_LOCK_NAME: &str = "start.lock";
pub const LOG_NAME: &str = "keywardd.log";
/// The last TOTP step each MFA device used (never a code), for a restarted daemon.
pub const MFA_STEPS_NAME: &str = "mfa-steps.json";

/// A Unix socket path must fit in `sun_path` (108 bytes on Linux, 104 on macOS).
const MAX_SOCKET_PATH: usize = 100;

/// Which rule chose the runtime directory (`keyward doctor` says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeSource {
    /// `$XDG_RUNTIME_DIR/keyward`: the login session's private directory.
    XdgRuntimeDir,
    /// `$XDG_STATE_HOME/keyward/run` or `~/.local/state/keyward/run`.
    Home,
    /// `/tmp/keyward-<uid>`: no usable home; ownership checks still apply.
    Temp,
}

impl std::fmt::Display for RuntimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuntimeSource::XdgRuntimeDir => "$XDG_RUNTIME_DIR",
            RuntimeSource::Home => "a private directory in your home ($XDG_RUNTIME_DIR is unset)",
            RuntimeSource::Temp => "the temp dir ($XDG_RUNTIME_DIR is unset and no home is usable)",
        })
    }
}

fn non_empty(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The runtime directory and why it was chosen, not created.
pub fn runtime_location() -> (PathBuf, RuntimeSource) {
    if let Some(d) = non_empty("XDG_RUNTIME_DIR") {
        return (d.join("keyward"), RuntimeSource::XdgRuntimeDir);
    }
    let state =
        non_empty("XDG_STATE_HOME").or_else(|| non_empty("HOME").map(|h| h.join(".local/state")));
    if let Some(dir) = state.map(|s| s.join("keyward/run")) {
        if dir.join(SOCKET_NAME).as_os_str().len() <= MAX_SOCKET_PATH {
            return (dir, RuntimeSource::Home);
        }
    }
    let uid = rustix::process::getuid().as_raw();
    (
        std::env::temp_dir().join(format!("keyward-{uid}")),
        RuntimeSource::Temp,
    )
}

/// The runtime directory, not created.
pub fn runtime_dir() -> PathBuf {
    runtime_location().0
}

pub fn socket_path() -> PathBuf {
    runtime_dir().join(SOCKET_NAME)
}

/// keyward's config file: `$XDG_CONFIG_HOME/keyward/config.toml` (by default
/// `~/.config/keyward/`), or `~/Library/Application Support/keyward/` on macOS.
pub fn config_file() -> Option<PathBuf> {
    let dir = if cfg!(target_os = "macos") {
        non_empty("HOME")?.join("Library/Application Support/keyward")
    } else {
        non_empty("XDG_CONFIG_HOME")
            .or_else(|| non_empty("HOME").map(|h| h.join(".config")))?
            .join("keyward")
    };
    Some(dir.join("config.toml"))
}

/// Creates the runtime dir 0700 if missing (its parents too, for the one in the home),
/// then checks that we own it and that nobody else can enter it.
pub fn ensure_runtime_dir() -> io::Result<PathBuf> {
    let (dir, source) = runtime_location();
    if source == RuntimeSource::Home {
        if let Some(parent) = dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot create {}: {e}", parent.display()))
                })?;
        }
    }
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

fn refuse(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

/// The directory must be a real directory (not a link), owned by us, mode 0700.
pub fn check_private_dir(dir: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let uid = rustix::process::getuid().as_raw();
    if !meta.is_dir() {
        return Err(refuse(format!(
            "{} is not a directory (a link or a file put there); keyward will not use it: remove it, or set XDG_RUNTIME_DIR",
            dir.display()
        )));
    }
    if meta.uid() != uid {
        return Err(refuse(format!(
            "{} belongs to uid {}, not to you (uid {uid}): another user may be posing as keywardd, so keyward will not talk to it; have it removed, or set XDG_RUNTIME_DIR",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode != 0o700 {
        return Err(refuse(format!(
            "{} has mode {mode:o}, expected 700; run `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Before a client connects: the socket's directory is private and ours, and the
/// socket itself (not a link to one) is ours. A missing socket is `NotFound`, as a
/// connect would say, so that the caller starts a daemon.
pub fn check_socket(socket: &Path) -> io::Result<()> {
    if let Some(dir) = socket.parent() {
        match check_private_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            other => other?,
        }
    }
    let meta = std::fs::symlink_metadata(socket)?;
    let uid = rustix::process::getuid().as_raw();
    if !meta.file_type().is_socket() {
        return Err(refuse(format!(
            "{} is not a socket; keyward will not use it: remove it",
            socket.display()
        )));
    }
    if meta.uid() != uid {
        return Err(refuse(format!(
            "{} belongs to uid {}, not to you: keyward will not talk to it; remove it",
            socket.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// After connecting: the process at the other end runs as us (SO_PEERCRED). Where the
/// platform has no such call, the private directory is the guarantee.
pub fn check_peer(stream: &std::os::unix::net::UnixStream) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let cred = rustix::net::sockopt::socket_peercred(stream)?;
        let uid = rustix::process::getuid();
        if cred.uid != uid {
            return Err(refuse(format!(
                "the process serving the keyward socket runs as uid {}, not as you (uid {}): keyward will not talk to it",
                cred.uid.as_raw(),
                uid.as_raw()
            )));
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_another_mode_or_a_link_is_refused() {
        let t = std::env::temp_dir().join(format!("kw-paths-{}", std::process::id()));
        let dir = t.join("d");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .unwrap();
        check_private_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_private_dir(&dir)
            .unwrap_err()
            .to_string()
            .contains("chmod 700"));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = t.join("l");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = check_private_dir(&link).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let file = dir.join(SOCKET_NAME);
        std::fs::write(&file, b"").unwrap();
        assert!(check_socket(&file)
            .unwrap_err()
            .to_string()
            .contains("not a socket"));
        assert_eq!(
            check_socket(&dir.join("missing")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&t).unwrap();
    }
}
