//! keyward: the companion CLI of keywardd. Commands are thin: they parse, build a plan
//! of typed steps (see `plan`), show it and run it.
#![forbid(unsafe_code)]

mod account;
mod actor;
mod audit;
mod clients;
mod commands;
mod enroll_code;
mod iam;
mod local;
mod names;
mod plan;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

/// Freed heap blocks are wiped: copies of keys and tokens in other crates' buffers
/// do not outlive their use.
#[global_allocator]
static ALLOCATOR: keyward_daemon::harden::ZeroingAllocator =
    keyward_daemon::harden::ZeroingAllocator;

use clap::{CommandFactory, Parser, Subcommand};

use commands::{
    demo, deregister, docs, doctor, enroll, grant, init, key, machines, profile, revoke, session,
    setup, unlock,
};

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
    /// Create or upgrade keyward's pieces in the account (with its admin credentials)
    Init(init::InitArgs),
    /// Register this computer: IAM user, MFA, groups, bucket and key policies, key in the keychain
    Setup(setup::SetupArgs),
    /// On an admin computer: a code that registers one named new computer, then grant it
    Enroll(enroll::EnrollArgs),
    /// On an admin computer: add a registered computer to groups, bucket and key policies
    Grant(grant::GrantArgs),
    /// List the computers: keys, MFA, groups, admins, revocations and what is pending
    Machines(machines::MachinesArgs),
    /// Cut off a lost computer: its sessions, role sessions, keys, MFA, groups, policies
    Revoke(revoke::RevokeArgs),
    /// Decommission this computer: revoke it and wipe its local traces
    Deregister(deregister::DeregisterArgs),
    /// Store, remove or move this computer's access key (OS keychain or encrypted file)
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Add, list or remove keyward profiles (and their credential_process lines)
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Read an MFA code and start a session
    Login(session::LoginArgs),
    /// Show the daemon and its sessions (never a secret)
    Status(session::StatusArgs),
    /// Forget every session held by the daemon, and lock unlocked key files
    Lock(session::LockArgs),
    /// Open this computer's encrypted key file for the daemon (headless machines)
    Unlock(unlock::UnlockArgs),
    /// Control keywardd
    #[command(subcommand)]
    Daemon(session::DaemonCommand),
    /// Check the keychain, daemon, socket, AWS config, plaintext keys, clock and service
    Doctor(doctor::DoctorArgs),
    /// Check the account against the article's rules: root, keys, admins, public data
    Audit(commands::audit::AuditArgs),
    /// Just-in-time group rights, with an expiry AWS enforces (grant, revoke, list)
    Access(commands::access::AccessArgs),
    /// Give this computer a new access key and delete the old one
    Rotate(commands::rotate::RotateArgs),
    /// Run a command with a profile's credentials (a loopback endpoint, or --env)
    Exec(commands::exec::ExecArgs),
    /// Applications: one group, one role and one KMS key each, and protected buckets
    #[command(subcommand)]
    App(commands::app::AppCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell to write completions for
        shell: clap_complete::Shell,
    },
    /// Write man pages (keyward.1, one per subcommand, keywardd.1) into a directory
    Man {
        /// The directory (default: print keyward.1 to stdout)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Watch the whole story on a throw-away emulated AWS (runs keyward-demo)
    Demo(demo::DemoArgs),
    /// Print credentials as credential_process JSON (what ~/.aws/config runs)
    CredentialProcess {
        /// The keyward profile
        #[arg(long)]
        profile: String,
    },
}

fn main() -> ExitCode {
    // The hot path: no clap, no logging setup, straight to the proto helper.
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "credential-process") {
        return keyward_proto::credential_process::main(args.into_iter().skip(1));
    }
    quiet_broken_pipe();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(keyward_daemon::logging::filter("warn"))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Init(a) => init::init(&a),
        Command::Setup(a) => setup::setup(&a),
        Command::Enroll(a) => enroll::enroll(&a),
        Command::Grant(a) => grant::grant(&a),
        Command::Machines(a) => machines::machines(&a),
        Command::Revoke(a) => revoke::revoke(&a),
        Command::Deregister(a) => deregister::deregister(&a),
        Command::Doctor(a) => doctor::doctor(&a),
        Command::Audit(a) => commands::audit::audit(&a),
        Command::App(c) => commands::app::run(c),
        Command::Exec(a) => commands::exec::exec(&a),
        Command::Rotate(a) => commands::rotate::rotate(&a),
        Command::Access(a) => commands::access::access(&a),
        Command::Demo(a) => demo::demo(&a),
        Command::Completions { shell } => {
            docs::completions(&mut Cli::command(), shell);
            Ok(())
        }
        Command::Man { out } => docs::man(Cli::command(), out.as_deref()),
        Command::Key(c) => key::run(c),
        Command::Profile(c) => profile::run(c),
        Command::Login(a) => session::login(&a),
        Command::Status(a) => session::status(&a),
        Command::Lock(a) => session::lock(&a),
        Command::Unlock(a) => unlock::unlock(&a),
        Command::Daemon(c) => session::daemon(&c),
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

/// A single-threaded runtime for the commands that talk to AWS.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `keyward … | head` closes stdout early; that is success, not a crash.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and every option says what it does in `--help`, the man pages and
    /// the completions.
    #[test]
    fn every_command_and_option_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let here = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(here.clone());
                }
                walk(sub, &here, missing);
            }
        }
        let cli = Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cli, "keyward", &mut missing);
        assert!(missing.is_empty(), "no help line: {missing:#?}");
    }
}
