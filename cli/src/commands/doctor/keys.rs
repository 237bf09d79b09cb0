//! doctor's key checks: which store holds each profile's key and why, whether the key
//! is there and readable, and (online) whether AWS still knows it.

use keyward_daemon::config::Config;
use keyward_daemon::keychain::{KeyStore, KeychainError, OsKeyStore, ProfileStore, StoreKind};
use keyward_proto::client::Client;
use keyward_proto::ErrorKind;

use super::{check, Check, Level};
use crate::local::keychain;

fn base_profiles() -> Vec<String> {
    let Ok(path) = keyward_daemon::config::default_path() else {
        return Vec::new();
    };
    Config::load(&path)
        .map(|c| {
            c.profiles
                .iter()
                .filter(|(_, p)| p.role_arn.is_none())
                .map(|(n, _)| n.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn os_fix() -> String {
    if cfg!(target_os = "macos") {
        "unlock your login keychain (Keychain Access)".into()
    } else if cfg!(windows) {
        "sign in to Windows so Credential Manager is available".into()
    } else {
        "in a desktop session, unlock the Secret Service (gnome-keyring, KeePassXC); a machine without one (SSH, VM, WSL, container) keeps its key in an encrypted file: `keyward setup --store encrypted-file`".into()
    }
}

/// The store each profile's key is in, and why; with no profile yet, the store
/// `keyward setup` would choose.
pub fn key_store() -> Check {
    let profiles = base_profiles();
    let Ok(store) = ProfileStore::new() else {
        return check("key-store", Level::Fail, "no home directory", None);
    };
    if profiles.is_empty() {
        return match keychain::pick(&keychain::StoreArgs::default()) {
            Ok((kind, why)) => check(
                "key-store",
                Level::Ok,
                format!("no profile yet; `keyward setup` will use the {kind} store, because {why}"),
                None,
            ),
            Err(e) => check("key-store", Level::Fail, format!("{e:#}"), Some(os_fix())),
        };
    }
    let mut lines = Vec::new();
    for p in &profiles {
        lines.push(match store.kind_of(p) {
            StoreKind::EncryptedFile => format!(
                "`{p}`: encrypted file {} (no plaintext on disk; opened into the kernel keyring by `keyward unlock`)",
                store.files.path(p).display()
            ),
            StoreKind::OsKeychain => format!("`{p}`: the OS keychain"),
        });
    }
    let mut level = Level::Ok;
    let mut fix = None;
    let loose = store.files.loose_permissions();
    if !loose.is_empty() {
        level = Level::Warn;
        lines.push(format!("not private: {}", loose.join(", ")));
        let dir = store.files.dir().display().to_string();
        fix = Some(format!("chmod 700 {dir} && chmod 600 {dir}/*.key"));
    }
    // A key in both stores: the file wins; say so, the other may be old.
    for p in profiles
        .iter()
        .filter(|p| store.kind_of(p) == StoreKind::EncryptedFile)
    {
        if matches!(OsKeyStore.get(p), Ok(Some(_))) {
            level = Level::Warn;
            lines.push(format!(
                "`{p}` also has a key in the OS keychain; the file's is used"
            ));
            fix.get_or_insert_with(|| format!("keep one: `keyward key migrate --to os-keychain --profile {p}` moves the file's key there"));
        }
    }
    check("key-store", level, lines.join("; "), fix)
}

/// One check per base profile: its key is in its store and readable.
pub fn keys() -> Vec<Check> {
    let Ok(store) = ProfileStore::new() else {
        return Vec::new();
    };
    base_profiles()
        .into_iter()
        .map(|p| key_of(&store, &p))
        .collect()
}

fn key_of(store: &ProfileStore, p: &str) -> Check {
    let register = format!("register this computer again with `keyward setup`, or store its key with `keyward key import --profile {p}`");
    match store.get(p) {
        Ok(Some(k)) => check(
            "key",
            Level::Ok,
            format!(
                "`{p}`: key {} is in its {} store",
                crate::iam::key_suffix(&k.id),
                store.kind_of(p)
            ),
            None,
        ),
        Ok(None) => check(
            "key",
            Level::Fail,
            format!("`{p}`: no key in its {} store", store.kind_of(p)),
            Some(register),
        ),
        Err(KeychainError::Locked(_)) => check(
            "key",
            Level::Warn,
            format!("`{p}`: the key file is locked (not opened since this computer started)"),
            Some(format!("keyward unlock --profile {p}")),
        ),
        Err(e @ KeychainError::Unavailable(_)) => {
            check("key", Level::Fail, format!("`{p}`: {e}"), Some(os_fix()))
        }
        Err(e @ KeychainError::KernelKeyring(_)) => check(
            "key",
            Level::Fail,
            format!("`{p}`: {e}"),
            Some(
                "allow keyctl for this container (seccomp), or keep the key in a Secret Service"
                    .into(),
            ),
        ),
        Err(e) => check("key", Level::Fail, format!("`{p}`: {e}"), Some(register)),
    }
}

/// Asks the daemon to try every key with STS: a revoked computer is ✗.
pub fn revoked(client: &Client) -> Vec<Check> {
    let Ok(resp) = client.check() else {
        return Vec::new();
    };
    resp.checked
        .into_iter()
        .filter_map(|c| {
            let e = c.error?;
            (e.kind == ErrorKind::KeyRevoked).then(|| {
                check(
                    "key",
                    Level::Fail,
                    format!("`{}`: AWS no longer knows this key: this computer's IAM user was revoked or its key deleted", c.profile),
                    Some("if this is unexpected, ask an admin computer (`keyward machines`); to register again: `keyward setup`".into()),
                )
            })
        })
        .collect()
}

/// Whether the OS keychain matters here: only if some profile keeps its key there.
pub fn os_keychain_needed() -> bool {
    let Ok(store) = ProfileStore::new() else {
        return true;
    };
    let profiles = base_profiles();
    profiles.is_empty()
        || profiles
            .iter()
            .any(|p| store.kind_of(p) == StoreKind::OsKeychain)
}

/// The OS keychain probe, for [`super::doctor`]'s `keychain` line.
pub fn os_keychain() -> Check {
    match OsKeyStore.get("keyward-probe") {
        Ok(_) | Err(KeychainError::Corrupt(_) | KeychainError::Platform(_)) => {
            check("keychain", Level::Ok, "the OS keychain is reachable", None)
        }
        Err(e) if !os_keychain_needed() => check(
            "keychain",
            Level::Ok,
            format!("not needed: every key is in an encrypted file ({e})"),
            None,
        ),
        Err(e) if base_profiles().is_empty() => check(
            "keychain",
            Level::Warn,
            format!("{e}"),
            Some("setup will use an encrypted file instead; or start a Secret Service".into()),
        ),
        Err(e) => check("keychain", Level::Fail, e.to_string(), Some(os_fix())),
    }
}
