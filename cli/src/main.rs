//! keyward: the companion CLI of keywardd.
#![forbid(unsafe_code)]

mod aws;
mod awsfiles;
mod cmd_key;
mod cmd_profile;
mod cmd_revoke;
mod cmd_session;
mod cmd_setup;
mod enroll_code;
mod iam;
mod teardown;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// One IAM user per computer; its key lives in the OS keychain; every AWS tool gets
/// MFA-backed session credentials from keywardd.
#[derive(Parser)]
#[command(name = "keyward", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the account-level pieces once (run with admin credentials)
    Init(cmd_setup::InitArgs),
    /// Register this computer: IAM user, MFA, groups, bucket and key policies, key in the keychain
    Setup(cmd_setup::SetupArgs),
    /// Print an enrollment code that lets a new computer of yours register itself
    Enroll(cmd_setup::EnrollArgs),
    /// List your machines: keys, MFA, groups, policies, revoked marks
    Machines(cmd_revoke::MachinesArgs),
    /// Cut off a lost computer: its sessions, keys, groups, bucket and key policies, MFA
    Revoke(cmd_revoke::RevokeArgs),
    /// Decommission this computer: remove it from AWS and wipe its local traces
    Deregister(cmd_revoke::DeregisterArgs),
    /// Store or remove this computer's access key in the OS keychain
    #[command(subcommand)]
    Key(cmd_key::KeyCommand),
    /// Add, list or remove keyward profiles (and their credential_process lines)
    #[command(subcommand)]
    Profile(cmd_profile::ProfileCommand),
    /// Read an MFA code and start a session
    Login(cmd_session::LoginArgs),
    /// Show the daemon and its sessions (never a secret)
    Status(cmd_session::StatusArgs),
    /// Forget every session held by the daemon
    Lock,
    /// Control keywardd
    #[command(subcommand)]
    Daemon(cmd_session::DaemonCommand),
    /// Print credentials as credential_process JSON (what ~/.aws/config runs)
    CredentialProcess {
        #[arg(long)]
        profile: String,
    },
}

fn main() -> ExitCode {
    // The hot path: no clap, no logging setup, straight to the proto helper.
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "credential-process") {
        return keyward_proto::helper::main(args.into_iter().skip(1));
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(keyward_daemon::logging::filter("warn"))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Init(a) => cmd_setup::init(&a),
        Command::Setup(a) => cmd_setup::setup(&a),
        Command::Enroll(a) => cmd_setup::enroll(&a),
        Command::Machines(a) => cmd_revoke::machines(&a),
        Command::Revoke(a) => cmd_revoke::revoke(&a),
        Command::Deregister(a) => cmd_revoke::deregister(&a),
        Command::Key(c) => cmd_key::run(c),
        Command::Profile(c) => cmd_profile::run(c),
        Command::Login(a) => cmd_session::login(&a),
        Command::Status(a) => cmd_session::status(&a),
        Command::Lock => cmd_session::lock(),
        Command::Daemon(c) => cmd_session::daemon(&c),
        Command::CredentialProcess { .. } => unreachable!("dispatched before clap"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("keyward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
