//! `keyward completions` and `keyward man`: generated from the same clap tree.

use std::path::Path;

use anyhow::{Context, Result};

/// keyward.1, keyward-<command>.1 for each visible subcommand, and keywardd.1.
pub fn man(cmd: clap::Command, out: Option<&Path>) -> Result<()> {
    let Some(dir) = out else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut pages = vec![(cmd.clone().name("keyward"), "keyward".to_owned())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("keyward-{}", sub.get_name());
        // The synopsis names the real command line: `keyward setup --owner <OWNER>`.
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("keyward {}", sub.get_name()));
        pages.push((page, name));
    }
    pages.push((daemon_page(), "keywardd".to_owned()));
    for (page, name) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut f = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        clap_mangen::Man::new(page).render(&mut f)?;
        println!("{}", path.display());
    }
    Ok(())
}

fn daemon_page() -> clap::Command {
    clap::Command::new("keywardd")
        .version(env!("CARGO_PKG_VERSION"))
        .about("the keyward daemon: keeps this computer's AWS key in the OS keychain and serves MFA-backed session credentials over $XDG_RUNTIME_DIR/keyward/keywardd.sock")
        .arg(clap::Arg::new("detach").long("detach").action(clap::ArgAction::SetTrue).help("start a new session (used when keyward starts it on demand)"))
        .after_help("Logs go to stderr, filtered by KEYWARD_LOG. Normally run by systemd (keywardd.service) or launchd; started on demand, it logs to $XDG_RUNTIME_DIR/keyward/keywardd.log.")
}

pub fn completions(cmd: &mut clap::Command, shell: clap_complete::Shell) {
    clap_complete::generate(shell, cmd, "keyward", &mut std::io::stdout());
}
