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
/// A person typing a code into a window.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_ROUNDS: usize = 6;

/// Entry point shared by `keyward-credential-process` and `keyward credential-process`.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut profile = None;
    let mut args = args.into_iter();
    // `keyward credential-process` or `keyward-credential-process`: name the one run.
    let me = match args.next().as_deref().map(std::path::Path::new) {
        Some(p) if p == std::path::Path::new("credential-process") => {
            "keyward credential-process".to_owned()
        }
        Some(p) => p.file_name().map_or_else(
            || "keyward-credential-process".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        ),
        None => "keyward-credential-process".to_owned(),
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--profile") => profile = args.next().and_then(|p| p.into_string().ok()),
            Some(s) if s.starts_with("--profile=") => profile = Some(s[10..].to_owned()),
            Some("-h" | "--help") => {
                println!("usage: {me} --profile NAME\n\nPrints AWS credentials for the keyward profile NAME as credential_process JSON,\nfor a `credential_process = {me} --profile NAME` line in ~/.aws/config.\nStarts keywardd when it is not running; asks for an MFA code on the terminal\n(or runs the profile's mfa_process) when a new session is needed.");
                return ExitCode::SUCCESS;
            }
            Some("-V" | "--version") => {
                println!("{me} {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("{me}: unexpected argument {arg:?}; usage: {me} --profile NAME");
                return ExitCode::from(2);
            }
        }
    }
    let Some(profile) = profile else {
        eprintln!("{me}: --profile NAME is required");
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
    /// Use the profile's mfa_process, else the controlling terminal, if any.
    IfTerminal,
    /// Never ask: only serve what the daemon already holds.
    Never,
}

/// Where this caller's MFA codes come from: the user's own config or a human.
enum CodeSource {
    /// The profile's `mfa_process`, from the user's config file.
    Process(Vec<String>),
    Terminal(std::fs::File),
    /// A window (zenity, kdialog, osascript, or the configured `prompt`).
    Window(Vec<String>),
}

impl CodeSource {
    fn find(profile: &str, prompt: Prompt) -> Result<Option<Self>, ErrorBody> {
        if prompt == Prompt::Never {
            return Ok(None);
        }
        match crate::user_config::mfa_process(profile) {
            Ok(Some(argv)) => Ok(Some(CodeSource::Process(argv))),
            Ok(None) => match tty::open_tty() {
                Some(t) => Ok(Some(CodeSource::Terminal(t))),
                None => {
                    let configured = crate::user_config::prompt()
                        .map_err(|e| ErrorBody::new(ErrorKind::Config, e))?;
                    Ok(crate::prompt::program(configured, profile).map(CodeSource::Window))
                }
            },
            Err(e) => Err(ErrorBody::new(ErrorKind::Config, e)),
        }
    }

    fn say(&mut self, line: &str) {
        if let CodeSource::Terminal(t) = self {
            let _ = writeln!(t, "keyward: {line}");
        }
    }
}

/// Gets credential_process JSON for `profile`, starting the daemon and asking for an MFA
/// code when needed. A failure that may come from the daemon's environment (STS
/// unreachable, keychain gone) says where the daemon's differs from this process's.
pub fn fetch(
    client: &Client,
    profile: &str,
    prompt: Prompt,
) -> Result<Zeroizing<Vec<u8>>, ErrorBody> {
    fetch_once(client, profile, prompt).map_err(|mut e| {
        if matches!(e.kind, ErrorKind::Upstream | ErrorKind::Keychain) {
            if let Some(hint) = client
                .status()
                .ok()
                .as_ref()
                .and_then(spawn::environment_hint)
            {
                e.message = format!("{}. {hint}", e.message);
            }
        }
        e
    })
}

fn fetch_once(
    client: &Client,
    profile: &str,
    prompt: Prompt,
) -> Result<Zeroizing<Vec<u8>>, ErrorBody> {
    let mut source = CodeSource::find(profile, prompt)?;
    let mut last_code: Option<Zeroizing<String>> = None;
    for _ in 0..MAX_ROUNDS {
        let req = CredentialsRequest {
            profile: profile.to_owned(),
            can_prompt: source.is_some(),
        };
        let resp = post(client, |c| c.credentials(&req))?;
        if resp.is_success() {
            return Ok(resp.body);
        }
        let err = resp.error();
        let Some(src) = source
            .as_mut()
            .filter(|_| err.kind == ErrorKind::MfaRequired)
        else {
            return Err(err);
        };
        let code = obtain_code(&err, src, profile)?;
        if let (CodeSource::Process(_), Some(last)) = (&*src, &last_code) {
            if last.as_str() == code.as_str() {
                return Err(ErrorBody::new(
                    ErrorKind::MfaReused,
                    format!("the mfa_process printed the same code again after it was used; check that it prints the current code of {}", device(&err)),
                ));
            }
        }
        let submit = MfaSubmit {
            profile: profile.to_owned(),
            code: code.to_string(),
        };
        let resp = post(client, |c| c.submit_mfa(&submit))?;
        if resp.is_success() {
            return Ok(resp.body);
        }
        let refused = resp.error();
        after_refusal(src, refused, profile)?;
        last_code = Some(code);
    }
    Err(ErrorBody::new(
        ErrorKind::MfaInvalid,
        format!("gave up after {MAX_ROUNDS} MFA attempts; run `keyward login --profile {profile}`"),
    ))
}

fn device(err: &ErrorBody) -> &str {
    err.mfa_serial.as_deref().unwrap_or("your MFA device")
}

/// What to do once the daemon refused a code: wait for the next one, ask again, or
/// stop. A refused code from the mfa_process stops at once: the next run of the same
/// command would print a refused code too.
fn after_refusal(src: &mut CodeSource, err: ErrorBody, profile: &str) -> Result<(), ErrorBody> {
    match (err.kind, &*src) {
        (ErrorKind::MfaReused, _) => {
            let wait = err.retry_after_secs.unwrap_or(5).min(31);
            src.say(&format!("that code was already used; wait {wait}s for the next one"));
            if !matches!(src, CodeSource::Terminal(_)) {
                std::thread::sleep(Duration::from_secs(wait));
            }
            Ok(())
        }
        (ErrorKind::MfaInvalid, CodeSource::Process(argv)) => Err(ErrorBody::new(
            ErrorKind::MfaInvalid,
            format!(
                "AWS refused the code that the mfa_process `{}` printed ({}); fix the command in keyward's config, or run `keyward login --profile {profile}` and type a code",
                argv.first().map_or("", String::as_str),
                err.message
            ),
        )),
        (ErrorKind::MfaInvalid, CodeSource::Terminal(_) | CodeSource::Window(_)) => {
            src.say(&err.message);
            Ok(())
        }
        _ => Err(err),
    }
}

/// POSTs to the daemon; starts it when nobody listens, replaces it when it speaks
/// another protocol. The warm path is one connection and one request.
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
        let message = match e.kind() {
            // The socket or its server is not provably ours: the checks say why.
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::TimedOut => e.to_string(),
            _ => format!("{}; run `keyward daemon restart`", spawn::explain_gone(&e)),
        };
        ErrorBody::new(ErrorKind::Internal, message)
    })
}

fn obtain_code(
    err: &ErrorBody,
    src: &mut CodeSource,
    profile: &str,
) -> Result<Zeroizing<String>, ErrorBody> {
    let t = match src {
        CodeSource::Process(argv) => {
            return tty::run_mfa_process(argv, MFA_PROCESS_TIMEOUT).map_err(|e| {
                ErrorBody::new(
                    ErrorKind::MfaRequired,
                    format!("{e}; fix mfa_process in keyward's config, or run `keyward login --profile {profile}` and type a code"),
                )
            });
        }
        CodeSource::Window(argv) => {
            return tty::run_code_program(argv, PROMPT_TIMEOUT, "prompt").map_err(|e| {
                ErrorBody::new(
                    ErrorKind::MfaRequired,
                    format!("{e}; run `keyward login --profile {profile}` in a terminal"),
                )
            });
        }
        CodeSource::Terminal(t) => t,
    };
    let code = tty::prompt_code(
        t,
        &format!("keyward: MFA code for `{profile}` ({}): ", device(err)),
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
