//! `keyward rotate [--profile P]`: a new access key for this computer, the old one
//! deleted once STS accepts the new one. `--auto` (what keywardd runs while it holds
//! an MFA session) rotates only a key older than `rotate_after`, and says so.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use keyward_daemon::config::{Config, Profile};
use keyward_daemon::keychain::StoreKind;

use super::{execute, RunMode};
use crate::clients::Aws;
use crate::iam::credentials;
use crate::iam::documents::Arns;
use crate::local::{keychain, profiles};
use crate::plan::rotate::{staging, Rotation};
use crate::plan::{lists, Cx, Plan};
use keyward_daemon::clock::Clock;

#[derive(Args)]
pub struct RotateArgs {
    #[command(flatten)]
    run: RunMode,
    /// The base profile whose key to rotate (default: the only base profile)
    #[arg(long)]
    profile: Option<String>,
    /// Only when the key is older than `rotate_after` (keyward's config, default 90d)
    #[arg(long)]
    auto: bool,
    /// Read the key file's passphrase from the first line of stdin (encrypted-file store)
    #[arg(long)]
    passphrase_stdin: bool,
}

pub fn rotate(a: &RotateArgs) -> Result<()> {
    let clock = Clock::system();
    crate::runtime()?.block_on(async {
        let profile = match &a.profile {
            Some(p) => p.clone(),
            None => profiles::default_profile()?,
        };
        let cfg = Config::load(&profiles::config_path()?)?;
        let Ok(Profile::Base(base)) = cfg.resolve(&profile) else {
            bail!("`{profile}` is not a base profile; rotate the key of the profile it uses (`keyward profile list`)");
        };
        keyward_daemon::config::validate_name(&staging(&profile)).map_err(|_| {
            anyhow::anyhow!("the profile name `{profile}` is too long to stage a new key beside it (64 characters with `.rotating`)")
        })?;
        // One rotation of a profile at a time: the daemon's and yours never interleave.
        let _lock = match rotation_lock(&profile)? {
            Some(l) => l,
            None if a.auto => {
                println!("a rotation of `{profile}` is already running");
                return Ok(());
            }
            None => bail!("a rotation of `{profile}` is already running (keywardd's, or another terminal's); let it finish, then run `keyward rotate` again if needed"),
        };
        let user = base.iam_user.clone().unwrap_or_else(|| {
            base.mfa_serial.rsplit('/').next().unwrap_or_default().to_owned()
        });
        let account = base.mfa_serial.split(':').nth(4).unwrap_or_default().to_owned();
        if keychain::profile_store()?.kind_of(&profile) == StoreKind::EncryptedFile {
            if a.auto {
                println!("the key of `{profile}` is in an encrypted file: `keyward rotate` in a terminal rotates it (it needs the passphrase)");
                return Ok(());
            }
            // New keys go to files sealed with the same passphrase, checked first.
            let args = keychain::StoreArgs { store: Some(StoreKind::EncryptedFile), passphrase_stdin: a.passphrase_stdin };
            keychain::choose(&args, Some(&profile), a.run.json)?;
        }
        let machine = Aws::from_keyward_profile(&profile, None).await?;
        if a.auto {
            let after = cfg.rotate_after().map_err(anyhow::Error::msg)?;
            if let Some(age) = young_key(&machine, &profile, &user, after, clock).await? {
                println!("the key of `{profile}` is {} old; it rotates after {}", days(age), days(after));
                return Ok(());
            }
        }
        let cx = Cx {
            arns: Arns::new(&account),
            machine: Some(machine),
            admin: None,
            bootstrap: false,
            registrar: None,
            yes: true,
            quiet: a.run.json,
            actor: user.clone(),
            mfa_process: None,
            clock,
        };
        let r = Rotation { profile: profile.clone(), user };
        let plan = Plan::of(format!("rotate the access key of `{profile}`"), lists::rotate(&r));
        let report = execute(&plan, &cx, RunMode { yes: true, ..a.run }).await?;
        if report.failed() {
            bail!("rotation stopped at a failed step; the computer still has a working key. Run `keyward rotate --profile {profile}` again to finish");
        }
        if report.changed() && !a.run.dry_run {
            let id = keychain::stored_key_id(&profile)?.unwrap_or_default();
            let msg = format!("rotated the access key of `{profile}`: now …{}", crate::iam::key_suffix(&id));
            if !a.run.json {
                println!("{msg}");
            }
            keyward_proto::notify::notify(&msg, a.auto && cfg.notify());
        } else if !a.run.json && !a.run.dry_run {
            println!("nothing changed: the key of `{profile}` was rotated already");
        }
        Ok(())
    })
}

/// The rotation lock of `profile` (a file in the private runtime directory), or
/// `None` while another process holds it.
fn rotation_lock(profile: &str) -> Result<Option<std::fs::File>> {
    use rustix::fs::{flock, FlockOperation};
    let dir = keyward_proto::paths::ensure_runtime_dir()
        .context("cannot open keyward's runtime directory")?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("rotate-{profile}.lock")))
        .context("cannot open the rotation lock")?;
    Ok(flock(&file, FlockOperation::NonBlockingLockExclusive)
        .is_ok()
        .then_some(file))
}

/// `Some(age)` when the stored key is younger than `after` and no rotation is half
/// done (a staged key always finishes).
async fn young_key(
    aws: &Aws,
    profile: &str,
    user: &str,
    after: Duration,
    clock: Clock,
) -> Result<Option<Duration>> {
    if keychain::stored_key_id(&staging(profile))?.is_some() {
        return Ok(None);
    }
    let id = keychain::stored_key_id(profile)?.context("no key is stored for this profile")?;
    let keys = credentials::access_keys(aws, user).await?;
    let created = keys.iter().find(|k| k.id == id).and_then(|k| k.created);
    let age = created.map(|c| clock.since(c)).unwrap_or_default();
    Ok((age < after).then_some(age))
}

fn days(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 86_400 {
        format!("{} days", secs / 86_400)
    } else {
        humantime::format_duration(Duration::from_secs(secs)).to_string()
    }
}
