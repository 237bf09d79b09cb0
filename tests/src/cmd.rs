//! A command builder in the style of ripgrep's `TestCommand`: every run is recorded
//! (argv, stdout, stderr) for the leak scan; `.ok()` and `.fails()` assert the outcome
//! and show everything the command printed when it is not the expected one.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::world::{run_with_stdin, World};

pub struct Cmd<'w> {
    world: &'w World,
    cmd: Command,
    stdin: Option<Vec<u8>>,
    /// Whether stdout goes to the leak scan (not for credential_process output).
    scan_stdout: bool,
}

/// A finished command's output as text.
#[derive(Debug)]
pub struct Out {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Every line of stdout parsed as JSON (for commands that print one object per line).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

impl<'w> Cmd<'w> {
    pub fn new(world: &'w World, cmd: Command) -> Self {
        Self {
            world,
            cmd,
            stdin: None,
            scan_stdout: true,
        }
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(&mut self, k: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env_remove(k);
        self
    }

    /// Bytes for the command's stdin (otherwise stdin is closed).
    pub fn stdin(&mut self, input: Vec<u8>) -> &mut Self {
        self.stdin = Some(input);
        self
    }

    /// Its stdout carries credentials by design (credential_process): leave it out of
    /// the leak scan. Its stderr is still scanned.
    pub fn secret_stdout(&mut self) -> &mut Self {
        self.scan_stdout = false;
        self
    }

    /// The underlying `Command`, for what the builder does not cover.
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    fn describe(&self) -> String {
        format!(
            "{:?} {:?}",
            self.cmd.get_program(),
            self.cmd.get_args().collect::<Vec<_>>()
        )
    }

    /// Runs it and records everything; returns the output whatever the status.
    pub fn output(&mut self) -> Output {
        self.world.record_argv(self.describe());
        let cmd = std::mem::replace(&mut self.cmd, Command::new("true"));
        let out = match self.stdin.take() {
            Some(input) => run_with_stdin(cmd, &input),
            None => {
                let mut cmd = cmd;
                cmd.output().expect("spawn")
            }
        };
        let stdout: &[u8] = if self.scan_stdout { &out.stdout } else { b"" };
        self.world.record_output(&out.stderr, stdout);
        out
    }

    /// Starts it in the background (to kill it mid-run, or to read its first lines while
    /// it runs). Its stdout and stderr go to files of the world, recorded for the leak
    /// scan when it is killed or waited for.
    pub fn spawn(&mut self) -> Running<'w> {
        static SPAWNED: AtomicUsize = AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, Ordering::SeqCst);
        let stdout = self.world.outside.join(format!("spawned-{n}.stdout"));
        let stderr = self.world.outside.join(format!("spawned-{n}.stderr"));
        self.world.record_argv(self.describe());
        let mut cmd = std::mem::replace(&mut self.cmd, Command::new("true"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("create the stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("create the stderr file"));
        Running {
            world: self.world,
            child: cmd.spawn().expect("spawn"),
            stdout,
            stderr,
            scan_stdout: self.scan_stdout,
            finished: false,
        }
    }

    fn run(&mut self) -> (String, Out) {
        let what = self.describe();
        let o = self.output();
        let out = Out {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        (what, out)
    }

    /// Runs it and insists it succeeds.
    pub fn ok(&mut self) -> Out {
        let (what, out) = self.run();
        assert!(
            out.status.success(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            out.stdout,
            out.stderr
        );
        out
    }

    /// Runs it and insists it fails.
    pub fn fails(&mut self) -> Out {
        let (what, out) = self.run();
        assert!(
            !out.status.success(),
            "{what} should have failed:\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
        out
    }
}

/// A command started with [`Cmd::spawn`].
pub struct Running<'w> {
    world: &'w World,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    scan_stdout: bool,
    finished: bool,
}

impl Running<'_> {
    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// What it printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What it printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Kills it (SIGKILL) and records what it printed.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        self.finish();
    }

    /// Waits for it to end by itself and records what it printed.
    pub fn wait(mut self) -> Out {
        self.finish()
    }

    fn finish(&mut self) -> Out {
        self.finished = true;
        let status = self.child.wait().expect("wait");
        let out = Out {
            status,
            stdout: self.stdout_so_far(),
            stderr: self.stderr_so_far(),
        };
        let stdout = if self.scan_stdout {
            out.stdout.as_bytes()
        } else {
            b""
        };
        self.world.record_output(out.stderr.as_bytes(), stdout);
        out
    }
}

/// A test that stops looking at it still ends it and scans what it printed.
impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            self.finish();
        }
    }
}
