//! The loopback container-credentials endpoint of `keyward exec`: what the AWS SDKs
//! call through `AWS_CONTAINER_CREDENTIALS_FULL_URI`. It lives as long as the command.
//!
//! Every request must: come from this user's uid (the kernel's socket diagnostics), be a
//! GET, name `127.0.0.1:PORT` or `localhost:PORT` as its Host (a DNS-rebinding page
//! names its own host), and carry the 256-bit token, compared in constant time. The
//! answer carries no CORS header, so no web page can read it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Requests served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 64;

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
    /// Binds 127.0.0.1 on a random port and serves from a thread. `also_root` lets
    /// uid 0 in too (a container's root), with the token still required.
    pub fn start(source: Arc<Source>, also_root: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = Arc::new(Zeroizing::new(data_encoding::HEXLOWER.encode(&raw)));
        let served = Arc::clone(&token);
        let busy = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else {
                    // Out of file descriptors: wait instead of spinning.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    busy.fetch_sub(1, Ordering::SeqCst);
                    continue; // dropped: closed at once
                }
                let (source, token, busy) =
                    (Arc::clone(&source), Arc::clone(&served), Arc::clone(&busy));
                let spawned = std::thread::Builder::new().spawn(move || {
                    let _ = handle(stream, port, &token, &*source, also_root);
                    busy.fetch_sub(1, Ordering::SeqCst);
                });
                if spawned.is_err() {
                    std::thread::sleep(Duration::from_millis(50));
                }
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
    also_root: bool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let me = rustix::process::getuid().as_raw();
    let uid = peer_uid(stream.local_addr()?, stream.peer_addr()?);
    if uid != Some(me) && !(also_root && uid == Some(0)) {
        return refuse(
            &mut stream,
            "403 Forbidden",
            "only this user's processes may ask",
        );
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

/// The request head, up to 16 KiB, within 5 s however slowly it trickles in.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        if std::time::Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request too slow",
            ));
        }
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

/// Headers read from one request; a longer head is refused (SDKs send a handful).
const MAX_HEADERS: usize = 32;

impl Request {
    /// A whole request head (through the blank line), parsed by httparse; `None` for
    /// anything else: not HTTP, cut short, too many headers, a value not UTF-8.
    fn parse(head: &[u8]) -> Option<Self> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        if !req.parse(head).ok()?.is_complete() {
            return None;
        }
        let (mut host, mut authorization) = (None, None);
        for h in req.headers.iter() {
            let value = || std::str::from_utf8(h.value).map(|v| v.trim().to_owned());
            if h.name.eq_ignore_ascii_case("host") {
                host = Some(value().ok()?);
            } else if h.name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value().ok()?);
            }
        }
        Some(Self {
            method: req.method?.to_owned(),
            host,
            authorization,
        })
    }
}

/// The uid owning the client end of a loopback TCP connection: asked of the kernel's
/// socket diagnostics (one socket, microseconds), else read from /proc/net/tcp (which
/// the kernel writes whole, about 2 ms).
fn peer_uid(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    let (SocketAddr::V4(local), SocketAddr::V4(peer)) = (local, peer) else {
        return None;
    };
    sock_diag_uid(local, peer).or_else(|| proc_uid(local, peer))
}

/// The netlink and inet_diag layouts `sock_diag_uid` writes and reads, from the
/// kernel's uapi headers: `struct nlmsghdr` (linux/netlink.h), `SOCK_DIAG_BY_FAMILY`
/// (linux/sock_diag.h), `struct inet_diag_req_v2`, `inet_diag_sockid` and
/// `inet_diag_msg` (linux/inet_diag.h; a TCP socket, so not linux/unix_diag.h).
mod diag {
    /// `sizeof(struct nlmsghdr)`: len u32, type u16, flags u16, seq u32, pid u32.
    pub const NLMSG_HDR_LEN: usize = 16;
    /// Offset of `nlmsg_type` in `struct nlmsghdr`.
    pub const NLMSG_TYPE: usize = 4;
    pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
    pub const NLM_F_REQUEST: u16 = 1;
    pub const NLMSG_ERROR: u16 = 2;
    pub const AF_INET: u8 = 2;
    pub const IPPROTO_TCP: u8 = 6;
    /// `sizeof(struct inet_diag_req_v2)`: family, protocol, ext, pad, states u32,
    /// then the 48-byte `inet_diag_sockid`.
    pub const REQ_V2_LEN: usize = 56;
    /// `inet_diag_sockid.idiag_src` and `idiag_dst` are `__be32[4]`: IPv4 uses the first.
    pub const ADDR_LEN: usize = 16;
    /// `INET_DIAG_NOCOOKIE`: the `idiag_cookie[2]` of a request that names no cookie.
    pub const NO_COOKIE: [u8; 8] = [0xff; 8];
    /// Offsets in the answer: the `inet_diag_msg` right after the netlink header.
    /// `id` (the sockid) starts 4 bytes in: family, state, timer, retrans.
    pub const MSG_SPORT: usize = NLMSG_HDR_LEN + 4;
    pub const MSG_DPORT: usize = MSG_SPORT + 2;
    /// After the sockid (48 bytes): expires, rqueue, wqueue (u32 each), then uid.
    pub const MSG_UID: usize = NLMSG_HDR_LEN + 4 + 48 + 12;
    /// `sizeof(struct inet_diag_msg)` is 72: uid u32, then inode u32.
    pub const MSG_LEN: usize = NLMSG_HDR_LEN + 72;
}

/// `SOCK_DIAG_BY_FAMILY` for the client's socket (source = the peer, destination =
/// us): an `inet_diag_req_v2` in a netlink message; the answer's `idiag_uid`.
fn sock_diag_uid(local: SocketAddrV4, peer: SocketAddrV4) -> Option<u32> {
    use diag::{NLMSG_HDR_LEN, REQ_V2_LEN};
    use rustix::net::{
        netlink, recv, sendto, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
    };
    const LEN: usize = NLMSG_HDR_LEN + REQ_V2_LEN;
    let mut req = Vec::with_capacity(LEN);
    req.extend_from_slice(&(LEN as u32).to_ne_bytes());
    req.extend_from_slice(&diag::SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&diag::NLM_F_REQUEST.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
    req.extend_from_slice(&[diag::AF_INET, diag::IPPROTO_TCP, 0, 0]); // no extensions
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // any state
    req.extend_from_slice(&peer.port().to_be_bytes());
    req.extend_from_slice(&local.port().to_be_bytes());
    for ip in [peer.ip(), local.ip()] {
        req.extend_from_slice(&ip.octets());
        req.extend_from_slice(&[0; diag::ADDR_LEN - 4]);
    }
    req.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    req.extend_from_slice(&diag::NO_COOKIE);
    debug_assert_eq!(req.len(), LEN);
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )
    .ok()?;
    sendto(
        &fd,
        &req,
        SendFlags::empty(),
        &netlink::SocketAddrNetlink::new(0, 0),
    )
    .ok()?;
    let mut buf = [0u8; 512];
    let (_, n) = recv(&fd, &mut buf, RecvFlags::empty()).ok()?;
    let at = |i: usize| [buf[i], buf[i + 1]];
    let msg_type = u16::from_ne_bytes(at(diag::NLMSG_TYPE));
    if n < diag::MSG_LEN || msg_type == diag::NLMSG_ERROR || msg_type != diag::SOCK_DIAG_BY_FAMILY {
        return None;
    }
    // The answer names the socket it describes: it must be the one asked about.
    let answered = at(diag::MSG_SPORT) == peer.port().to_be_bytes()
        && at(diag::MSG_DPORT) == local.port().to_be_bytes();
    let uid = diag::MSG_UID;
    answered.then(|| u32::from_ne_bytes([buf[uid], buf[uid + 1], buf[uid + 2], buf[uid + 3]]))
}

fn proc_uid(local: SocketAddrV4, peer: SocketAddrV4) -> Option<u32> {
    let hex = |a: SocketAddrV4| {
        format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(a.ip().octets()),
            a.port()
        )
    };
    let (client, server) = (hex(peer), hex(local));
    let table = std::io::BufReader::new(std::fs::File::open("/proc/net/tcp").ok()?);
    std::io::BufRead::lines(table)
        .skip(1)
        .map_while(Result::ok)
        .find_map(|line| {
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
        assert!(
            Request::parse(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:9\r\n").is_none(),
            "a head cut short is refused"
        );
        let long = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X-A: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(
            Request::parse(long.as_bytes()).is_none(),
            "too many headers"
        );
        let post = Request::parse(b"POST / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(post.method, "POST", "the method is checked by the caller");
    }

    /// `curl` as uid `who` (through setpriv), the token on stdin: its status code.
    fn curl_as(who: Option<u32>, url: &str, token: &str) -> String {
        use std::io::Write as _;
        let mut c = match who {
            Some(uid) => {
                let mut c = std::process::Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".into(),
                    "curl".into(),
                ]);
                c
            }
            None => std::process::Command::new("curl"),
        };
        c.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "@-",
            url,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().expect("curl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("Authorization: {token}\n").as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    }

    #[test]
    fn another_uid_is_refused_even_with_the_token() {
        if rustix::process::getuid().as_raw() != 0
            || std::process::Command::new("setpriv")
                .arg("--version")
                .output()
                .is_err()
        {
            eprintln!("SKIPPED: needs root and setpriv to run curl as another uid (the e2e exec test checks it too)");
            return;
        }
        let ep = Endpoint::start(Arc::new(|| Ok(Zeroizing::new(b"{}".to_vec()))), false).unwrap();
        assert_eq!(curl_as(None, &ep.url(), ep.token()), "200");
        assert_eq!(curl_as(Some(65534), &ep.url(), ep.token()), "403");
        assert_eq!(curl_as(None, &ep.url(), "wrong"), "401");
        let docker =
            Endpoint::start(Arc::new(|| Ok(Zeroizing::new(b"{}".to_vec()))), true).unwrap();
        assert_eq!(
            curl_as(Some(65534), &docker.url(), docker.token()),
            "403",
            "--docker lets root in, not everyone"
        );
    }

    /// The status line's code for a raw request sent to `ep`.
    fn status_of(ep: &Endpoint, request: &str) -> String {
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, ep.port)).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        answer.split(' ').nth(1).unwrap_or_default().to_owned()
    }

    #[test]
    fn method_host_token_and_shape_are_checked() {
        let ep = Endpoint::start(Arc::new(|| Ok(Zeroizing::new(b"{}".to_vec()))), false).unwrap();
        let (port, token) = (ep.port, ep.token().to_owned());
        let get = |host: &str, auth: &str| {
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n")
        };
        let me = format!("127.0.0.1:{port}");
        assert_eq!(status_of(&ep, &get(&me, &token)), "200");
        assert_eq!(
            status_of(&ep, &get(&format!("localhost:{port}"), &token)),
            "200"
        );
        assert_eq!(status_of(&ep, &get("evil.example:80", &token)), "403");
        assert_eq!(status_of(&ep, &get(&me, "wrong")), "401");
        let put = format!("PUT / HTTP/1.1\r\nHost: {me}\r\nAuthorization: {token}\r\n\r\n");
        assert_eq!(status_of(&ep, &put), "405");
        assert_eq!(status_of(&ep, "hello\r\n\r\n"), "400");
    }

    #[test]
    fn the_peer_of_a_loopback_connection_is_this_uid() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let me = Some(rustix::process::getuid().as_raw());
        assert_eq!(
            peer_uid(s.local_addr().unwrap(), s.peer_addr().unwrap()),
            me
        );
        let (SocketAddr::V4(l), SocketAddr::V4(p)) =
            (s.local_addr().unwrap(), s.peer_addr().unwrap())
        else {
            panic!("IPv4")
        };
        assert_eq!(
            sock_diag_uid(l, p),
            me,
            "the kernel's socket diagnostics answer"
        );
        assert_eq!(proc_uid(l, p), me, "and /proc/net/tcp agrees");
        let unknown = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
        assert_eq!(
            sock_diag_uid(l, unknown),
            None,
            "no such connection, no uid"
        );
        drop(c);
    }
}
