//! Where the long-term key lives. Two stores:
//! - the OS keychain (Secret Service, macOS Keychain, Windows Credential Manager);
//! - on Linux machines without one (SSH, VMs, WSL, containers), an encrypted file
//!   (Argon2id + XChaCha20-Poly1305) that `keyward unlock` opens into the kernel's
//!   user keyring until reboot.
//!
//! A profile's key is in the encrypted file store when its file exists, else in the OS
//! keychain: [`ProfileStore`] routes by that, so nothing else records the choice.
//! keyring calls block; async callers run them on `spawn_blocking`.

mod file;
mod kernel;
mod memory;
mod os;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::session::AccessKey;

pub use file::{EncryptedFileStore, KeyFile, Passphrase, MIN_PASSPHRASE};
pub use memory::MemoryKeyStore;
pub use os::OsKeyStore;

pub const SERVICE: &str = "keyward";

#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error("the keychain is not reachable ({0}); on Linux a Secret Service must run and be unlocked (gnome-keyring or KeePassXC in a desktop session); a machine without one keeps its key in an encrypted file: `keyward setup --store encrypted-file`, or `keyward key import --store encrypted-file`")]
    Unavailable(String),
    #[error("the kernel keyring refused ({0}); the encrypted file store needs it (containers often block keyctl: allow it in the seccomp profile), or use a Secret Service")]
    KernelKeyring(String),
    #[error("the keychain refused the request: {0}")]
    Platform(String),
    #[error("the keychain entry for profile `{0}` is not a keyward key; run `keyward key import --profile {0}` again")]
    Corrupt(String),
    #[error("the key of profile `{0}` is in its encrypted file and not unlocked since this computer started; run `keyward unlock --profile {0}`")]
    Locked(String),
    #[error("wrong passphrase for {0}")]
    WrongPassphrase(String),
}

/// Storage for one access key per profile.
pub trait KeyStore: Send + Sync {
    fn get(&self, profile: &str) -> Result<Option<AccessKey>, KeychainError>;
    fn set(&self, profile: &str, key: &AccessKey) -> Result<(), KeychainError>;
    /// Returns whether an entry existed.
    fn delete(&self, profile: &str) -> Result<bool, KeychainError>;
}

/// The stores a user can choose between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// The OS keychain: Secret Service on Linux, Keychain on macOS, Credential Manager on Windows.
    OsKeychain,
    /// An encrypted file (passphrase, Argon2id), unlocked into the kernel keyring (Linux).
    EncryptedFile,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OsKeychain => "os-keychain",
            Self::EncryptedFile => "encrypted-file",
        }
    }
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "os-keychain" => Ok(Self::OsKeychain),
            "encrypted-file" => Ok(Self::EncryptedFile),
            other => Err(format!(
                "unknown key store `{other}`; choose os-keychain or encrypted-file"
            )),
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The store that holds each profile's key: its encrypted file if there is one, else
/// the OS keychain. What the daemon reads through.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    pub files: EncryptedFileStore,
}

impl ProfileStore {
    pub fn new() -> Result<Self, KeychainError> {
        Ok(Self {
            files: EncryptedFileStore::default_dir()?,
        })
    }

    /// Where `profile`'s key is (or would be read from).
    pub fn kind_of(&self, profile: &str) -> StoreKind {
        if self.files.exists(profile) {
            StoreKind::EncryptedFile
        } else {
            StoreKind::OsKeychain
        }
    }
}

impl KeyStore for ProfileStore {
    fn get(&self, profile: &str) -> Result<Option<AccessKey>, KeychainError> {
        match self.kind_of(profile) {
            StoreKind::EncryptedFile => self.files.get(profile),
            StoreKind::OsKeychain => OsKeyStore.get(profile),
        }
    }

    fn set(&self, profile: &str, key: &AccessKey) -> Result<(), KeychainError> {
        match self.kind_of(profile) {
            StoreKind::EncryptedFile => self.files.set(profile, key),
            StoreKind::OsKeychain => OsKeyStore.set(profile, key),
        }
    }

    fn delete(&self, profile: &str) -> Result<bool, KeychainError> {
        match self.kind_of(profile) {
            StoreKind::EncryptedFile => self.files.delete(profile),
            StoreKind::OsKeychain => OsKeyStore.delete(profile),
        }
    }
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Stored {
    v: u8,
    access_key_id: String,
    secret_access_key: String,
}

fn encode(key: &AccessKey) -> Zeroizing<String> {
    let stored = Stored {
        v: 1,
        access_key_id: key.id.clone(),
        secret_access_key: key.expose_secret().to_owned(),
    };
    Zeroizing::new(serde_json::to_string(&stored).expect("strings serialize"))
}

fn decode(profile: &str, text: &str) -> Result<AccessKey, KeychainError> {
    let stored: Stored =
        serde_json::from_str(text).map_err(|_| KeychainError::Corrupt(profile.to_owned()))?;
    Ok(AccessKey::new(
        stored.access_key_id.clone(),
        SecretString::from(stored.secret_access_key.clone()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_entry_is_reported_as_corrupt() {
        assert!(matches!(
            decode("p", "hunter2"),
            Err(KeychainError::Corrupt(_))
        ));
    }
}
