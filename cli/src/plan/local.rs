//! Steps on this computer: its profile and `credential_process` line, keywardd, the
//! new key's acceptance by STS, and forgetting everything local at deregistration.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use aws_credential_types::Credentials;
use keyward_daemon::config::{Config, ProfileEntry};

use super::{Cx, FlowStep, Needs, State, StepId};
use crate::clients::Aws;
use crate::local::{aws_config, daemon, keychain, profiles};
use crate::ui;

/// A step on this computer only.
#[derive(Debug, Clone)]
pub enum LocalStep {
    /// STS accepts the key just stored for `profile` (IAM is eventually consistent).
    AwaitKey {
        profile: String,
    },
    /// The profile in keyward's config; with `aws_config`, its `credential_process`
    /// line in ~/.aws/config too.
    WriteProfile {
        profile: String,
        entry: Box<ProfileEntry>,
        aws_config: bool,
    },
    StartDaemon,
    /// The stored key, the profile, those built on it and their `credential_process`
    /// lines: everything of a deregistered computer.
    ForgetLocal {
        profile: String,
    },
}

impl FlowStep for LocalStep {
    fn id(&self) -> StepId {
        match self {
            LocalStep::AwaitKey { .. } => StepId::AwaitKey,
            LocalStep::WriteProfile { .. } => StepId::WriteProfile,
            LocalStep::StartDaemon => StepId::StartDaemon,
            LocalStep::ForgetLocal { .. } => StepId::ForgetLocal,
        }
    }

    fn needs(&self) -> Needs {
        Needs::Local
    }

    fn label(&self) -> String {
        match self {
            LocalStep::AwaitKey { .. } => "STS accepts the new key".into(),
            LocalStep::WriteProfile { profile, .. } => {
                format!("profile `{profile}` and its credential_process line")
            }
            LocalStep::StartDaemon => "keywardd running".into(),
            LocalStep::ForgetLocal { profile } => {
                format!("this computer: keychain entry and profiles of `{profile}`")
            }
        }
    }

    async fn check(&self, _cx: &Cx) -> Result<State> {
        match self {
            LocalStep::AwaitKey { profile } => check_key_accepted(profile).await,
            LocalStep::WriteProfile { profile, entry, .. } => check_profile(profile, entry),
            LocalStep::StartDaemon => Ok(check_daemon()),
            LocalStep::ForgetLocal { profile } => check_forgotten(profile),
        }
    }

    async fn apply(&self, _cx: &Cx) -> Result<String> {
        match self {
            LocalStep::AwaitKey { profile } => await_key(profile).await,
            LocalStep::WriteProfile {
                profile,
                entry,
                aws_config,
            } => write_profile(profile, entry, *aws_config),
            LocalStep::StartDaemon => start_daemon(),
            LocalStep::ForgetLocal { profile } => forget(profile),
        }
    }
}

pub async fn sts_accepts(profile: &str) -> Result<bool> {
    let Some(key) = keychain::read_key(profile)? else {
        bail!("no key store holds a key for `{profile}`");
    };
    let creds = Credentials::new(&key.id, key.expose_secret(), None, None, "keyward-new-key");
    drop(key);
    let probe = Aws::with_credentials(creds, None).await;
    Ok(probe.sts.get_caller_identity().send().await.is_ok())
}

async fn check_key_accepted(profile: &str) -> Result<State> {
    Ok(if sts_accepts(profile).await? {
        State::Done("accepted".into())
    } else {
        State::ToDo("wait until STS accepts it (IAM is eventually consistent)".into())
    })
}

pub async fn await_key(profile: &str) -> Result<String> {
    let spinner = ui::Spinner::start("waiting until STS accepts the new key");
    let started = Instant::now();
    loop {
        if sts_accepts(profile).await? {
            spinner.clear();
            return Ok(format!(
                "accepted after {:.1}s",
                started.elapsed().as_secs_f64()
            ));
        }
        if started.elapsed() > Duration::from_secs(120) {
            drop(spinner);
            bail!("STS did not accept the new key within 2 minutes; it is stored in this computer's key store, so run `keyward setup` again to continue");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn check_profile(profile: &str, entry: &ProfileEntry) -> Result<State> {
    let cfg = Config::load(&profiles::config_path()?)?;
    Ok(if cfg.profiles.get(profile) == Some(entry) {
        State::Done("configured".into())
    } else {
        State::ToDo("write it".into())
    })
}

fn write_profile(profile: &str, entry: &ProfileEntry, with_aws_config: bool) -> Result<String> {
    if with_aws_config {
        let region = entry.region.clone();
        let (_, aws_path, section, _) =
            profiles::save_profile(profile, entry.clone(), region.as_deref())?;
        Ok(format!(
            "[{section}] in {} runs keyward",
            aws_path.display()
        ))
    } else {
        profiles::save_profile_only(profile, entry.clone())?;
        Ok("saved in keyward's config".into())
    }
}

fn check_daemon() -> State {
    if daemon::is_running() {
        State::Done("running".into())
    } else {
        State::ToDo("start it".into())
    }
}

fn start_daemon() -> Result<String> {
    // The key may have changed: sessions of the old one must go.
    daemon::lock_quietly();
    daemon::ensure_running()?;
    Ok("running".into())
}

fn check_forgotten(profile: &str) -> Result<State> {
    let cfg = Config::load(&profiles::config_path()?)?;
    let text = aws_config::read_or_empty(&aws_config::config_path()?)?;
    let line = aws_config::get_key(
        &text,
        &aws_config::config_section(profile),
        "credential_process",
    )
    .is_some();
    Ok(
        if keychain::stored_key_id(profile)?.is_none()
            && !cfg.profiles.contains_key(profile)
            && !line
        {
            State::Done("nothing left".into())
        } else {
            State::ToDo(
                "remove the stored key, the profiles and their credential_process lines".into(),
            )
        },
    )
}

fn forget(profile: &str) -> Result<String> {
    for dependent in profiles::dependents(profile)? {
        profiles::forget_profile(&dependent)?;
    }
    keychain::remove(profile)?;
    profiles::forget_profile(profile)?;
    daemon::lock_quietly();
    Ok("removed the stored key, keyward's profiles and their credential_process lines".into())
}
