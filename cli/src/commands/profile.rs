//! `keyward profile add|list|remove`: keyward's profiles and their credential_process lines.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use keyward_daemon::config::{self, validate_name, Config, Profile, ProfileEntry};

use crate::local::profiles::{config_path, forget_profile, save_profile};

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Add (or update) a base profile (--mfa-serial) or a role profile (--role-arn --source)
    Add(Box<AddArgs>),
    /// List profiles
    List {
        /// Print JSON on stdout (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Remove a profile and its credential_process line
    Remove {
        /// The profile to remove
        name: String,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// The profile's name, as AWS tools will know it (`--profile NAME`)
    name: String,
    /// MFA device ARN (base profile)
    #[arg(long, value_name = "ARN", conflicts_with_all = ["role_arn", "source", "duration", "external_id"])]
    mfa_serial: Option<String>,
    /// AWS region for STS and the API calls (default: the profile's, else us-east-1)
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// Base session length, e.g. 12h (AWS allows 15m to 36h)
    #[arg(long, value_name = "D")]
    session_duration: Option<String>,
    /// Command whose stdout is the current MFA code, run without a shell
    #[arg(long, value_name = "CMD")]
    mfa_process: Option<String>,
    /// Role to assume (role profile)
    #[arg(long, value_name = "ARN", requires = "source")]
    role_arn: Option<String>,
    /// Base profile whose session assumes the role
    #[arg(long, value_name = "BASE")]
    source: Option<String>,
    /// Role session length, e.g. 1h; over 1h the role is assumed directly with MFA
    #[arg(long, value_name = "D")]
    duration: Option<String>,
    /// External ID the role's trust policy requires
    #[arg(long, value_name = "X")]
    external_id: Option<String>,
    /// Develop this keyward app: assume its role with this computer's MFA session
    #[arg(long, value_name = "APP", conflicts_with_all = ["mfa_serial", "role_arn", "external_id"])]
    app: Option<String>,
}

pub fn run(cmd: ProfileCommand) -> Result<()> {
    match cmd {
        ProfileCommand::Add(a) => add(&a),
        ProfileCommand::List { json } => list(json),
        ProfileCommand::Remove { name } => remove(&name),
    }
}

fn add(a: &AddArgs) -> Result<()> {
    validate_name(&a.name).map_err(anyhow::Error::msg)?;
    let mfa_process = a
        .mfa_process
        .as_deref()
        .map(|c| shell_words::split(c).context("cannot split --mfa-process into words"))
        .transpose()?;
    if mfa_process.as_ref().is_some_and(Vec::is_empty) {
        bail!("--mfa-process is empty");
    }
    let app_role = a
        .app
        .as_deref()
        .map(|app| app_role(app, a.source.as_deref()))
        .transpose()?;
    let source = app_role
        .as_ref()
        .map(|(_, s)| s.clone())
        .or_else(|| a.source.clone());
    let role_arn = app_role.map(|(r, _)| r).or_else(|| a.role_arn.clone());
    let entry = match (&a.mfa_serial, &role_arn) {
        (Some(serial), None) => {
            if !serial.starts_with("arn:") || !serial.contains(":mfa/") {
                bail!("--mfa-serial must be an MFA device ARN like arn:aws:iam::123456789012:mfa/alice-laptop");
            }
            ProfileEntry {
                mfa_serial: Some(serial.clone()),
                region: a.region.clone(),
                session_duration: a.session_duration.clone(),
                mfa_process,
                ..ProfileEntry::default()
            }
        }
        (None, Some(role)) => {
            if !role.starts_with("arn:") || !role.contains(":role/") {
                bail!("--role-arn must be a role ARN like arn:aws:iam::123456789012:role/admin");
            }
            if mfa_process.is_some() || a.session_duration.is_some() {
                bail!("--mfa-process and --session-duration belong to the base profile (--source)");
            }
            ProfileEntry {
                role_arn: Some(role.clone()),
                source: source.clone(),
                duration: a.duration.clone(),
                external_id: a.external_id.clone(),
                region: a.region.clone(),
                ..ProfileEntry::default()
            }
        }
        _ => bail!("give --mfa-serial ARN for a base profile, or --role-arn ARN --source BASE for a role profile"),
    };
    if let Some(d) = &a.session_duration {
        let d = config::parse_duration(d).map_err(anyhow::Error::msg)?;
        if !(900..=129_600).contains(&d.as_secs()) {
            bail!("--session-duration must be between 15m and 36h");
        }
    }
    let (path, aws_path, section, cfg) = save_profile(&a.name, entry, a.region.as_deref())?;
    println!("profile `{}` saved in {}", a.name, path.display());
    println!(
        "[{section}] in {} now runs keyward for credentials",
        aws_path.display()
    );
    if let Ok(Profile::Base(_)) = cfg.resolve(&a.name) {
        println!("next: `keyward key import --profile {}` (if not done), then `keyward login --profile {}`", a.name, a.name);
    }
    Ok(())
}

/// The role of app `app` in the account of base profile `source` (default: the only
/// base profile), and that profile's name.
fn app_role(app: &str, source: Option<&str>) -> Result<(String, String)> {
    crate::iam::apps::check_name(app).map_err(anyhow::Error::msg)?;
    let base = match source {
        Some(s) => s.to_owned(),
        None => crate::local::profiles::default_profile()?,
    };
    let cfg = Config::load(&config_path()?)?;
    let Ok(Profile::Base(b)) = cfg.resolve(&base) else {
        bail!("`{base}` is not a base profile of this computer; pass --source with one from `keyward profile list`");
    };
    let account = b
        .mfa_serial
        .split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .with_context(|| format!("the MFA serial of `{base}` names no account"))?;
    let role = format!(
        "arn:aws:iam::{account}:role{}{}",
        crate::iam::documents::PATH,
        crate::iam::apps::id(app)
    );
    Ok((role, base))
}

fn list(json: bool) -> Result<()> {
    let cfg = Config::load(&config_path()?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&cfg.profiles)?);
        return Ok(());
    }
    if cfg.profiles.is_empty() {
        println!("no profiles; add one with `keyward profile add NAME --mfa-serial ARN`");
        return Ok(());
    }
    println!("{:<20} {:<5} {:<8} DETAIL", "PROFILE", "KIND", "DURATION");
    for name in cfg.profiles.keys() {
        match cfg.resolve(name)? {
            Profile::Base(b) => println!(
                "{:<20} {:<5} {:<8} mfa {}{}",
                name,
                "base",
                humantime::format_duration(b.session_duration).to_string(),
                b.mfa_serial,
                if b.mfa_process.is_some() {
                    " (mfa_process)"
                } else {
                    ""
                }
            ),
            Profile::Role(r) => println!(
                "{:<20} {:<5} {:<8} {} via {}{}",
                name,
                "role",
                humantime::format_duration(r.duration).to_string(),
                r.role_arn,
                r.source.name,
                if r.needs_direct_mfa() {
                    " (direct with MFA)"
                } else {
                    ""
                }
            ),
        }
    }
    Ok(())
}

fn remove(name: &str) -> Result<()> {
    let cfg = Config::load(&config_path()?)?;
    if !cfg.profiles.contains_key(name) {
        bail!("no keyward profile `{name}`; see `keyward profile list`");
    }
    let dependents: Vec<_> = cfg
        .profiles
        .iter()
        .filter(|(_, p)| p.source.as_deref() == Some(name))
        .map(|(n, _)| n.clone())
        .collect();
    if !dependents.is_empty() {
        bail!(
            "role profiles {} use `{name}` as their source; remove them first",
            dependents.join(", ")
        );
    }
    forget_profile(name)?;
    println!("removed profile `{name}`; its key, if any, stays in the keychain (`keyward key remove --profile {name}` deletes it)");
    Ok(())
}
