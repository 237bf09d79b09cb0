//! `keyward doctor`: every check with a concrete fix; non-zero exit when one fails.

mod keys;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use clap::Args;
use keyward_proto::client::Client;
use keyward_proto::{paths, spawn, PROTOCOL_VERSION};
use serde::Serialize;

use crate::local::aws_config as awsfiles;
use crate::ui;

const MAX_SKEW: Duration = Duration::from_secs(300);

#[derive(Args)]
pub struct DoctorArgs {
    /// Print JSON on stdout (for scripts)
    #[arg(long)]
    json: bool,
    /// Skip the clock check (it makes one unsigned-equivalent call to STS)
    #[arg(long)]
    offline: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(
    name: &'static str,
    status: Level,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix,
    }
}

fn daemon(client: &Client) -> Check {
    if let Err(e) = spawn::ensure_running(client) {
        return check(
            "daemon",
            Level::Fail,
            e,
            Some("fix the reason above, then run `keyward daemon start`".into()),
        );
    }
    match client.status() {
        Ok(s) if s.protocol != PROTOCOL_VERSION => check(
            "daemon",
            Level::Fail,
            format!(
                "keywardd {} speaks protocol {}, this keyward {PROTOCOL_VERSION}",
                s.version, s.protocol
            ),
            Some("keyward daemon restart".into()),
        ),
        Ok(s) if s.version != env!("CARGO_PKG_VERSION") => check(
            "daemon",
            Level::Warn,
            format!(
                "keywardd {} (pid {}) is not this keyward's version {}",
                s.version,
                s.pid,
                env!("CARGO_PKG_VERSION")
            ),
            Some("keyward daemon restart".into()),
        ),
        Ok(s) => check(
            "daemon",
            Level::Ok,
            format!(
                "keywardd {} (protocol {}) runs as pid {}",
                s.version, s.protocol, s.pid
            ),
            None,
        ),
        Err(e) => check(
            "daemon",
            Level::Fail,
            spawn::explain_gone(&e),
            Some("keyward daemon restart".into()),
        ),
    }
}

fn socket(client: &Client) -> Check {
    let (dir, source) = paths::runtime_location();
    if let Err(e) = paths::check_private_dir(&dir) {
        return check(
            "socket",
            Level::Fail,
            e.to_string(),
            Some(format!(
                "rm -rf {} and run `keyward daemon restart`",
                dir.display()
            )),
        );
    }
    let answers = client.status();
    match std::fs::symlink_metadata(client.socket()) {
        // A socket file with nobody behind it is a leftover, not a working socket.
        Ok(_) if answers.is_err() => check(
            "socket",
            Level::Fail,
            format!(
                "{} is there but no keywardd answers on it: {}",
                client.socket().display(),
                spawn::explain_gone(answers.as_ref().expect_err("checked"))
            ),
            Some("keyward daemon restart".into()),
        ),
        Ok(m) if m.permissions().mode() & 0o777 == 0o600 => check(
            "socket",
            Level::Ok,
            format!(
                "{} is 0600 in a 0700 directory you own (chosen by {source})",
                client.socket().display()
            ),
            None,
        ),
        Ok(m) => check(
            "socket",
            Level::Fail,
            format!(
                "{} has mode {:o}",
                client.socket().display(),
                m.permissions().mode() & 0o777
            ),
            Some("keyward daemon restart".into()),
        ),
        Err(e) => check(
            "socket",
            Level::Fail,
            format!("{}: {e}", client.socket().display()),
            Some("keyward daemon start".into()),
        ),
    }
}

/// The program a credential_process line runs.
fn program_of(line: &str) -> Option<PathBuf> {
    shell_words::split(line)
        .ok()?
        .into_iter()
        .next()
        .map(PathBuf::from)
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn aws_config() -> Check {
    let Ok(path) = awsfiles::config_path() else {
        return check("aws-config", Level::Warn, "no HOME", None);
    };
    let text = awsfiles::read_or_empty(&path).unwrap_or_default();
    let mut ours = Vec::new();
    let mut broken = Vec::new();
    for (section, _, v) in awsfiles::entries(&text, &["credential_process"]) {
        if v.contains("keyward") {
            match program_of(v) {
                Some(p) if is_executable(&p) => ours.push(section),
                Some(p) => broken.push(format!("{section} ({} is missing)", p.display())),
                None => broken.push(format!("{section} (unreadable line)")),
            }
        }
    }
    if !broken.is_empty() {
        return check("aws-config", Level::Fail, format!("credential_process lines point at no installed binary: {}", broken.join(", ")), Some("reinstall (./install/install.sh), then `keyward profile add NAME ...` again to rewrite each line".into()));
    }
    if ours.is_empty() {
        return check(
            "aws-config",
            Level::Warn,
            format!("{} has no keyward profile yet", path.display()),
            Some("keyward setup (or keyward profile add)".into()),
        );
    }
    check(
        "aws-config",
        Level::Ok,
        format!(
            "{} profile(s) run an installed keyward: {}",
            ours.len(),
            ours.join(", ")
        ),
        None,
    )
}

fn plaintext_keys() -> Check {
    let Ok(path) = awsfiles::credentials_path() else {
        return check("plaintext-keys", Level::Ok, "no credentials file", None);
    };
    let text = awsfiles::read_or_empty(&path).unwrap_or_default();
    let mut found: Vec<String> = awsfiles::entries(&text, &["aws_secret_access_key"])
        .into_iter()
        .map(|(section, _, _)| section)
        .collect();
    found.dedup();
    if found.is_empty() {
        return check(
            "plaintext-keys",
            Level::Ok,
            format!("no access keys in {}", path.display()),
            None,
        );
    }
    let fix = found
        .iter()
        .map(|s| format!("keyward key import --profile {s} --from-credentials-profile {s} --scrub"))
        .collect::<Vec<_>>()
        .join("; ");
    check(
        "plaintext-keys",
        Level::Fail,
        format!(
            "plaintext access keys in {}: [{}]",
            path.display(),
            found.join("], [")
        ),
        Some(fix),
    )
}

/// Captures the `Date` header of an STS answer.
#[derive(Debug, Clone, Default)]
struct DateHeader(Arc<Mutex<Option<String>>>);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "keyward-date-header"
    }

    fn read_after_transmit(
        &self,
        ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(d) = ctx.response().headers().get("date") {
            *self.0.lock().expect("date lock") = Some(d.to_owned());
        }
        Ok(())
    }
}

async fn clock_skew() -> Check {
    // Any answer carries a Date, even a refusal: sign with a key that does not exist.
    let creds = Credentials::new(
        "AKIA-KEYWARD-DOCTOR",
        "keyward-doctor-clock-check",
        None,
        None,
        "keyward-doctor",
    );
    let aws = crate::clients::Aws::with_credentials(creds, None).await;
    let date = DateHeader::default();
    let _ = aws
        .sts
        .get_caller_identity()
        .customize()
        .interceptor(date.clone())
        .send()
        .await;
    let Some(text) = date.0.lock().expect("date lock").clone() else {
        return check(
            "clock",
            Level::Warn,
            "could not reach STS to compare clocks",
            Some("check the network, then run `keyward doctor` again".into()),
        );
    };
    let Ok(theirs) =
        aws_smithy_types::DateTime::from_str(&text, aws_smithy_types::date_time::Format::HttpDate)
    else {
        return check(
            "clock",
            Level::Warn,
            format!("unreadable Date header `{text}`"),
            None,
        );
    };
    let theirs = SystemTime::try_from(theirs).unwrap_or(SystemTime::UNIX_EPOCH);
    // The computer's own clock is what this check judges.
    let now = keyward_daemon::clock::Clock::system().now();
    let skew = now
        .duration_since(theirs)
        .or_else(|_| theirs.duration_since(now))
        .unwrap_or_default();
    if skew < MAX_SKEW {
        check(
            "clock",
            Level::Ok,
            format!("within {}s of STS", skew.as_secs()),
            None,
        )
    } else {
        check(
            "clock",
            Level::Fail,
            format!(
                "{}s away from STS; AWS refuses requests over 5 minutes off",
                skew.as_secs()
            ),
            Some("turn on time sync: `sudo timedatectl set-ntp true`".into()),
        )
    }
}

fn service() -> Check {
    if cfg!(target_os = "macos") {
        let plist = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join("Library/LaunchAgents/dev.keyward.keywardd.plist"));
        return match plist {
            Some(p) if p.is_file() => check(
                "service",
                Level::Ok,
                format!("launchd agent {}", p.display()),
                None,
            ),
            _ => check(
                "service",
                Level::Warn,
                "no launchd agent; keywardd starts on demand",
                Some("./install/install.sh".into()),
            ),
        };
    }
    let unit = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|c| c.join("systemd/user/keywardd.service"));
    let installed = unit.as_ref().is_some_and(|u| u.is_file());
    // The same probe as install.sh: is there a systemd user manager to ask at all?
    let manager = std::process::Command::new("systemctl")
        .args(["--user", "show-environment"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let systemd = manager
        .then(|| {
            std::process::Command::new("systemctl")
                .args(["--user", "is-enabled", "keywardd.service"])
                .output()
                .ok()
        })
        .flatten();
    match (installed, systemd) {
        (true, Some(o)) if o.status.success() => check(
            "service",
            Level::Ok,
            "systemd user unit keywardd.service is enabled",
            None,
        ),
        (true, Some(_)) => check(
            "service",
            Level::Fail,
            "keywardd.service is installed but not enabled",
            Some("systemctl --user enable --now keywardd.service".into()),
        ),
        (true, None) => check(
            "service",
            Level::Ok,
            format!(
                "{} is installed; no systemd user manager here, so keywardd starts on demand",
                unit.expect("installed").display()
            ),
            None,
        ),
        (false, _) => check(
            "service",
            Level::Warn,
            "keywardd is not installed as a service; it starts on demand",
            Some("./install/install.sh".into()),
        ),
    }
}

/// `keyward doctor --json`.
#[derive(Serialize)]
struct DoctorOutput<'a> {
    ok: bool,
    version: &'static str,
    checks: &'a [Check],
}

pub fn doctor(a: &DoctorArgs) -> Result<()> {
    let client = Client::default_socket().with_timeout(Duration::from_secs(10));
    let mut checks = vec![keys::os_keychain(), keys::key_store()];
    checks.extend(keys::keys());
    checks.extend([
        daemon(&client),
        socket(&client),
        aws_config(),
        plaintext_keys(),
    ]);
    if !a.offline {
        checks.extend(keys::revoked(&client));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        checks.push(rt.block_on(clock_skew()));
    }
    checks.push(service());
    let ok = checks.iter().all(|c| c.status != Level::Fail);
    if a.json {
        let out = DoctorOutput {
            ok,
            version: env!("CARGO_PKG_VERSION"),
            checks: &checks,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for c in &checks {
            let line = format!("{:<15} {}", c.name, c.detail);
            match c.status {
                Level::Ok => ui::done(&line),
                Level::Warn => ui::note(&line),
                Level::Fail => eprintln!("✗ {line}"),
            }
            if let (Some(fix), true) = (&c.fix, c.status != Level::Ok) {
                eprintln!("                  fix: {fix}");
            }
        }
        println!(
            "{}",
            if ok {
                "keyward looks healthy"
            } else {
                "keyward needs attention: see the fixes above"
            }
        );
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
