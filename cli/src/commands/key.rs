//! `keyward key import|remove`: the long-term key goes into the keychain, never a file.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use keyward_daemon::config::validate_name;
use keyward_daemon::keychain::{KeyStore, OsKeyStore};
use keyward_daemon::session::AccessKey;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::local::aws_config as awsfiles;

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
    },
    /// Delete the key from the keychain
    Remove {
        /// The keyward profile whose key this is
        #[arg(long)]
        profile: String,
    },
}

pub fn run(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Import {
            profile,
            from_credentials_profile,
            scrub,
        } => import(&profile, from_credentials_profile.as_deref(), scrub),
        KeyCommand::Remove { profile } => {
            validate_name(&profile).map_err(anyhow::Error::msg)?;
            if OsKeyStore.delete(&profile)? {
                println!("removed the key of profile `{profile}` from the keychain");
            } else {
                println!("the keychain held no key for profile `{profile}`; nothing to do");
            }
            crate::local::daemon::lock_quietly();
            Ok(())
        }
    }
}

fn valid_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn import(profile: &str, from: Option<&str>, scrub: bool) -> Result<()> {
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
    OsKeyStore
        .set(profile, &key)
        .context("cannot store the key; run `keyward doctor` to check the keychain")?;
    let back = OsKeyStore
        .get(profile)?
        .context("the keychain did not keep the key")?;
    if back.id != key.id || back.expose_secret() != key.expose_secret() {
        bail!("the keychain returned a different key than was stored; nothing was scrubbed");
    }
    let suffix = &id[id.len() - 4..];
    println!("stored access key …{suffix} for profile `{profile}` in the OS keychain");
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
