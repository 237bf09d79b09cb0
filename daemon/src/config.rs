//! keyward's own config: TOML in the platform config dir. It names profiles, never secrets.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(12 * 3600);
pub const DEFAULT_ROLE_DURATION: Duration = Duration::from_secs(3600);
/// Role chaining (AssumeRole with session credentials) caps sessions at one hour.
pub const ROLE_CHAINING_MAX: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid keyward config: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("profile `{0}`: {1}")]
    Invalid(String, String),
    #[error("cannot find a home directory for keyward's config")]
    NoHome,
}

/// The on-disk form of a profile: base profiles carry `mfa_serial`, role profiles
/// `role_arn` and `source`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProfileEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_serial: Option<String>,
    /// The machine's IAM user name: the SourceIdentity of every role it assumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_process: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A program that prints the MFA code when there is no terminal (a window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Vec<String>>,
    /// Desktop notices: the session ends soon, the key was revoked or rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
    /// Rotate a base profile's access key once it is this old (default 90d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_after: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileEntry>,
}

/// Keys older than this are rotated when `rotate_after` says nothing.
pub const DEFAULT_ROTATE_AFTER: Duration = Duration::from_secs(90 * 24 * 3600);

impl Config {
    /// `rotate_after`, or the default; an unreadable value is an error to show.
    pub fn rotate_after(&self) -> Result<Duration, String> {
        match &self.rotate_after {
            None => Ok(DEFAULT_ROTATE_AFTER),
            Some(d) => parse_duration(d).map_err(|e| format!("rotate_after: {e}")),
        }
    }

    pub fn notify(&self) -> bool {
        self.notify != Some(false)
    }
}

/// A base profile: this computer's IAM user key plus its MFA device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseProfile {
    pub name: String,
    pub mfa_serial: String,
    pub iam_user: Option<String>,
    pub region: Option<String>,
    pub session_duration: Duration,
    pub mfa_process: Option<Vec<String>>,
}

impl BaseProfile {
    /// The SourceIdentity for roles assumed from this profile: the machine's user
    /// name, or (for a profile set up by hand) its MFA device's name, which keyward
    /// always makes the same.
    pub fn source_identity(&self) -> Option<String> {
        self.iam_user.clone().or_else(|| {
            self.mfa_serial
                .rsplit_once(":mfa/")
                .map(|(_, d)| d.rsplit('/').next().unwrap_or(d).to_owned())
                .filter(|d| !d.is_empty())
        })
    }
}

/// A role assumed from a base profile's session (or directly with MFA when over 1 h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleProfile {
    pub name: String,
    pub role_arn: String,
    pub source: BaseProfile,
    pub duration: Duration,
    pub external_id: Option<String>,
}

impl RoleProfile {
    /// Over one hour, chaining is impossible: assume the role with the long-term key and MFA.
    pub fn needs_direct_mfa(&self) -> bool {
        self.duration > ROLE_CHAINING_MAX
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    Base(BaseProfile),
    Role(RoleProfile),
}

impl Profile {
    /// The base profile whose key and MFA device this profile uses.
    pub fn base(&self) -> &BaseProfile {
        match self {
            Profile::Base(b) => b,
            Profile::Role(r) => &r.source,
        }
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("bad duration `{s}`: {e}"))
}

/// Profile names become keychain accounts and AWS config section names.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid profile name: use 1-64 letters, digits, `-`, `_` or `.`"
        ))
    }
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        for (name, entry) in &cfg.profiles {
            // Names become file names and keychain accounts: never a path.
            for n in std::iter::once(name).chain(entry.source.as_ref()) {
                validate_name(n).map_err(|m| ConfigError::Invalid(name.clone(), m))?;
            }
            cfg.resolve(name)?;
        }
        Ok(cfg)
    }

    /// Loads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes atomically (temp file, then rename), mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).expect("config serializes");
        let body = format!("# keyward profiles; edit with `keyward profile add/remove`.\n\n{text}");
        write_atomic(path, body.as_bytes()).map_err(|source| ConfigError::Write {
            path: path.to_owned(),
            source,
        })
    }

    pub fn resolve(&self, name: &str) -> Result<Profile, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(name.to_owned(), m);
        let entry = self
            .profiles
            .get(name)
            .ok_or_else(|| invalid("no such profile".into()))?;
        match (&entry.mfa_serial, &entry.role_arn) {
            (Some(serial), None) => Ok(Profile::Base(BaseProfile {
                name: name.to_owned(),
                mfa_serial: serial.clone(),
                iam_user: entry.iam_user.clone(),
                region: entry.region.clone(),
                session_duration: entry
                    .session_duration
                    .as_deref()
                    .map(parse_duration)
                    .transpose()
                    .map_err(invalid)?
                    .unwrap_or(DEFAULT_SESSION_DURATION),
                mfa_process: entry.mfa_process.clone(),
            })),
            (None, Some(role_arn)) => {
                let source_name = entry
                    .source
                    .as_deref()
                    .ok_or_else(|| invalid("a role profile needs `source`".into()))?;
                let source = match self.resolve(source_name) {
                    Ok(Profile::Base(b)) => b,
                    Ok(Profile::Role(_)) => {
                        return Err(invalid(format!(
                            "source `{source_name}` must be a base profile"
                        )))
                    }
                    Err(_) => {
                        return Err(invalid(format!(
                            "source profile `{source_name}` is missing"
                        )))
                    }
                };
                let duration = entry
                    .duration
                    .as_deref()
                    .map(parse_duration)
                    .transpose()
                    .map_err(invalid)?
                    .unwrap_or(DEFAULT_ROLE_DURATION);
                if duration < Duration::from_secs(900) {
                    return Err(invalid("role duration must be at least 15m".into()));
                }
                Ok(Profile::Role(RoleProfile {
                    name: name.to_owned(),
                    role_arn: role_arn.clone(),
                    source,
                    duration,
                    external_id: entry.external_id.clone(),
                }))
            }
            (Some(_), Some(_)) => Err(invalid("has both mfa_serial and role_arn".into())),
            (None, None) => Err(invalid("needs mfa_serial (base) or role_arn (role)".into())),
        }
    }
}

/// `$XDG_CONFIG_HOME/keyward/config.toml` on Linux, the platform equivalent elsewhere.
pub fn default_path() -> Result<PathBuf, ConfigError> {
    let dirs = directories::ProjectDirs::from("", "", "keyward").ok_or(ConfigError::NoHome)?;
    Ok(dirs.config_dir().join("config.toml"))
}

/// Replaces `path` with `data` atomically, keeping the old file's mode (0600 for new files).
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mode = std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o777);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.keyward-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// (modified time, length): when either changes, the file is read again.
type Stamp = (Option<std::time::SystemTime>, u64);

/// Caches the parsed config, re-reading it when the file changes.
pub struct ConfigSource {
    path: PathBuf,
    cached: std::sync::Mutex<Option<(Stamp, std::sync::Arc<Config>)>>,
}

impl ConfigSource {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            cached: std::sync::Mutex::new(None),
        }
    }

    pub fn get(&self) -> Result<std::sync::Arc<Config>, ConfigError> {
        let meta = std::fs::metadata(&self.path).ok();
        let stamp: Stamp = (
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.as_ref().map_or(0, std::fs::Metadata::len),
        );
        let mut cached = self.cached.lock().expect("config lock");
        if let Some((seen, c)) = cached.as_ref() {
            if *seen == stamp {
                return Ok(c.clone());
            }
        }
        let cfg = std::sync::Arc::new(Config::load(&self.path)?);
        *cached = Some((stamp, cfg.clone()));
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("config.toml"))
    }

    #[test]
    fn base_and_role_resolve() {
        let c = cfg(r#"
            [profiles.dev]
            mfa_serial = "arn:aws:iam::123456789012:mfa/alice-laptop"
            session_duration = "8h"
            mfa_process = ["oathtool", "--totp"]
            [profiles.admin]
            role_arn = "arn:aws:iam::123456789012:role/admin"
            source = "dev"
            duration = "2h"
        "#)
        .unwrap();
        let Profile::Base(b) = c.resolve("dev").unwrap() else {
            panic!()
        };
        assert_eq!(b.session_duration, Duration::from_secs(8 * 3600));
        let Profile::Role(r) = c.resolve("admin").unwrap() else {
            panic!()
        };
        assert_eq!(r.source.name, "dev");
        assert!(r.needs_direct_mfa());
    }

    #[test]
    fn role_needs_a_base_source() {
        let e = cfg(r#"
            [profiles.r]
            role_arn = "arn:aws:iam::1:role/x"
            source = "missing"
        "#)
        .unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn unknown_keys_and_garbage_are_refused() {
        assert!(cfg("[profiles.dev]\nmfa_serial='x'\nsecret='y'\n").is_err());
        assert!(cfg("\u{0}\u{1}not toml").is_err());
        assert!(cfg("[profiles.dev]\n").is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("alice-laptop_1.x").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("../x").is_err());
        // In the file too: a name becomes a key file's name.
        let e = cfg("[profiles.r]\nrole_arn = 'arn:aws:iam::1:role/x'\nsource = '../../tmp/x'\n")
            .unwrap_err();
        assert!(e.to_string().contains("not a valid profile name"), "{e}");
        assert!(cfg("[profiles.'a/b']\nmfa_serial = 'arn:aws:iam::1:mfa/a'\n").is_err());
    }

    #[test]
    fn save_round_trips_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/config.toml");
        let mut c = Config::default();
        c.profiles.insert(
            "dev".into(),
            ProfileEntry {
                mfa_serial: Some("arn:aws:iam::1:mfa/x".into()),
                ..ProfileEntry::default()
            },
        );
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
