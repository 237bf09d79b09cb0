//! The platform keychain through the `keyring` crate.

use zeroize::Zeroizing;

use super::{decode, encode, KeyStore, KeychainError, SERVICE};
use crate::session::AccessKey;

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
