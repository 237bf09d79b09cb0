//! The OS keychain as the commands use it: probed before any AWS change, written and
//! read back before a new key counts as stored.

use anyhow::Result;
use keyward_daemon::keychain::{KeyStore, KeychainError, OsKeyStore};
use keyward_daemon::session::AccessKey;

/// Fails (changing nothing) when the keychain cannot be reached at all.
pub fn probe() -> Result<()> {
    match OsKeyStore.get("keyward-probe") {
        Ok(_) | Err(KeychainError::Corrupt(_) | KeychainError::Platform(_)) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e)
            .context("keyward needs the keychain before it changes anything; nothing was changed")),
    }
}

/// The id of the key stored for `profile` (never its secret).
pub fn stored_key_id(profile: &str) -> Result<Option<String>> {
    Ok(OsKeyStore.get(profile)?.map(|k| k.id.clone()))
}

/// Stores `key` and reads it back; `Err` says why when the keychain did not keep it.
pub fn store_and_verify(profile: &str, key: &AccessKey) -> Result<(), String> {
    match OsKeyStore
        .set(profile, key)
        .and_then(|()| OsKeyStore.get(profile))
    {
        Ok(Some(back)) if back.id == key.id && back.expose_secret() == key.expose_secret() => {
            Ok(())
        }
        Ok(_) => Err("the keychain returned a different key".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Removes the key of `profile`; `Ok(false)` when there was none.
pub fn remove(profile: &str) -> Result<bool> {
    Ok(OsKeyStore.delete(profile)?)
}
