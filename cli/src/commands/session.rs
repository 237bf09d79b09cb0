//! `keyward login|status|lock|daemon`: talking to keywardd.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use keyward_proto::client::{CallError, Client};
use keyward_proto::credential_process::{fetch, Prompt};
use keyward_proto::{spawn, ErrorKind, Status};

#[derive(Args)]
pub struct LoginArgs {
    /// Defaults to AWS_PROFILE, else the only base profile
    #[arg(long)]
    profile: Option<String>,
    /// Print JSON on stdout (for scripts)
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LockArgs {
    /// Print JSON on stdout (for scripts)
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON on stdout (for scripts)
    #[arg(long)]
    json: bool,
    /// First ask STS whether this computer's keys still exist
    #[arg(long)]
    check: bool,
}

#[derive(Subcommand)]
pub enum DaemonCommand {
    /// Start keywardd unless it runs
    Start,
    /// Stop keywardd (its sessions are dropped)
    Stop,
    /// Stop, then start keywardd
    Restart,
}

#[derive(serde::Deserialize)]
struct Expiry {
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// `keyward login --json`.
#[derive(serde::Serialize)]
struct LoginOutput<'a> {
    profile: &'a str,
    expiration: &'a str,
}

/// `keyward status --json`.
#[derive(serde::Serialize)]
struct StatusOutput<'a> {
    running: bool,
    cli_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon: Option<&'a Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    socket: &'a std::path::Path,
}

pub fn login(a: &LoginArgs) -> Result<()> {
    let profile = match &a.profile {
        Some(p) => p.clone(),
        None => crate::local::profiles::default_profile()?,
    };
    let body = match fetch(&Client::default_socket(), &profile, Prompt::IfTerminal) {
        // A locked key file: the passphrase first, then the MFA code.
        Err(e) if e.kind == ErrorKind::KeyLocked && keyward_proto::tty::open_tty().is_some() => {
            // The profile to open comes from our own config, never from the reply.
            crate::local::keychain::unlock(&base_of(&profile)?, false, None)?;
            fetch(&Client::default_socket(), &profile, Prompt::IfTerminal)
        }
        // The helper's hint is "run keyward login": never send the user back here.
        Err(e) if e.kind == ErrorKind::MfaRequired => bail!(
            "an MFA code is needed and there is no terminal to type it in: start this from a terminal (over SSH: `ssh -t`), or set `mfa_process` for profile `{profile}` in {}",
            crate::local::profiles::config_path()?.display()
        ),
        other => other,
    }
    .map_err(|e| anyhow::anyhow!(e.message))?;
    // Only the expiry is read out; the secrets stay in the zeroized body.
    let exp: Expiry =
        serde_json::from_slice(&body).context("unreadable credentials from keywardd")?;
    if a.json {
        let out = LoginOutput {
            profile: &profile,
            expiration: &exp.expiration,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "logged in: profile `{profile}` has a session until {}",
            exp.expiration
        );
    }
    Ok(())
}

/// The base profile whose key `profile` uses (itself, or a role's source).
fn base_of(profile: &str) -> Result<String> {
    let cfg = keyward_daemon::config::Config::load(&crate::local::profiles::config_path()?)?;
    Ok(cfg.resolve(profile)?.base().name.clone())
}

pub fn status(a: &StatusArgs) -> Result<()> {
    let client = Client::default_socket().with_timeout(Duration::from_secs(30));
    if a.check {
        spawn::ensure_running(&client).map_err(anyhow::Error::msg)?;
        client.check()?;
    }
    let st = client.status();
    if a.json {
        let doc = StatusOutput {
            running: st.is_ok(),
            cli_version: env!("CARGO_PKG_VERSION"),
            daemon: st.as_ref().ok(),
            error: st.as_ref().err().map(ToString::to_string),
            socket: client.socket(),
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
        if st.is_err() {
            std::process::exit(3);
        }
        return Ok(());
    }
    match st {
        Ok(s) => print_status(&s),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!("{e}");
        }
        Err(e) => {
            println!(
                "keywardd is not running ({e}) at {}",
                client.socket().display()
            );
            println!("it starts on the next AWS command, or run `keyward daemon start`");
            std::process::exit(3);
        }
    }
    Ok(())
}

fn print_status(s: &Status) {
    println!(
        "keywardd {} (protocol {}), pid {}",
        s.version, s.protocol, s.pid
    );
    for p in &s.revoked {
        println!("profile `{p}`: this computer's key was revoked or deleted; run `keyward setup` to register again");
    }
    if s.sessions.is_empty() {
        println!("no sessions; run `keyward login`");
        return;
    }
    println!(
        "{:<20} {:<8} {:<6} {:<22} LEFT",
        "PROFILE", "KIND", "KEY", "EXPIRES"
    );
    for x in &s.sessions {
        println!(
            "{:<20} {:<8} …{:<5} {:<22} {}",
            x.profile,
            x.kind,
            x.access_key_id_suffix,
            x.expiration,
            humantime::format_duration(Duration::from_secs(x.expires_in_secs / 60 * 60))
        );
    }
}

/// `keyward lock --json`.
#[derive(serde::Serialize)]
struct LockOutput {
    forgotten: usize,
    keys_locked: Vec<String>,
}

pub fn lock(a: &LockArgs) -> Result<()> {
    let client = Client::default_socket();
    let forgotten = match client.lock(false) {
        Ok(r) => r.forgotten,
        Err(CallError::Refused(e)) => bail!(e.message),
        Err(CallError::Unreachable(_)) => 0,
    };
    let keys_locked = crate::local::keychain::lock_files()?;
    if a.json {
        let out = LockOutput {
            forgotten,
            keys_locked,
        };
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    println!("locked: {forgotten} session(s) forgotten");
    for p in &keys_locked {
        println!("locked the key file of `{p}`; `keyward unlock --profile {p}` opens it again");
    }
    Ok(())
}

fn stop(client: &Client) -> Result<bool> {
    if client.connect().is_err() {
        return Ok(false);
    }
    client.shutdown().context("cannot ask keywardd to stop")?;
    let started = Instant::now();
    while client.connect().is_ok() {
        if started.elapsed() > Duration::from_secs(5) {
            bail!("keywardd did not stop within 5s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(true)
}

pub fn daemon(cmd: &DaemonCommand) -> Result<()> {
    let client = Client::default_socket();
    match cmd {
        DaemonCommand::Start => {
            spawn::ensure_running(&client).map_err(anyhow::Error::msg)?;
            println!("keywardd is running (pid {})", client.status()?.pid);
        }
        DaemonCommand::Stop => {
            if stop(&client)? {
                println!("keywardd stopped");
            } else {
                println!("keywardd was not running");
            }
        }
        DaemonCommand::Restart => {
            stop(&client)?;
            spawn::ensure_running(&client).map_err(anyhow::Error::msg)?;
            println!("keywardd restarted (pid {})", client.status()?.pid);
        }
    }
    Ok(())
}
