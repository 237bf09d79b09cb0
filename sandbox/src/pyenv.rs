//! The one Python environment the demo and the tests share: moto's server, boto3, the
//! AWS CLI (v1, from pip) and principalmapper. Made on first use; `tests/run.sh`
//! makes the same one from the same requirements file.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The pinned package list, shared with `tests/run.sh`.
pub const REQUIREMENTS: &str = include_str!("../python-requirements.txt");

/// Where the environment lives: `$KEYWARD_PYTHON_ENV`, else `~/.cache/keyward/python`.
pub fn dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("KEYWARD_PYTHON_ENV") {
        return Ok(PathBuf::from(d));
    }
    Ok(directories::ProjectDirs::from("", "", "keyward")
        .context("no home directory")?
        .cache_dir()
        .join("python"))
}

/// Whether `dir` already has what the sandbox runs.
pub fn is_ready(dir: &std::path::Path) -> bool {
    ["moto_server", "aws", "python"]
        .iter()
        .all(|b| dir.join("bin").join(b).is_file())
}

/// Makes the environment if it is missing, reporting what it does through `say`.
pub fn ensure(say: &dyn Fn(&str)) -> Result<PathBuf> {
    let dir = dir()?;
    if is_ready(&dir) {
        return Ok(dir);
    }
    if crate::computer::which("python3").is_none() {
        bail!("the emulated AWS runs moto, written in Python: install python3 and python3-venv");
    }
    say(&format!(
        "first run: installing moto, boto3, the AWS CLI and principalmapper into {} (about 500 MB, a minute or two)",
        dir.display()
    ));
    let requirements =
        std::env::temp_dir().join(format!("keyward-requirements-{}.txt", std::process::id()));
    std::fs::write(&requirements, REQUIREMENTS)?;
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(dir.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .status()
            .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&requirements);
    if !ok {
        let _ = std::fs::remove_dir_all(&dir);
        bail!("could not create the Python environment in {} (python3 -m venv, then pip install); is python3-venv installed and PyPI reachable?", dir.display());
    }
    Ok(dir)
}
