//! Where the long-term key lives: the OS keychain (Secret Service, macOS Keychain,
//! Windows Credential Manager). The memory store exists for unit tests only.
//!
//! keyring calls block; async callers run them on `spawn_blocking`.

use std::collections::HashMap;
use std::sync::Mutex;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::session::AccessKey;

pub const SERVICE: &str = "keyward";

#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error("the keychain is not reachable ({0}); on Linux a Secret Service must run, e.g. gnome-keyring (package gnome-keyring) or KeePassXC, and be unlocked")]
    Unavailable(String),
    #[error("the keychain refused the request: {0}")]
    Platform(String),
    #[error("the keychain entry for profile `{0}` is not a keyward key; run `keyward key import --profile {0}` again")]
    Corrupt(String),
}

/// Storage for one access key per profile.
pub trait KeyStore: Send + Sync {
    fn get(&self, profile: &str) -> Result<Option<AccessKey>, KeychainError>;
    fn set(&self, profile: &str, key: &AccessKey) -> Result<(), KeychainError>;
    /// Returns whether an entry existed.
    fn delete(&self, profile: &str) -> Result<bool, KeychainError>;
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

/// The platform keychain through the `keyring` crate.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsKeyStore;

impl OsKeyStore {
    fn entry(profile: &str) -> Result<keyring::Entry, KeychainError> {
        #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
        {
            // Named explicitly: if the Secret Service feature were off this would not
            // compile, instead of silently falling back to keyring's mock store.
            let cred =
                keyring::secret_service::SsCredential::new_with_target(None, SERVICE, profile)
                    .map_err(map_err)?;
            Ok(keyring::Entry::new_with_credential(Box::new(cred)))
        }
        #[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
        {
            keyring::Entry::new(SERVICE, profile).map_err(map_err)
        }
    }
}

fn map_err(e: keyring::Error) -> KeychainError {
    match e {
        keyring::Error::NoStorageAccess(inner) | keyring::Error::PlatformFailure(inner) => {
            KeychainError::Unavailable(inner.to_string())
        }
        other => KeychainError::Platform(other.to_string()),
    }
}

impl KeyStore for OsKeyStore {
    fn get(&self, profile: &str) -> Result<Option<AccessKey>, KeychainError> {
        match Self::entry(profile)?.get_password() {
            Ok(text) => {
                let text = Zeroizing::new(text);
                decode(profile, &text).map(Some)
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    fn set(&self, profile: &str, key: &AccessKey) -> Result<(), KeychainError> {
        Self::entry(profile)?
            .set_password(&encode(key))
            .map_err(map_err)
    }

    fn delete(&self, profile: &str) -> Result<bool, KeychainError> {
        match Self::entry(profile)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }
}

/// In-memory store for unit tests.
#[derive(Default)]
pub struct MemoryKeyStore {
    entries: Mutex<HashMap<String, Zeroizing<String>>>,
    /// Failures the next reads return, in order (a locked or vanished keychain).
    failures: Mutex<std::collections::VecDeque<KeychainError>>,
}

impl MemoryKeyStore {
    /// The next read fails with `e`, as a locked or unreachable keychain would.
    pub fn fail_next_read(&self, e: KeychainError) {
        self.failures.lock().expect("lock").push_back(e);
    }
}

impl KeyStore for MemoryKeyStore {
    fn get(&self, profile: &str) -> Result<Option<AccessKey>, KeychainError> {
        if let Some(e) = self.failures.lock().expect("lock").pop_front() {
            return Err(e);
        }
        let map = self.entries.lock().expect("lock");
        map.get(profile).map(|t| decode(profile, t)).transpose()
    }

    fn set(&self, profile: &str, key: &AccessKey) -> Result<(), KeychainError> {
        self.entries
            .lock()
            .expect("lock")
            .insert(profile.to_owned(), encode(key));
        Ok(())
    }

    fn delete(&self, profile: &str) -> Result<bool, KeychainError> {
        Ok(self.entries.lock().expect("lock").remove(profile).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn memory_store_round_trip() {
        let store = MemoryKeyStore::default();
        assert!(store.get("dev").unwrap().is_none());
        store
            .set(
                "dev",
                &AccessKey::new("AKIA1", SecretString::from("s3cr3t")),
            )
            .unwrap();
        let got = store.get("dev").unwrap().unwrap();
        assert_eq!(got.id, "AKIA1");
        assert_eq!(got.expose_secret(), "s3cr3t");
        assert!(store.delete("dev").unwrap());
        assert!(!store.delete("dev").unwrap());
    }

    #[test]
    fn foreign_entry_is_reported_as_corrupt() {
        assert!(matches!(
            decode("p", "hunter2"),
            Err(KeychainError::Corrupt(_))
        ));
        let _ = SecretString::from("x").expose_secret().len();
    }
}
