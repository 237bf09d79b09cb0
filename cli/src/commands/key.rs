//! `keyward key import|remove|migrate`: the long-term key goes into a key store (the OS
//! keychain, or a passphrase-encrypted file), never a plaintext file.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use keyward_daemon::config::validate_name;
use keyward_daemon::keychain::StoreKind;
use keyward_daemon::session::AccessKey;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::local::aws_config as awsfiles;
use crate::local::keychain::{self, StoreArgs};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Import an access key from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the credentials file
    Import {
        /// The keyward profile whose key this is
        #[arg(long)]
        profile: String,
        /// Read the key from this section of the plaintext credentials file
        #[arg(long, value_name = "P")]
        from_credentials_profile: Option<String>,
        /// Then remove that section from the credentials file (after a verified read-back)
        #[arg(long, requires = "from_credentials_profile")]
        scrub: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete the key from its store
    Remove {
        /// The keyward profile whose key this is
        #[arg(long)]
        profile: String,
    },
    /// Move the key to another store, without ever showing it
    Migrate {
        /// The store to move it to: os-keychain or encrypted-file
        #[arg(long, value_name = "STORE", value_parser = parse_kind)]
        to: StoreKind,
        /// The keyward profile whose key this is (default: AWS_PROFILE, else the only
        /// base profile)
        #[arg(long)]
        profile: Option<String>,
        /// Read passphrases from stdin lines (the old file's first, then the new one's)
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

fn parse_kind(s: &str) -> Result<StoreKind, String> {
    s.parse()
}

pub fn run(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Import {
            profile,
            from_credentials_profile,
            scrub,
            store,
        } => import(&profile, from_credentials_profile.as_deref(), scrub, &store),
        KeyCommand::Remove { profile } => {
            validate_name(&profile).map_err(anyhow::Error::msg)?;
            if keychain::remove(&profile)? {
                println!("removed the key of profile `{profile}` from its store");
            } else {
                println!("no store held a key for profile `{profile}`; nothing to do");
            }
            crate::local::daemon::lock_quietly();
            Ok(())
        }
        KeyCommand::Migrate {
            to,
            profile,
            passphrase_stdin,
        } => {
            let profile = match profile {
                Some(p) => p,
                None => crate::local::profiles::default_profile()?,
            };
            migrate(&profile, to, passphrase_stdin)
        }
    }
}

fn valid_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn import(profile: &str, from: Option<&str>, scrub: bool, store: &StoreArgs) -> Result<()> {
    validate_name(profile).map_err(anyhow::Error::msg)?;
    let creds_path = awsfiles::credentials_path()?;
    let (id, secret) = match from {
        Some(section) => {
            let text = awsfiles::read_or_empty(&creds_path)?;
            let id = awsfiles::get_key(&text, section, "aws_access_key_id");
            let secret = awsfiles::get_key(&text, section, "aws_secret_access_key");
            match (id, secret) {
                (Some(i), Some(s)) => (i.to_owned(), Zeroizing::new(s.to_owned())),
                _ => bail!(
                    "no aws_access_key_id/aws_secret_access_key in section [{section}] of {}",
                    creds_path.display()
                ),
            }
        }
        None => {
            let id = std::env::var("AWS_ACCESS_KEY_ID").ok();
            let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
                .ok()
                .map(Zeroizing::new);
            match (id, secret) {
                (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => (i, s),
                _ => bail!("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --from-credentials-profile P"),
            }
        }
    };
    if !valid_key_id(&id) || secret.trim().is_empty() {
        bail!("that does not look like an AWS access key (the id should be 16+ letters and digits); nothing was stored");
    }
    let key = AccessKey::new(id.clone(), SecretString::from(secret.to_string()));
    let kind = keychain::choose(store, Some(profile), false)?;
    keychain::store_and_verify(profile, &key).map_err(|why| {
        anyhow::anyhow!("cannot store the key ({why}); nothing was scrubbed. Run `keyward doctor` to check the key store")
    })?;
    let suffix = &id[id.len() - 4..];
    println!("stored access key …{suffix} for profile `{profile}` in the {kind} store");
    if scrub {
        let section = from.expect("clap requires it");
        let text = awsfiles::read_or_empty(&creds_path)?;
        let scrubbed = Zeroizing::new(awsfiles::remove_section(&text, section));
        keyward_daemon::config::write_atomic(&creds_path, scrubbed.as_bytes())
            .with_context(|| format!("cannot rewrite {}", creds_path.display()))?;
        println!("removed [{section}] from {}", creds_path.display());
    }
    crate::local::daemon::lock_quietly();
    Ok(())
}

/// Reads the key from where it is, stores it in `to`, reads it back, and only then
/// removes the old copy. The key is never shown.
fn migrate(profile: &str, to: StoreKind, passphrase_stdin: bool) -> Result<()> {
    validate_name(profile).map_err(anyhow::Error::msg)?;
    let store = keychain::profile_store()?;
    let from = store.kind_of(profile);
    if from == to {
        println!("the key of `{profile}` is already in the {to} store; nothing to do");
        return Ok(());
    }
    let key = keychain::read_or_unlock(profile, passphrase_stdin)?
        .with_context(|| format!("no store holds a key for profile `{profile}`; register this computer with `keyward setup`"))?;
    let args = StoreArgs {
        store: Some(to),
        passphrase_stdin,
    };
    keychain::choose(&args, None, true)?;
    keychain::store_and_verify(profile, &key).map_err(|why| {
        anyhow::anyhow!(
            "cannot store the key in the {to} store ({why}); it is still in the {from} store"
        )
    })?;
    let suffix = &key.id[key.id.len().saturating_sub(4)..];
    println!("moved key …{suffix} of `{profile}` from the {from} store to the {to} store");
    if to == StoreKind::EncryptedFile {
        println!("it is unlocked until this computer restarts; then run `keyward unlock --profile {profile}`");
    }
    Ok(())
}
