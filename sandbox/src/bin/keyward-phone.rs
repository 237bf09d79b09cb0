//! keyward-phone --url URL --device NAME: prints the next MFA code of a device of a
//! local keyward emulator. The tests' and the demo's `mfa_process`: a phone you can run.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut url = None;
    let mut device = None;
    let mut shows = keyward_sandbox::phone::Shows::Next;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => url = args.next(),
            "--device" => device = args.next(),
            // Like an authenticator app: the current code, repeated within its step.
            "--current" => shows = keyward_sandbox::phone::Shows::Current,
            // An authenticator on this computer, whose clock may be wrong.
            "--host-clock" => shows = keyward_sandbox::phone::Shows::CurrentByHostClock,
            "-h" | "--help" => {
                println!("usage: keyward-phone --url http://127.0.0.1:PORT --device NAME [--current | --host-clock]\nPrints the next MFA code of NAME from a local keyward emulator (never one it printed before); --current prints the current code as an authenticator does, --host-clock the current code by this computer's clock.");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("keyward-phone: unknown argument `{a}`; see --help");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(url), Some(device)) = (url, device) else {
        eprintln!("usage: keyward-phone --url http://127.0.0.1:PORT --device NAME");
        return ExitCode::from(2);
    };
    match keyward_sandbox::phone::code(&url, &device, shows) {
        Ok(code) => {
            println!("{code}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keyward-phone: {e:#}");
            ExitCode::FAILURE
        }
    }
}
