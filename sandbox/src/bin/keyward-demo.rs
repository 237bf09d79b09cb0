//! keyward-demo: the whole keyward story on a throw-away emulated AWS.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    keyward_sandbox::demo::main()
}
