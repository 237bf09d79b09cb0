//! `keyward demo`: runs `keyward-demo`, installed next to `keyward`. The demo's
//! emulated AWS and throw-away computers live in the sandbox crate, not in keyward.

use std::os::unix::process::CommandExt;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct DemoArgs {
    /// Arguments for keyward-demo (see `keyward demo -- --help`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<std::ffi::OsString>,
}

pub fn demo(a: &DemoArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot locate the keyward binary")?;
    let demo = exe
        .parent()
        .context("keyward binary has no directory")?
        .join("keyward-demo");
    if !demo.is_file() {
        anyhow::bail!(
            "{} is not installed; install it with `./install/install.sh --demo`",
            demo.display()
        );
    }
    // Replaces this process: the demo owns the terminal and its Ctrl-C from here on.
    let err = std::process::Command::new(&demo).args(&a.args).exec();
    Err(err).with_context(|| format!("cannot run {}", demo.display()))
}
