//! keyward's profiles (its config file) and their `credential_process` lines in
//! `~/.aws/config`: always written together, every other line kept.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use keyward_daemon::config::{self, Config, Profile, ProfileEntry};

use super::aws_config;

pub fn config_path() -> Result<PathBuf> {
    Ok(config::default_path()?)
}

/// The command line that `~/.aws/config` runs for `profile`.
pub fn helper_command(profile: &str) -> Result<String> {
    let exe = std::env::current_exe().context("cannot locate the keyward binary")?;
    let dir = exe.parent().context("keyward binary has no directory")?;
    let helper = dir.join("keyward-credential-process");
    let (bin, sub) = if helper.is_file() {
        (helper, "")
    } else {
        (exe.clone(), " credential-process")
    };
    let bin = bin.to_string_lossy().into_owned();
    let quoted = if bin.contains(char::is_whitespace) {
        format!("\"{bin}\"")
    } else {
        bin
    };
    Ok(format!("{quoted}{sub} --profile {profile}"))
}

/// Saves a profile in keyward's config and its credential_process line in the AWS
/// config, validating everything before writing anything.
pub fn save_profile(
    name: &str,
    entry: ProfileEntry,
    region: Option<&str>,
) -> Result<(PathBuf, PathBuf, String, Config)> {
    let path = config_path()?;
    let mut cfg = Config::load(&path)?;
    cfg.profiles.insert(name.to_owned(), entry);
    cfg.resolve(name)?;
    let aws_path = aws_config::config_path()?;
    let text = aws_config::read_or_empty(&aws_path)?;
    let section = aws_config::config_section(name);
    let mut updated = aws_config::set_key(
        &text,
        &section,
        "credential_process",
        &helper_command(name)?,
    );
    if let Some(r) = region {
        updated = aws_config::set_key(&updated, &section, "region", r);
    }
    cfg.save(&path)?;
    if updated != *text {
        config::write_atomic(&aws_path, updated.as_bytes())
            .with_context(|| format!("cannot write {}", aws_path.display()))?;
    }
    Ok((path, aws_path, section, cfg))
}

/// Saves a profile in keyward's config only, with no `credential_process` line: for
/// the admin role's profile, which keyward itself uses and AWS tools should not.
pub fn save_profile_only(name: &str, entry: ProfileEntry) -> Result<()> {
    let path = config_path()?;
    let mut cfg = Config::load(&path)?;
    cfg.profiles.insert(name.to_owned(), entry);
    cfg.resolve(name)?;
    cfg.save(&path)?;
    Ok(())
}

/// The profiles whose `source` is `base` (role profiles built on it).
pub fn dependents(base: &str) -> Result<Vec<String>> {
    let cfg = Config::load(&config_path()?)?;
    Ok(cfg
        .profiles
        .iter()
        .filter(|(_, p)| p.source.as_deref() == Some(base))
        .map(|(n, _)| n.clone())
        .collect())
}

/// The name of the admin role's profile built on a base profile.
pub fn admin_profile_name(base: &str) -> String {
    format!("{base}-keyward-admin")
}

/// Removes a profile and its credential_process line (keeping every other line).
pub fn forget_profile(name: &str) -> Result<bool> {
    let path = config_path()?;
    let mut cfg = Config::load(&path)?;
    let existed = cfg.profiles.remove(name).is_some();
    let aws_path = aws_config::config_path()?;
    let text = aws_config::read_or_empty(&aws_path)?;
    let section = aws_config::config_section(name);
    let ours = aws_config::get_key(&text, &section, "credential_process")
        .is_some_and(|v| v.contains("keyward"));
    if existed {
        cfg.save(&path)?;
    }
    if ours {
        let mut updated = aws_config::remove_key(&text, &section, "credential_process");
        // A section that held only what keyward wrote goes with it.
        if aws_config::section_keys(&updated, &section)
            .iter()
            .all(|k| k == "region")
        {
            updated = aws_config::remove_section(&updated, &section);
        }
        config::write_atomic(&aws_path, updated.as_bytes())?;
    }
    Ok(existed || ours)
}

pub fn default_profile() -> Result<String> {
    if let Ok(p) = std::env::var("AWS_PROFILE") {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let cfg = Config::load(&config_path()?)?;
    let bases: Vec<_> = cfg
        .profiles
        .keys()
        .filter(|n| matches!(cfg.resolve(n), Ok(Profile::Base(_))))
        .cloned()
        .collect();
    match bases.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no keyward profile on this computer yet: register it with `keyward setup`"),
        many => bail!(
            "several profiles ({}); pick one with --profile",
            many.join(", ")
        ),
    }
}
