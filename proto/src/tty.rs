//! Reading an MFA code: from a configured program or from the controlling terminal.
//! Never from stdin (the AWS tools own it) and never from argv.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::termios::{self, LocalModes, OptionalActions};
use zeroize::Zeroizing;

/// The controlling terminal, if this process has one.
pub fn open_tty() -> Option<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

/// A TOTP code is six ASCII digits.
pub fn is_valid_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Prompts on the terminal with echo off and reads one line.
pub fn prompt_code(tty: &mut File, prompt: &str) -> io::Result<Zeroizing<String>> {
    // Echo goes off before the prompt shows: what is typed (or pasted) the moment the
    // prompt appears is never echoed.
    let saved = termios::tcgetattr(&*tty).ok();
    if let Some(orig) = &saved {
        let mut quiet = orig.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        let _ = termios::tcsetattr(&*tty, OptionalActions::Now, &quiet);
    }
    if let Err(e) = tty.write_all(prompt.as_bytes()).and_then(|()| tty.flush()) {
        if let Some(orig) = &saved {
            let _ = termios::tcsetattr(&*tty, OptionalActions::Now, orig);
        }
        return Err(e);
    }
    let mut line = Zeroizing::new(String::new());
    let read = BufReader::new(&*tty).read_line(&mut line);
    if let Some(orig) = &saved {
        let _ = termios::tcsetattr(&*tty, OptionalActions::Now, orig);
    }
    read?;
    Ok(Zeroizing::new(line.trim().to_owned()))
}

/// Runs the mfa_process argv without a shell and returns the code it printed.
/// Its output is never logged or echoed.
pub fn run_mfa_process(argv: &[String], timeout: Duration) -> io::Result<Zeroizing<String>> {
    run_code_program(argv, timeout, "mfa_process")
}

/// Runs a program that prints an MFA code (`what` names it in errors: the
/// mfa_process, or a prompt window).
pub fn run_code_program(
    argv: &[String],
    timeout: Duration,
    what: &str,
) -> io::Result<Zeroizing<String>> {
    let (prog, rest) = argv
        .split_first()
        .ok_or_else(|| io::Error::other(format!("{what} is empty")))?;
    let mut child = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {what} `{prog}`: {e}")))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    // A reader thread, so a program that hangs is killed at the deadline.
    let reader = std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        let _ = (&mut stdout).take(4096).read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "{what} `{prog}` did not finish within {}s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(io::Error::other(format!(
            "{what} `{prog}` exited with {status}"
        )));
    }
    let text = Zeroizing::new(String::from_utf8_lossy(&out).trim().to_owned());
    if !is_valid_code(&text) {
        return Err(io::Error::other(format!(
            "{what} `{prog}` did not print a 6-digit code"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_shape() {
        assert!(is_valid_code("012345"));
        assert!(!is_valid_code("12345"));
        assert!(!is_valid_code("1234567"));
        assert!(!is_valid_code("12a456"));
        assert!(!is_valid_code(""));
    }

    #[test]
    fn mfa_process_output_is_trimmed_and_checked() {
        let argv = vec!["printf".to_owned(), "  654321\n".to_owned()];
        let code = run_mfa_process(&argv, Duration::from_secs(5)).unwrap();
        assert_eq!(code.as_str(), "654321");
        let bad = vec!["echo".to_owned(), "nope".to_owned()];
        let err = run_mfa_process(&bad, Duration::from_secs(5)).unwrap_err();
        assert!(
            !err.to_string().contains("nope"),
            "output must not be echoed: {err}"
        );
        let missing = vec!["/nonexistent/keyward-mfa".to_owned()];
        assert!(run_mfa_process(&missing, Duration::from_secs(5)).is_err());
    }
}
