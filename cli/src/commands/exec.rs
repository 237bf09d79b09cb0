//! `keyward exec PROFILE -- CMD ARGS`: runs CMD with the profile's credentials. By
//! default through a loopback container-credentials endpoint (see
//! [`crate::local::endpoint`]) that lives as long as CMD, so long-running tools
//! get refreshed sessions; `--env` exports one static session instead.

use std::ffi::OsString;
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use keyward_daemon::config::Config;
use keyward_proto::client::Client;
use keyward_proto::credential_process::{fetch, Prompt};
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::local::endpoint::Endpoint;
use crate::local::profiles;

/// Set in CMD's environment: the profile it runs under (nesting is refused).
pub const NESTED_VAR: &str = "KEYWARD_EXEC";

/// What a tool might take credentials from instead of ours.
const SHADOWING: [&str; 12] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
];

#[derive(Args)]
pub struct ExecArgs {
    /// The keyward profile whose credentials CMD gets
    profile: String,
    /// Export one static session as AWS_ACCESS_KEY_ID etc. instead of the endpoint
    #[arg(long, conflicts_with = "docker")]
    env: bool,
    /// Print the `docker run` flags a container needs to use the endpoint; without
    /// CMD, serve until interrupted
    #[arg(long)]
    docker: bool,
    /// Allow running inside another `keyward exec`
    #[arg(long)]
    allow_nested: bool,
    /// The command and its arguments (after `--`)
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// The helper's `Version: 1` JSON; wiped when dropped.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Session {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<String>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

fn session(profile: &str, prompt: Prompt) -> Result<Session, String> {
    let body = fetch(&Client::default_socket(), profile, prompt).map_err(|e| e.message)?;
    serde_json::from_slice(&body)
        .map_err(|e| format!("the daemon's answer is not credentials: {e}"))
}

/// The container-credentials JSON the SDKs read.
fn container_body(s: &Session) -> Zeroizing<Vec<u8>> {
    let body = serde_json::json!({
        "AccessKeyId": s.access_key_id,
        "SecretAccessKey": s.secret_access_key,
        "Token": s.session_token,
        "Expiration": s.expiration,
    });
    let mut text = body.to_string();
    let out = Zeroizing::new(text.as_bytes().to_vec());
    text.zeroize();
    out
}

/// What the endpoint serves: the daemon's answer, asked each time (it caches, and
/// `keyward lock` reaches a running command at once).
fn daemon_source(profile: String) -> impl Fn() -> Result<Zeroizing<Vec<u8>>, String> + Send + Sync {
    move || session(&profile, Prompt::Never).map(|s| container_body(&s))
}

pub fn exec(a: &ExecArgs) -> Result<()> {
    if let Some(outer) = std::env::var_os(NESTED_VAR).filter(|_| !a.allow_nested) {
        bail!(
            "already inside `keyward exec` for `{}`; exit that shell first, or pass --allow-nested",
            outer.to_string_lossy()
        );
    }
    let cfg = Config::load(&profiles::config_path()?)?;
    let Some(entry) = cfg.profiles.get(&a.profile) else {
        bail!(
            "no keyward profile `{}`; see `keyward profile list`",
            a.profile
        );
    };
    if a.command.is_empty() && !a.docker {
        bail!(
            "give the command after `--`, e.g. `keyward exec {} -- aws s3 ls`",
            a.profile
        );
    }
    // Ask for an MFA code now, on the terminal, before CMD starts.
    let first = session(&a.profile, Prompt::IfTerminal).map_err(anyhow::Error::msg)?;
    let mut cmd = a.command.split_first().map(|(prog, rest)| {
        let mut c = Command::new(prog);
        c.args(rest);
        for v in SHADOWING {
            c.env_remove(v);
        }
        c.env(NESTED_VAR, &a.profile);
        // A `[default]` profile or a credentials file would come before the endpoint in
        // every SDK's chain: CMD sees neither, so it runs as this profile and no other.
        c.env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        if let Some(r) = entry.region.as_deref() {
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                c.env("AWS_REGION", r);
            }
        }
        c
    });
    if a.env {
        let c = cmd.as_mut().expect("checked: a command");
        c.env("AWS_ACCESS_KEY_ID", &first.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &first.secret_access_key);
        if let Some(t) = &first.session_token {
            c.env("AWS_SESSION_TOKEN", t);
        }
        if let Some(e) = &first.expiration {
            c.env("AWS_CREDENTIAL_EXPIRATION", e);
        }
        drop(first);
        return run(c);
    }
    drop(first);
    let profile = a.profile.clone();
    // A container's processes run as its root: uid 0 may ask too, with the token.
    let endpoint = Endpoint::start(Arc::new(daemon_source(profile)), a.docker)
        .context("cannot open the loopback endpoint")?;
    if a.docker {
        println!(
            "--network host -e AWS_CONTAINER_CREDENTIALS_FULL_URI={} -e AWS_CONTAINER_AUTHORIZATION_TOKEN={}",
            endpoint.url(),
            endpoint.token()
        );
    }
    let Some(c) = cmd.as_mut() else {
        eprintln!(
            "keyward: serving {} on {} until interrupted (Ctrl-C)",
            a.profile,
            endpoint.url()
        );
        loop {
            std::thread::park();
        }
    };
    // Ctrl-C reaches CMD (same process group); we outlive it to keep serving it.
    crate::runtime()?.block_on(async {
        let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    });
    c.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url())
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", endpoint.token());
    run(c)
}

/// Runs CMD and leaves with its exit code; the endpoint ends with this process.
fn run(c: &mut Command) -> Result<()> {
    let prog = c.get_program().to_string_lossy().into_owned();
    let status = c.status().with_context(|| format!("cannot run `{prog}`"))?;
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        128 + status.signal().unwrap_or(1)
    });
    std::process::exit(code)
}
