//! `keyward unlock`: opens encrypted key files into the kernel keyring, where the
//! daemon reads them until reboot, `keyward lock`, or `--for` runs out.

use anyhow::{bail, Result};
use clap::Args;

use crate::local::keychain;

#[derive(Args)]
pub struct UnlockArgs {
    /// The profile whose key to unlock (default: every base profile with a key file)
    #[arg(long)]
    profile: Option<String>,
    /// Lock it again after this long, e.g. 8h (default: until reboot or `keyward lock`)
    #[arg(long = "for", value_name = "D")]
    duration: Option<String>,
    /// Read the passphrase from the first line of stdin, not the terminal
    #[arg(long)]
    passphrase_stdin: bool,
    /// Print JSON on stdout (for scripts)
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Unlocked {
    profile: String,
    access_key_id_suffix: String,
    until: String,
}

pub fn unlock(a: &UnlockArgs) -> Result<()> {
    let ttl = a
        .duration
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--for: {e} (e.g. 8h or 30m)"))?;
    let profiles = match &a.profile {
        Some(p) => vec![p.clone()],
        None => keychain::file_profiles()?,
    };
    if profiles.is_empty() {
        bail!("no profile keeps its key in an encrypted file, so nothing needs unlocking (the OS keychain unlocks with your login); see `keyward doctor`");
    }
    let until = ttl.map_or_else(
        || "this computer restarts, or `keyward lock`".to_owned(),
        |t| {
            humantime::format_rfc3339_seconds(keyward_daemon::clock::Clock::system().now() + t)
                .to_string()
        },
    );
    let mut done = Vec::new();
    for p in profiles {
        let id = keychain::unlock(&p, a.passphrase_stdin, ttl)?;
        let suffix = id[id.len().saturating_sub(4)..].to_owned();
        if !a.json {
            println!("unlocked key …{suffix} of `{p}` until {until}");
        }
        done.push(Unlocked {
            profile: p,
            access_key_id_suffix: suffix,
            until: until.clone(),
        });
    }
    if a.json {
        println!("{}", serde_json::to_string(&done)?);
    }
    Ok(())
}
