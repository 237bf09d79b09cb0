//! The credential_process helper as its own tiny binary: it links only keyward-proto.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    keyward_proto::credential_process::main(std::env::args_os())
}
