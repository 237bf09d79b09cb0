//! The kernel's per-user keyring: where an unlocked file key waits until reboot,
//! `keyward lock`, or its timeout. Like an unlocked Secret Service, every process of
//! this uid may read it; unlike a file, nothing of it reaches the disk.

use std::time::Duration;

use zeroize::Zeroizing;

use super::KeychainError;

#[cfg(target_os = "linux")]
mod imp {
    use super::{Duration, KeychainError, Zeroizing};
    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

    fn unavailable(e: KeyError) -> KeychainError {
        KeychainError::KernelKeyring(e.to_string())
    }

    fn ring() -> Result<KeyRing, KeychainError> {
        KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(unavailable)
    }

    pub fn put(desc: &str, payload: &[u8], ttl: Option<Duration>) -> Result<(), KeychainError> {
        let key = ring()?.add_key(desc, payload).map_err(unavailable)?;
        // This uid's processes (the daemon is one) may use it; nobody else.
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::ALL)
            .build();
        let set = key.set_perms(perms).and_then(|()| match ttl {
            Some(t) => key.set_timeout(usize::try_from(t.as_secs().max(1)).unwrap_or(usize::MAX)),
            None => Ok(()),
        });
        if let Err(e) = set {
            let _ = key.invalidate();
            return Err(unavailable(e));
        }
        Ok(())
    }

    pub fn get(desc: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeychainError> {
        match ring()?.search(desc) {
            Ok(k) => match k.read_to_vec() {
                Ok(v) => Ok(Some(Zeroizing::new(v))),
                Err(KeyError::KeyExpired | KeyError::KeyRevoked | KeyError::KeyDoesNotExist) => {
                    Ok(None)
                }
                Err(e) => Err(unavailable(e)),
            },
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    pub fn remove(desc: &str) -> Result<bool, KeychainError> {
        match ring()?.search(desc) {
            Ok(k) => k.invalidate().map(|()| true).map_err(unavailable),
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::{Duration, KeychainError, Zeroizing};

    fn unsupported() -> KeychainError {
        KeychainError::KernelKeyring("only Linux has one; use the OS keychain".into())
    }
    pub fn put(_: &str, _: &[u8], _: Option<Duration>) -> Result<(), KeychainError> {
        Err(unsupported())
    }
    pub fn get(_: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeychainError> {
        Err(unsupported())
    }
    pub fn remove(_: &str) -> Result<bool, KeychainError> {
        Err(unsupported())
    }
}

/// Puts `payload` under `desc` in the user keyring, for `ttl` or until reboot.
pub fn put(desc: &str, payload: &[u8], ttl: Option<Duration>) -> Result<(), KeychainError> {
    imp::put(desc, payload, ttl)
}

/// The payload under `desc`, if unlocked and not expired.
pub fn get(desc: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeychainError> {
    imp::get(desc)
}

/// Forgets `desc`; whether it was there.
pub fn remove(desc: &str) -> Result<bool, KeychainError> {
    imp::remove(desc)
}
