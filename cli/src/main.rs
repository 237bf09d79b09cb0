//! keyward: the companion CLI of keywardd.
#![forbid(unsafe_code)]

mod aws;
mod awsfiles;
mod cmd_demo;
mod cmd_doctor;
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

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

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
    Lock(cmd_session::LockArgs),
    /// Control keywardd
    #[command(subcommand)]
    Daemon(cmd_session::DaemonCommand),
    /// Check the keychain, daemon, socket, AWS config, plaintext keys, clock and service
    Doctor(cmd_doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Write man pages (keyward.1, one per subcommand, keywardd.1) into a directory
    Man {
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Watch the whole story on a throw-away emulated AWS: setup, MFA login, the AWS CLI, enroll, revoke
    Demo(cmd_demo::DemoArgs),
    /// The next MFA code from a local keyward emulator (the demo's phone)
    #[command(hide = true)]
    EmulatorCode {
        #[arg(long)]
        url: String,
        #[arg(long)]
        device: String,
    },
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
    quiet_broken_pipe();
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
        Command::Doctor(a) => cmd_doctor::doctor(&a),
        Command::EmulatorCode { url, device } => cmd_demo::emulator_code(&url, &device),
        Command::Demo(a) => cmd_demo::demo(&a),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "keyward",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man { out } => man(out.as_deref()),
        Command::Key(c) => cmd_key::run(c),
        Command::Profile(c) => cmd_profile::run(c),
        Command::Login(a) => cmd_session::login(&a),
        Command::Status(a) => cmd_session::status(&a),
        Command::Lock(a) => cmd_session::lock(&a),
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

/// keyward.1, keyward-<command>.1 for each subcommand, and keywardd.1.
fn man(out: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context;
    let cmd = Cli::command();
    let Some(dir) = out else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut pages = vec![(cmd.clone().name("keyward"), "keyward".to_owned())];
    for sub in cmd.get_subcommands() {
        let name = format!("keyward-{}", sub.get_name());
        pages.push((sub.clone().name(name.clone()), name));
    }
    pages.push((
        clap::Command::new("keywardd")
            .version(env!("CARGO_PKG_VERSION"))
            .about("the keyward daemon: keeps this computer's AWS key in the OS keychain and serves MFA-backed session credentials over $XDG_RUNTIME_DIR/keyward/keywardd.sock")
            .arg(clap::Arg::new("detach").long("detach").action(clap::ArgAction::SetTrue).help("start a new session (used when keyward starts it on demand)"))
            .after_help("Logs go to stderr, filtered by KEYWARD_LOG. Normally run by systemd (keywardd.service) or launchd."),
        "keywardd".to_owned(),
    ));
    for (page, name) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut f = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        clap_mangen::Man::new(page).render(&mut f)?;
        println!("{}", path.display());
    }
    Ok(())
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
