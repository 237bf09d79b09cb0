//! `keyward demo`: the whole story against a throw-away emulated AWS, and the
//! emulated phone it uses for MFA codes.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};

/// Prints the next MFA code of `device` from a keyward emulator (the demo's phone).
/// Loopback only: the emulator is a local, throw-away AWS.
pub fn emulator_code(url: &str, device: &str) -> Result<()> {
    let host = url
        .strip_prefix("http://")
        .context("the emulator URL must start with http://")?
        .trim_end_matches('/');
    let addr: std::net::SocketAddr = host
        .parse()
        .context("the emulator URL must be http://127.0.0.1:PORT")?;
    if !addr.ip().is_loopback() {
        bail!(
            "the emulator must be on this computer (127.0.0.1), not {}",
            addr.ip()
        );
    }
    if !device
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        bail!("`{device}` is not an MFA device name");
    }
    let mut s = std::net::TcpStream::connect(addr)
        .with_context(|| format!("the emulator at {url} does not answer"))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(45)))?;
    write!(s, "GET /__keyward_emulator/code?device={device} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .context("unreadable answer from the emulator")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("the emulator knows no MFA device `{device}`");
    }
    println!("{}", body.trim());
    Ok(())
}
