//! keyward-phone --url URL --device NAME: prints the next MFA code of a device of a
//! local keyward emulator. The tests' and the demo's `mfa_process`: a phone you can run.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut url = None;
    let mut device = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => url = args.next(),
            "--device" => device = args.next(),
            "-h" | "--help" => {
                println!("usage: keyward-phone --url http://127.0.0.1:PORT --device NAME\nPrints the next MFA code of NAME from a local keyward emulator.");
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
    match keyward_sandbox::phone::next_code(&url, &device) {
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
