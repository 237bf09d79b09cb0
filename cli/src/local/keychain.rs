//! The key stores as the commands use them: chosen once per run, probed before any AWS
//! change, written and read back before a new key counts as stored.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use anyhow::{bail, Context as _, Result};
use keyward_daemon::config::validate_name;
use keyward_daemon::keychain::{
    EncryptedFileStore, KeyStore, KeychainError, OsKeyStore, Passphrase, ProfileStore, StoreKind,
    MIN_PASSPHRASE,
};
use keyward_daemon::session::AccessKey;
use zeroize::Zeroizing;

/// Where this run writes new keys: set by [`choose`], the OS keychain otherwise.
static TARGET: OnceLock<Target> = OnceLock::new();

enum Target {
    Os,
    File(Passphrase),
}

/// How a command was asked to pick and open a store (`--store`, `--passphrase-stdin`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// Where the key goes: os-keychain or encrypted-file (default: the OS keychain when
    /// one is reachable, else an encrypted file)
    #[arg(long, value_name = "STORE", value_parser = parse_kind)]
    pub store: Option<StoreKind>,
    /// Read the encrypted file's passphrase from the first line of stdin, not the terminal
    #[arg(long)]
    pub passphrase_stdin: bool,
}

fn parse_kind(s: &str) -> Result<StoreKind, String> {
    s.parse()
}

/// Why the OS keychain cannot be used, if it cannot.
pub fn os_unavailable() -> Option<String> {
    match OsKeyStore.get("keyward-probe") {
        Err(KeychainError::Unavailable(why)) => Some(why),
        _ => None,
    }
}

/// Picks the store new keys go to, says which and why, and (for the encrypted file)
/// takes the new passphrase now, before anything changes.
pub fn choose(args: &StoreArgs, profile: Option<&str>, quiet: bool) -> Result<StoreKind> {
    let (kind, why) = pick(args)?;
    let target = match kind {
        StoreKind::OsKeychain => {
            if let Some(why) = os_unavailable() {
                bail!("the OS keychain is not reachable ({why}); nothing was changed. Use `--store encrypted-file` on a machine without a desktop session");
            }
            Target::Os
        }
        StoreKind::EncryptedFile => {
            kernel_keyring_usable()?;
            Target::File(file_passphrase(profile, args.passphrase_stdin)?)
        }
    };
    if !quiet {
        crate::ui::note(&format!("key store: {kind}, because {why}"));
    }
    let _ = TARGET.set(target);
    Ok(kind)
}

/// The store `--store` names, else the best one here, and why.
pub fn pick(args: &StoreArgs) -> Result<(StoreKind, String)> {
    Ok(match args.store {
        Some(k) => (k, "as asked with --store".to_owned()),
        None => match os_unavailable() {
            None => (StoreKind::OsKeychain, "the OS keychain is reachable".to_owned()),
            Some(why) if cfg!(target_os = "linux") => (
                StoreKind::EncryptedFile,
                format!("no OS keychain is reachable ({why})"),
            ),
            Some(why) => bail!("the OS keychain is not reachable ({why}); unlock it and run this again; nothing was changed"),
        },
    })
}

/// The encrypted file store is useless where keyctl is blocked: find out first.
fn kernel_keyring_usable() -> Result<()> {
    let probe = EncryptedFileStore::new(std::env::temp_dir().join("keyward-probe"));
    match probe.lock("keyward-probe") {
        Ok(_) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e)
            .context("the encrypted file store needs the kernel keyring; nothing was changed")),
    }
}

/// The passphrase the key file of `profile` is (re)written with: the existing file's,
/// checked now, so a re-run never silently changes or loses it; else a new one.
fn file_passphrase(profile: Option<&str>, from_stdin: bool) -> Result<Passphrase> {
    let store = profile_store()?;
    let existing = profile.and_then(|p| store.files.read_file(p).ok().flatten());
    let Some(file) = existing else {
        return new_passphrase(from_stdin);
    };
    let pass = passphrase_for(&file.profile, from_stdin)?;
    file.open(&pass, &store.files.path(&file.profile))
        .with_context(|| {
            format!(
            "the key file of `{}` exists and opens only with its passphrase; nothing was changed",
            file.profile
        )
        })?;
    Ok(pass)
}

/// A passphrase for a new file: typed twice on the terminal, or one stdin line.
pub fn new_passphrase(from_stdin: bool) -> Result<Passphrase> {
    let text = if from_stdin {
        stdin_line()?
    } else {
        let mut tty = terminal()?;
        let first = keyward_proto::tty::prompt_code(
            &mut tty,
            &format!("New passphrase for this computer's key file (at least {MIN_PASSPHRASE} characters): "),
        )?;
        let again = keyward_proto::tty::prompt_code(&mut tty, "The same passphrase again: ")?;
        if first != again {
            bail!("the two passphrases differ; nothing was changed");
        }
        first
    };
    if text.chars().count() < MIN_PASSPHRASE {
        bail!("the passphrase needs at least {MIN_PASSPHRASE} characters; nothing was changed");
    }
    Ok(Passphrase::new(text))
}

/// The passphrase of an existing file: the terminal, or one stdin line.
pub fn passphrase_for(profile: &str, from_stdin: bool) -> Result<Passphrase> {
    if from_stdin {
        return Ok(Passphrase::new(stdin_line()?));
    }
    let mut tty = terminal()?;
    let path = profile_store()?.files.path(profile);
    let text = keyward_proto::tty::prompt_code(
        &mut tty,
        &format!(
            "Passphrase for the key of `{profile}` ({}): ",
            path.display()
        ),
    )?;
    Ok(Passphrase::new(text))
}

fn terminal() -> Result<std::fs::File> {
    keyward_proto::tty::open_tty().context(
        "a passphrase is needed and there is no terminal: run this in a terminal, or pass --passphrase-stdin",
    )
}

fn stdin_line() -> Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        bail!("--passphrase-stdin reads a pipe; in a terminal, leave it out to be asked");
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the passphrase from stdin")?;
    // Trimmed like a line typed at the terminal, so either way opens the file.
    let trimmed = Zeroizing::new(line.trim().to_owned());
    Ok(trimmed)
}

/// The store this run writes new keys to.
pub fn target_kind() -> StoreKind {
    match TARGET.get() {
        Some(Target::File(_)) => StoreKind::EncryptedFile,
        _ => StoreKind::OsKeychain,
    }
}

pub fn profile_store() -> Result<ProfileStore> {
    Ok(ProfileStore::new()?)
}

/// Fails (changing nothing) when the chosen store cannot be reached at all.
pub fn probe() -> Result<()> {
    match TARGET.get() {
        Some(Target::File(_)) => kernel_keyring_usable(),
        _ => match os_unavailable() {
            None => Ok(()),
            Some(why) => Err(anyhow::Error::new(KeychainError::Unavailable(why)).context(
                "keyward needs the keychain before it changes anything; nothing was changed",
            )),
        },
    }
}

/// The id of the key stored for `profile` (never its secret); a locked file still
/// names its key id.
pub fn stored_key_id(profile: &str) -> Result<Option<String>> {
    let store = profile_store()?;
    if let Some(f) = store.files.read_file(profile)? {
        return Ok(Some(f.access_key_id));
    }
    match OsKeyStore.get(profile) {
        Ok(k) => Ok(k.map(|k| k.id.clone())),
        // Keys of this run go to a file: an absent Secret Service holds none.
        Err(KeychainError::Unavailable(_)) if target_kind() == StoreKind::EncryptedFile => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Stores `key` in the chosen store and reads it back; `Err` says why when the store
/// did not keep it. A copy in the other store is removed, so exactly one holds it.
pub fn store_and_verify(profile: &str, key: &AccessKey) -> Result<(), String> {
    validate_name(profile)?;
    let store = profile_store().map_err(|e| e.to_string())?;
    let result = match TARGET.get() {
        Some(Target::File(pass)) => store
            .files
            .store(profile, key, pass, None)
            .and_then(|()| store.files.get(profile)),
        _ => OsKeyStore
            .set(profile, key)
            .and_then(|()| OsKeyStore.get(profile)),
    };
    match result {
        Ok(Some(back)) if back.id == key.id && back.expose_secret() == key.expose_secret() => {
            // Only now that the new copy reads back: remove the other.
            if matches!(TARGET.get(), Some(Target::File(_))) {
                match OsKeyStore.delete(profile) {
                    Ok(_) | Err(KeychainError::Unavailable(_)) => {}
                    Err(e) => crate::ui::note(&format!(
                        "the key is in its file, but its old copy in the OS keychain could not be removed ({e}); remove it with your keychain tool"
                    )),
                }
            } else {
                store.files.delete(profile).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Ok(_) => Err("the key store returned a different key".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Removes the key of `profile` from every store; `Ok(false)` when there was none.
pub fn remove(profile: &str) -> Result<bool> {
    let store = profile_store()?;
    let in_file = store.files.delete(profile)?;
    let in_os = match OsKeyStore.delete(profile) {
        Ok(b) => b,
        Err(KeychainError::Unavailable(_)) if in_file => false,
        Err(e) => return Err(e.into()),
    };
    Ok(in_file || in_os)
}

/// The key of `profile` from its store; a locked file opens with this run's passphrase
/// (a re-run of setup), never a prompt.
pub fn read_key(profile: &str) -> Result<Option<AccessKey>> {
    let store = profile_store()?;
    match (store.get(profile), TARGET.get()) {
        (Err(KeychainError::Locked(_)), Some(Target::File(pass))) => {
            Ok(Some(store.files.unlock(profile, pass, None)?))
        }
        (other, _) => Ok(other?),
    }
}

/// The key of `profile` from its store, asking for the file's passphrase if it is
/// locked; `None` when no store holds one.
pub fn read_or_unlock(profile: &str, passphrase_stdin: bool) -> Result<Option<AccessKey>> {
    let store = profile_store()?;
    match store.get(profile) {
        Err(KeychainError::Locked(_)) => {
            let pass = passphrase_for(profile, passphrase_stdin)?;
            Ok(Some(store.files.unlock(profile, &pass, None)?))
        }
        other => Ok(other?),
    }
}

/// Opens `profile`'s key file into the kernel keyring for `ttl` (until reboot when
/// `None`); returns the key id.
pub fn unlock(
    profile: &str,
    passphrase_stdin: bool,
    ttl: Option<std::time::Duration>,
) -> Result<String> {
    validate_name(profile).map_err(anyhow::Error::msg)?;
    let store = profile_store()?;
    if !store.files.exists(profile) {
        bail!("profile `{profile}` has no key file: its key is in the OS keychain, which unlocks with your login. Nothing to unlock");
    }
    let pass = passphrase_for(profile, passphrase_stdin)?;
    let key = store
        .files
        .unlock(profile, &pass, ttl)
        .with_context(|| format!("nothing was unlocked; run `keyward unlock --profile {profile}` again with the passphrase chosen at `keyward setup`"))?;
    Ok(key.id.clone())
}

/// The profiles with a key file on this computer.
pub fn file_profiles() -> Result<Vec<String>> {
    Ok(profile_store()?.files.profiles())
}

/// Takes every unlocked file key out of the kernel keyring (every file in the key
/// directory, whatever the config lists); the profiles locked.
pub fn lock_files() -> Result<Vec<String>> {
    let store = profile_store()?;
    let mut locked = Vec::new();
    for p in store.files.profiles() {
        if store.files.lock(&p)? {
            locked.push(p);
        }
    }
    Ok(locked)
}
