//! What the helper reads of keyward's config file itself: the `mfa_process` of a
//! profile. A command to run comes only from the user's own file, never from a reply
//! of whatever listens on the socket, and only when nobody else can write that file.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    profiles: BTreeMap<String, Entry>,
    /// A program that prints the MFA code, asked when there is no terminal.
    #[serde(default)]
    prompt: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    mfa_process: Option<Vec<String>>,
    #[serde(default)]
    source: Option<String>,
}

/// The command that prints an MFA code for `profile` (for a role: its source
/// profile's), if the user configured one. An error says what is wrong with the file.
pub fn mfa_process(profile: &str) -> Result<Option<Vec<String>>, String> {
    let Some(path) = crate::paths::config_file() else {
        return Ok(None);
    };
    mfa_process_in(&path, profile)
}

/// [`mfa_process`] for the config file at `path`.
pub fn mfa_process_in(path: &Path, profile: &str) -> Result<Option<Vec<String>>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: File = toml::from_str(&text)
        .map_err(|e| format!("{} is not valid keyward config: {e}", path.display()))?;
    let entry = file.profiles.get(profile);
    let base = entry
        .and_then(|e| e.source.as_deref())
        .and_then(|s| file.profiles.get(s));
    let argv = entry
        .and_then(|e| e.mfa_process.clone())
        .or_else(|| base.and_then(|b| b.mfa_process.clone()));
    if argv.is_some() {
        check_writable_only_by_me(path)?;
    }
    Ok(argv)
}

/// The configured `prompt` program, if any (same checks as an mfa_process).
pub fn prompt() -> Result<Option<Vec<String>>, String> {
    let Some(path) = crate::paths::config_file() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: File = toml::from_str(&text)
        .map_err(|e| format!("{} is not valid keyward config: {e}", path.display()))?;
    if file.prompt.is_some() {
        check_writable_only_by_me(&path)?;
    }
    Ok(file.prompt.filter(|p| !p.is_empty()))
}

/// A file others can write could make us run their command: refuse it, with the fix.
fn check_writable_only_by_me(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let uid = rustix::process::getuid().as_raw();
    if meta.uid() != uid {
        return Err(format!(
            "{} belongs to uid {}, not to you: keyward will not run its mfa_process",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "others can write {}, so keyward will not run its mfa_process; run `chmod go-w {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const CONFIG: &str = r#"
[profiles.alice-laptop]
mfa_serial = "arn:aws:iam::1:mfa/alice-laptop"
mfa_process = ["ykman", "oath", "accounts", "code", "-s", "aws"]

[profiles.admin]
role_arn = "arn:aws:iam::1:role/admin"
source = "alice-laptop"

[profiles.plain]
mfa_serial = "arn:aws:iam::1:mfa/plain"
"#;

    #[test]
    fn a_profile_or_its_source_names_the_command_and_the_file_must_be_private() {
        let dir = std::env::temp_dir().join(format!("kw-ucfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, CONFIG).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ykman = mfa_process_in(&path, "alice-laptop").unwrap().unwrap();
        assert_eq!(ykman[0], "ykman");
        assert_eq!(mfa_process_in(&path, "admin").unwrap().unwrap(), ykman);
        assert_eq!(mfa_process_in(&path, "plain").unwrap(), None);
        assert_eq!(mfa_process_in(&path, "unknown").unwrap(), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).unwrap();
        let e = mfa_process_in(&path, "alice-laptop").unwrap_err();
        assert!(e.contains("chmod go-w"), "{e}");
        assert_eq!(mfa_process_in(&dir.join("none.toml"), "x").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
