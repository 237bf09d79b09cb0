//! An in-memory store for unit tests.

use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::{decode, encode, KeyStore, KeychainError};
use crate::session::AccessKey;

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
    use secrecy::SecretString;

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
}
