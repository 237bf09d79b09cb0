//! The encrypted file store: one file per profile, 0600 in a 0700 directory. The secret
//! is sealed with XChaCha20-Poly1305 under a key that Argon2id derives from a
//! passphrase; the profile, key id and KDF parameters are bound in as associated data.
//! The daemon never sees the passphrase: `keyward unlock` opens the file into the
//! kernel keyring ([`super::kernel`]), and the daemon reads it from there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::BASE64;
use rand::RngCore as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use zeroize::Zeroizing;

use super::{decode, encode, kernel, KeyStore, KeychainError};
use crate::session::AccessKey;

/// The shortest passphrase accepted.
pub const MIN_PASSPHRASE: usize = 10;
/// Argon2id, RFC 9106's second recommended setting: 64 MiB, 3 passes.
const M_KIB: u32 = 64 * 1024;
const T_COST: u32 = 3;
const P_COST: u32 = 1;

/// A passphrase: never printed, zeroized on drop.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    pub fn new(text: Zeroizing<String>) -> Self {
        Self(text)
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Kdf {
    alg: String,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
}

/// The file's contents. Only `ciphertext` is secret, and it is sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    v: u8,
    pub profile: String,
    pub access_key_id: String,
    kdf: Kdf,
    nonce: String,
    ciphertext: String,
}

fn corrupt(profile: &str) -> KeychainError {
    KeychainError::Corrupt(profile.to_owned())
}

impl KeyFile {
    /// Seals `key` under `pass` with a fresh salt and nonce.
    pub fn seal(profile: &str, key: &AccessKey, pass: &Passphrase) -> Result<Self, KeychainError> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut salt);
        rand::rng().fill_bytes(&mut nonce);
        let mut file = Self {
            v: 1,
            profile: profile.to_owned(),
            access_key_id: key.id.clone(),
            kdf: Kdf {
                alg: "argon2id".into(),
                m_kib: M_KIB,
                t: T_COST,
                p: P_COST,
                salt: BASE64.encode(&salt),
            },
            nonce: BASE64.encode(&nonce),
            ciphertext: String::new(),
        };
        let cipher = file.cipher(pass)?;
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: key.expose_secret().as_bytes(),
                    aad: &file.aad(),
                },
            )
            .map_err(|_| KeychainError::Platform("encryption failed".into()))?;
        file.ciphertext = BASE64.encode(&sealed);
        Ok(file)
    }

    /// The key, if `pass` is right and nothing in the file was changed.
    pub fn open(&self, pass: &Passphrase, path: &Path) -> Result<AccessKey, KeychainError> {
        let nonce = BASE64
            .decode(self.nonce.as_bytes())
            .ok()
            .filter(|n| n.len() == 24)
            .ok_or_else(|| corrupt(&self.profile))?;
        let sealed = BASE64
            .decode(self.ciphertext.as_bytes())
            .map_err(|_| corrupt(&self.profile))?;
        let plain = Zeroizing::new(
            self.cipher(pass)?
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &sealed,
                        aad: &self.aad(),
                    },
                )
                .map_err(|_| KeychainError::WrongPassphrase(path.display().to_string()))?,
        );
        let secret = std::str::from_utf8(&plain).map_err(|_| corrupt(&self.profile))?;
        Ok(AccessKey::new(
            self.access_key_id.clone(),
            SecretString::from(secret.to_owned()),
        ))
    }

    /// Everything but the ciphertext: changing any of it makes `open` fail.
    fn aad(&self) -> Vec<u8> {
        format!(
            "keyward-key/{}\0{}\0{}\0{}\0{}\0{}\0{}\0{}",
            self.v,
            self.profile,
            self.access_key_id,
            self.kdf.alg,
            self.kdf.m_kib,
            self.kdf.t,
            self.kdf.p,
            self.kdf.salt
        )
        .into_bytes()
    }

    fn cipher(&self, pass: &Passphrase) -> Result<XChaCha20Poly1305, KeychainError> {
        let k = &self.kdf;
        // Exactly what `seal` writes: an edited file can neither weaken the KDF nor make
        // every unlock allocate gigabytes.
        if self.v != 1 || k.alg != "argon2id" || k.m_kib != M_KIB || k.t != T_COST || k.p != P_COST
        {
            return Err(corrupt(&self.profile));
        }
        let salt = BASE64
            .decode(k.salt.as_bytes())
            .map_err(|_| corrupt(&self.profile))?;
        let params =
            argon2::Params::new(k.m_kib, k.t, k.p, Some(32)).map_err(|_| corrupt(&self.profile))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut derived = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(pass.bytes(), &salt, derived.as_mut())
            .map_err(|_| corrupt(&self.profile))?;
        Ok(XChaCha20Poly1305::new(derived.as_ref().into()))
    }
}

/// One sealed file per profile under `dir`.
#[derive(Debug, Clone)]
pub struct EncryptedFileStore {
    dir: PathBuf,
}

impl EncryptedFileStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$XDG_DATA_HOME/keyward/keys` (Linux), the platform data dir elsewhere.
    pub fn default_dir() -> Result<Self, KeychainError> {
        let dirs = directories::ProjectDirs::from("", "", "keyward").ok_or_else(|| {
            KeychainError::Platform("cannot find a home directory for the key files".into())
        })?;
        Ok(Self::new(dirs.data_dir().join("keys")))
    }

    /// The directory of the key files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, profile: &str) -> PathBuf {
        self.dir.join(format!("{profile}.key"))
    }

    pub fn exists(&self, profile: &str) -> bool {
        self.path(profile).is_file()
    }

    pub fn read_file(&self, profile: &str) -> Result<Option<KeyFile>, KeychainError> {
        let path = self.path(profile);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(KeychainError::Platform(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let file: KeyFile = serde_json::from_str(&text).map_err(|_| corrupt(profile))?;
        if file.profile != profile {
            return Err(corrupt(profile));
        }
        Ok(Some(file))
    }

    /// Seals `key`, writes the file (0600 in a 0700 directory), and unlocks it.
    pub fn store(
        &self,
        profile: &str,
        key: &AccessKey,
        pass: &Passphrase,
        ttl: Option<Duration>,
    ) -> Result<(), KeychainError> {
        let file = KeyFile::seal(profile, key, pass)?;
        let text = serde_json::to_string_pretty(&file).expect("serializable");
        // The kernel keyring first: if it refuses, no file exists yet to route reads to.
        let name = Self::cache_name(&file);
        kernel::put(&name, encode(key).as_bytes(), ttl)?;
        if let Err(e) = self.write_private(&self.path(profile), text.as_bytes()) {
            let _ = kernel::remove(&name);
            return Err(e);
        }
        Ok(())
    }

    fn write_private(&self, path: &Path, data: &[u8]) -> Result<(), KeychainError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let fail = |e: std::io::Error| {
            KeychainError::Platform(format!("cannot write {}: {e}", path.display()))
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(fail)?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(fail)?;
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        }
        crate::config::write_atomic(path, data).map_err(fail)?;
        // The rename is durable before any other copy of the key is removed.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)
    }

    /// Opens the file with `pass` and puts the key into the kernel keyring for `ttl`
    /// (until reboot when `None`).
    pub fn unlock(
        &self,
        profile: &str,
        pass: &Passphrase,
        ttl: Option<Duration>,
    ) -> Result<AccessKey, KeychainError> {
        let file = self.read_file(profile)?.ok_or_else(|| {
            KeychainError::Platform(format!("no key file for profile `{profile}`"))
        })?;
        let key = file.open(pass, &self.path(profile))?;
        kernel::put(&Self::cache_name(&file), encode(&key).as_bytes(), ttl)?;
        Ok(key)
    }

    /// Takes the unlocked key out of the kernel keyring; whether it was there.
    pub fn lock(&self, profile: &str) -> Result<bool, KeychainError> {
        match self.read_file(profile) {
            Ok(Some(file)) => kernel::remove(&Self::cache_name(&file)),
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The profiles with a key file here, whatever the config says.
    pub fn profiles(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = dir
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let profile = name.strip_suffix(".key")?;
                crate::config::validate_name(profile).ok()?;
                Some(profile.to_owned())
            })
            .collect();
        names.sort();
        names
    }

    /// Whether the key files and their directory are private (0600 in 0700).
    pub fn loose_permissions(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let mut loose = Vec::new();
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        if let Ok(m) = mode(&self.dir) {
            if m & 0o077 != 0 {
                loose.push(format!("{} is {m:o}, not 700", self.dir.display()));
            }
        }
        for p in self.profiles() {
            if let Ok(m) = mode(&self.path(&p)) {
                if m & 0o077 != 0 {
                    loose.push(format!("{} is {m:o}, not 600", self.path(&p).display()));
                }
            }
        }
        loose
    }

    /// Whether the unlocked key in the kernel keyring matches the file.
    pub fn is_unlocked(&self, profile: &str) -> Result<bool, KeychainError> {
        Ok(self.get(profile).is_ok_and(|k| k.is_some()))
    }

    /// The kernel keyring entry's name: from the file's random salt, so two HOMEs of one
    /// uid (and the tests' many) never share an entry, a daemon finds it whatever path
    /// it sees the file under, and a replaced file never reads a stale entry.
    fn cache_name(file: &KeyFile) -> String {
        let digest = sha2::Sha256::digest(file.kdf.salt.as_bytes());
        let short = data_encoding::HEXLOWER.encode(&digest[..8]);
        format!("keyward:{}:{short}", file.profile)
    }
}

impl KeyStore for EncryptedFileStore {
    fn get(&self, profile: &str) -> Result<Option<AccessKey>, KeychainError> {
        let Some(file) = self.read_file(profile)? else {
            return Ok(None);
        };
        let Some(payload) = kernel::get(&Self::cache_name(&file))? else {
            return Err(KeychainError::Locked(profile.to_owned()));
        };
        let text = std::str::from_utf8(&payload).map_err(|_| corrupt(profile))?;
        let key = decode(profile, text)?;
        // A key replaced on disk since the unlock: the old one must not be served.
        if key.id != file.access_key_id {
            return Err(KeychainError::Locked(profile.to_owned()));
        }
        Ok(Some(key))
    }

    fn set(&self, profile: &str, _key: &AccessKey) -> Result<(), KeychainError> {
        Err(KeychainError::Platform(format!(
            "the encrypted file store needs a passphrase to store the key of `{profile}`"
        )))
    }

    fn delete(&self, profile: &str) -> Result<bool, KeychainError> {
        let _ = self.lock(profile);
        match std::fs::remove_file(self.path(profile)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(KeychainError::Platform(format!(
                "cannot remove {}: {e}",
                self.path(profile).display()
            ))),
        }
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
