//! The emulated phone: asks a local emulator for a device's next TOTP code, as
//! `keyward-phone` (an `mfa_process`) does for the tests and the demo.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Which code the phone shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shows {
    /// A code never handed out before (a person waiting for the next one).
    Next,
    /// The current code, the same until the step ends, by AWS's clock (a phone).
    Current,
    /// The current code by this computer's clock (an authenticator here).
    CurrentByHostClock,
}

/// The next code of `device` from the emulator at `url` (loopback only).
pub fn next_code(url: &str, device: &str) -> Result<String> {
    code(url, device, Shows::Next)
}

/// A code of `device` from the emulator at `url` (loopback only), as `shows` says.
pub fn code(url: &str, device: &str, shows: Shows) -> Result<String> {
    let host = url
        .strip_prefix("http://")
        .context("the emulator URL must start with http://")?
        .trim_end_matches('/');
    let addr: SocketAddr = host
        .parse()
        .context("the emulator URL must be http://127.0.0.1:PORT")?;
    if !addr.ip().is_loopback() {
        bail!(
            "the emulator must be on this computer (127.0.0.1), not {}",
            addr.ip()
        );
    }
    if device.is_empty()
        || !device
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        bail!("`{device}` is not an MFA device name");
    }
    let mut s = std::net::TcpStream::connect(addr)
        .with_context(|| format!("the emulator at {url} does not answer"))?;
    s.set_read_timeout(Some(Duration::from_secs(45)))?;
    write!(
        s,
        "GET /__keyward_emulator/code?device={device}{} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n",
        match shows {
            Shows::Next => "",
            Shows::Current => "&current=aws",
            Shows::CurrentByHostClock => "&current=host",
        }
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .context("unreadable answer from the emulator")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("the emulator knows no MFA device `{device}`");
    }
    Ok(body.trim().to_owned())
}
