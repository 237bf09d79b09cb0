//! The loopback container-credentials endpoint of `keyward exec`: what the AWS SDKs
//! call through `AWS_CONTAINER_CREDENTIALS_FULL_URI`. It lives as long as the command.
//!
//! Every request must: come from this user's uid (looked up in /proc/net/tcp), be a
//! GET, name `127.0.0.1:PORT` or `localhost:PORT` as its Host (a DNS-rebinding page
//! names its own host), and carry the 256-bit token, compared in constant time. The
//! answer carries no CORS header, so no web page can read it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// Where the endpoint serves and what it checks.
pub struct Endpoint {
    pub port: u16,
    token: Arc<Zeroizing<String>>,
}

/// What the endpoint asks for a body: container-credentials JSON, or an error text.
pub type Source = dyn Fn() -> Result<Zeroizing<Vec<u8>>, String> + Send + Sync;

impl Endpoint {
    /// Binds 127.0.0.1 on a random port and serves from a thread. `check_uid` off
    /// lets another uid in (a container's root), with the token still required.
    pub fn start(source: Arc<Source>, check_uid: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = Arc::new(Zeroizing::new(data_encoding::HEXLOWER.encode(&raw)));
        let served = Arc::clone(&token);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (source, token) = (Arc::clone(&source), Arc::clone(&served));
                std::thread::spawn(move || {
                    let _ = handle(stream, port, &token, &*source, check_uid);
                });
            }
        });
        Ok(Self { port, token })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The token, for the command's environment only.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Why a request was refused, as HTTP.
fn refuse(stream: &mut TcpStream, status: &str, why: &str) -> std::io::Result<()> {
    let body = format!("{{\"message\":\"{why}\"}}");
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn handle(
    mut stream: TcpStream,
    port: u16,
    token: &str,
    source: &Source,
    check_uid: bool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    if check_uid {
        let me = rustix::process::getuid().as_raw();
        let peer = stream.peer_addr()?;
        let local = stream.local_addr()?;
        if peer_uid(local, peer) != Some(me) {
            return refuse(
                &mut stream,
                "403 Forbidden",
                "only this user's processes may ask",
            );
        }
    }
    let head = read_head(&mut stream)?;
    let Some(req) = Request::parse(&head) else {
        return refuse(&mut stream, "400 Bad Request", "not an HTTP request");
    };
    if req.method != "GET" {
        return refuse(&mut stream, "405 Method Not Allowed", "GET only");
    }
    let hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    if !req
        .host
        .as_deref()
        .is_some_and(|h| hosts.iter().any(|x| x == h))
    {
        return refuse(&mut stream, "403 Forbidden", "wrong Host");
    }
    let given = req.authorization.as_deref().unwrap_or("").as_bytes();
    if !bool::from(given.ct_eq(token.as_bytes())) {
        return refuse(&mut stream, "401 Unauthorized", "missing or wrong token");
    }
    match source() {
        Ok(body) => {
            let mut out = Zeroizing::new(format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                body.len()
            ).into_bytes());
            out.extend_from_slice(&body);
            stream.write_all(&out)
        }
        Err(why) => refuse(&mut stream, "500 Internal Server Error", &escape(&why)),
    }
}

fn escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .collect()
}

/// The request head, up to 16 KiB.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

struct Request {
    method: String,
    host: Option<String>,
    authorization: Option<String>,
}

impl Request {
    fn parse(head: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let method = lines.next()?.split(' ').next()?.to_owned();
        let (mut host, mut authorization) = (None, None);
        for line in lines.take_while(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':')?;
            match name.trim().to_ascii_lowercase().as_str() {
                "host" => host = Some(value.trim().to_owned()),
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        Some(Self {
            method,
            host,
            authorization,
        })
    }
}

/// The uid owning the client end of a loopback TCP connection, from /proc/net/tcp.
fn peer_uid(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            v4.port()
        )),
        SocketAddr::V6(_) => None,
    };
    let (client, server) = (hex(peer)?, hex(local)?);
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&client.as_str()) && f.get(2) == Some(&server.as_str()))
            .then(|| f.get(7)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_headers_are_case_insensitive() {
        let r =
            Request::parse(b"GET / HTTP/1.1\r\nhOsT: 127.0.0.1:9\r\nAuthorization: abc\r\n\r\n")
                .unwrap();
        assert_eq!(
            (
                r.method.as_str(),
                r.host.as_deref(),
                r.authorization.as_deref()
            ),
            ("GET", Some("127.0.0.1:9"), Some("abc"))
        );
        assert!(Request::parse(b"\xff\xfe").is_none());
    }

    #[test]
    fn the_peer_of_a_loopback_connection_is_this_uid() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        assert_eq!(
            peer_uid(s.local_addr().unwrap(), s.peer_addr().unwrap()),
            Some(rustix::process::getuid().as_raw())
        );
        drop(c);
    }
}
