//! The credential_process helper: `keyward credential-process --profile P`.
//!
//! stdout carries exactly the `Version: 1` JSON; every error goes to stderr and names
//! the next command to run.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::client::{Client, Response};
use crate::{spawn, tty, CredentialsRequest, ErrorBody, ErrorKind, MfaSubmit};

const MFA_PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_ROUNDS: usize = 6;

/// Entry point shared by `keyward-credential-process` and `keyward credential-process`.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut profile = None;
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--profile") => profile = args.next().and_then(|p| p.into_string().ok()),
            Some(s) if s.starts_with("--profile=") => profile = Some(s[10..].to_owned()),
            Some("-h" | "--help") => {
                println!("usage: keyward credential-process --profile NAME\n\nPrints AWS credentials for NAME as credential_process JSON.");
                return ExitCode::SUCCESS;
            }
            Some("-V" | "--version") => {
                println!("keyward-credential-process {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("keyward: unexpected argument {arg:?}; usage: keyward credential-process --profile NAME");
                return ExitCode::from(2);
            }
        }
    }
    let Some(profile) = profile else {
        eprintln!("keyward: --profile NAME is required");
        return ExitCode::from(2);
    };
    let client = Client::default_socket();
    match fetch(&client, &profile, Prompt::IfTerminal) {
        Ok(body) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&body).and_then(|()| out.flush()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keyward: {}", e.message);
            ExitCode::from(1)
        }
    }
}

/// How a caller may obtain an MFA code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Use the mfa_process or the controlling terminal, whichever exists.
    IfTerminal,
    /// Never ask: only serve what the daemon already holds.
    Never,
}

/// Gets credential_process JSON for `profile`, starting the daemon and asking for an MFA
/// code when needed.
pub fn fetch(
    client: &Client,
    profile: &str,
    prompt: Prompt,
) -> Result<Zeroizing<Vec<u8>>, ErrorBody> {
    let mut terminal = match prompt {
        Prompt::IfTerminal => tty::open_tty(),
        Prompt::Never => None,
    };
    for _ in 0..MAX_ROUNDS {
        let req = CredentialsRequest {
            profile: profile.to_owned(),
            can_prompt: terminal.is_some(),
        };
        let resp = post(client, |c| c.credentials(&req))?;
        if resp.is_success() {
            return Ok(resp.body);
        }
        let err = resp.error();
        if err.kind != ErrorKind::MfaRequired || prompt == Prompt::Never {
            return Err(err);
        }
        let code = obtain_code(&err, terminal.as_mut(), profile)?;
        let submit = MfaSubmit {
            profile: profile.to_owned(),
            code: code.to_string(),
        };
        let resp = post(client, |c| c.submit_mfa(&submit))?;
        if resp.is_success() {
            return Ok(resp.body);
        }
        let err = resp.error();
        match err.kind {
            ErrorKind::MfaReused => {
                let wait = err.retry_after_secs.unwrap_or(5).min(31);
                if let Some(t) = terminal.as_mut() {
                    let _ = writeln!(
                        t,
                        "keyward: that code was already used; wait {wait}s for the next one"
                    );
                }
                if err.mfa_process.is_some() || terminal.is_none() {
                    std::thread::sleep(Duration::from_secs(wait));
                }
            }
            ErrorKind::MfaInvalid if terminal.is_some() && err.mfa_process.is_none() => {
                if let Some(t) = terminal.as_mut() {
                    let _ = writeln!(t, "keyward: {}", err.message);
                }
            }
            _ => return Err(err),
        }
    }
    Err(ErrorBody::new(
        ErrorKind::MfaInvalid,
        format!("gave up after {MAX_ROUNDS} MFA attempts; run `keyward login --profile {profile}`"),
    ))
}

/// POSTs to the daemon; starts it when nobody listens, replaces it when it speaks
/// another protocol. The warm path is one connection and one request.
/// One call, starting the daemon if none runs and replacing one of another protocol.
fn post(
    client: &Client,
    send: impl Fn(&Client) -> std::io::Result<Response>,
) -> Result<Response, ErrorBody> {
    let start_failed = |m: String| ErrorBody::new(ErrorKind::Internal, m);
    let resp = match send(client) {
        Err(e) if spawn::is_daemon_missing(&e) => {
            spawn::ensure_running(client).map_err(start_failed)?;
            send(client)
        }
        Ok(r) if !r.is_success() && r.error().kind == ErrorKind::ProtocolMismatch => {
            spawn::replace(client, "another protocol").map_err(start_failed)?;
            send(client)
        }
        other => other,
    };
    resp.map_err(|e| {
        ErrorBody::new(
            ErrorKind::Internal,
            format!("keywardd did not answer ({e}); run `keyward status` to check it"),
        )
    })
}

fn obtain_code(
    err: &ErrorBody,
    terminal: Option<&mut std::fs::File>,
    profile: &str,
) -> Result<Zeroizing<String>, ErrorBody> {
    if let Some(argv) = &err.mfa_process {
        return tty::run_mfa_process(argv, MFA_PROCESS_TIMEOUT).map_err(|e| {
            ErrorBody::new(
                ErrorKind::MfaRequired,
                format!("{e}; fix mfa_process with `keyward profile add`, or run `keyward login --profile {profile}`"),
            )
        });
    }
    let Some(t) = terminal else {
        return Err(ErrorBody::new(
            ErrorKind::MfaRequired,
            format!("no MFA session for profile `{profile}` and no terminal to ask on; run `keyward login --profile {profile}`"),
        ));
    };
    let device = err.mfa_serial.as_deref().unwrap_or("your MFA device");
    let code = tty::prompt_code(
        t,
        &format!("keyward: MFA code for `{profile}` ({device}): "),
    )
    .map_err(|e| {
        ErrorBody::new(
            ErrorKind::MfaRequired,
            format!("cannot read from the terminal: {e}"),
        )
    })?;
    if !tty::is_valid_code(&code) {
        return Err(ErrorBody::new(
            ErrorKind::MfaInvalid,
            "an MFA code is 6 digits; run the command again",
        ));
    }
    Ok(code)
}
