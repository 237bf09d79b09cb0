//! keyward-demo: the whole keyward story on a throw-away emulated AWS.

fn main() -> std::process::ExitCode {
    keyward_sandbox::demo::main()
}
