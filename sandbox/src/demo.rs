//! The demo story (rewritten on the new permission model below).
use std::process::ExitCode;

pub fn main() -> ExitCode {
    eprintln!("keyward-demo: being rebuilt");
    ExitCode::FAILURE
}
