//! A small blocking HTTP/1.1 client over the daemon's Unix socket. One request per
//! connection; responses must carry `Content-Length` (hyper always sends it for full bodies).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::{
    route, CheckRequest, CheckResponse, CredentialsRequest, ErrorBody, ErrorKind, LockRequest,
    LockResponse, MfaSubmit, ShutdownRequest, ShutdownResponse, Status, PROTOCOL_HEADER,
    PROTOCOL_VERSION,
};

const MAX_RESPONSE: usize = 1024 * 1024;
/// A daemon that has not answered after this long is asked (on a second connection)
/// whether it is working on something, such as someone's MFA prompt or an STS call.
const PROBE_AFTER: Duration = Duration::from_secs(2);
/// How long that question, and `status`, may take: the daemon answers it from memory.
const STATUS_WAIT: Duration = Duration::from_millis(1500);

/// A response; the body may hold secrets and is zeroized on drop.
pub struct Response {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

impl Response {
    /// The error body of a non-2xx response.
    pub fn error(&self) -> ErrorBody {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            ErrorBody::new(
                ErrorKind::Internal,
                format!(
                    "keywardd answered HTTP {} with an unreadable body",
                    self.status
                ),
            )
        })
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a typed call to the daemon failed.
#[derive(Debug)]
pub enum CallError {
    /// No daemon answers there, or the connection broke.
    Unreachable(io::Error),
    /// The daemon answered with an error.
    Refused(ErrorBody),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(e) => write!(f, "keywardd does not answer: {e}"),
            CallError::Refused(e) => f.write_str(&e.message),
        }
    }
}

impl std::error::Error for CallError {}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            timeout: Duration::from_secs(150),
        }
    }

    /// Client for the default socket path.
    pub fn default_socket() -> Self {
        Self::new(crate::paths::socket_path())
    }

    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Connects, but only to a daemon that is provably ours: the socket's directory and
    /// the socket belong to us, and so does the process serving it. Nothing is sent
    /// before these checks pass.
    pub fn connect(&self) -> io::Result<UnixStream> {
        crate::paths::check_socket(&self.socket)?;
        let s = UnixStream::connect(&self.socket)?;
        crate::paths::check_peer(&s)?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        Ok(s)
    }

    /// One request. The wait for the answer is bounded: past [`PROBE_AFTER`] the daemon
    /// must show, on a second connection, that it is busy with something; a daemon
    /// that does not is hung, and the caller hears so in seconds, not minutes.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> io::Result<Response> {
        let mut stream = self.connect()?;
        stream.set_read_timeout(Some(PROBE_AFTER.min(self.timeout)))?;
        send(&mut stream, method, path, body)?;
        let started = std::time::Instant::now();
        read_response(&mut stream, &mut || {
            let waited = started.elapsed();
            if waited >= self.timeout {
                return Err(hung(waited));
            }
            match self.probe_busy() {
                Some(true) => Ok(()),
                _ => Err(hung(waited)),
            }
        })
    }

    /// Whether the daemon says it is busy; `None` when it does not answer either.
    fn probe_busy(&self) -> Option<bool> {
        let quick = self.clone().with_timeout(STATUS_WAIT);
        let mut stream = quick.connect().ok()?;
        send(&mut stream, "GET", route::STATUS, None).ok()?;
        let resp = read_response(&mut stream, &mut || Err(hung(STATUS_WAIT))).ok()?;
        serde_json::from_slice::<Status>(&resp.body)
            .ok()
            .map(|s| s.busy)
    }

    /// `GET /v1/status`, answered from memory: it never waits long.
    pub fn status(&self) -> io::Result<Status> {
        let quick = self.clone().with_timeout(STATUS_WAIT);
        let mut stream = quick.connect()?;
        send(&mut stream, "GET", route::STATUS, None)?;
        let resp = read_response(&mut stream, &mut || Err(hung(STATUS_WAIT)))?;
        if !resp.is_success() {
            return Err(io::Error::other(resp.error().message));
        }
        serde_json::from_slice(&resp.body).map_err(io::Error::other)
    }

    /// `POST /v1/credentials`; a success's body is credential_process JSON (secret).
    pub fn credentials(&self, req: &CredentialsRequest) -> io::Result<Response> {
        self.post(route::CREDENTIALS, req)
    }

    /// `POST /v1/mfa`; a success's body is credential_process JSON (secret).
    pub fn submit_mfa(&self, submit: &MfaSubmit) -> io::Result<Response> {
        self.post(route::MFA, submit)
    }

    /// `POST /v1/check`: asks STS about every profile's key.
    pub fn check(&self) -> Result<CheckResponse, CallError> {
        self.call(route::CHECK, &CheckRequest {})
    }

    /// `POST /v1/lock`: the daemon forgets (and zeroizes) every session.
    pub fn lock(&self, forget_revoked: bool) -> Result<LockResponse, CallError> {
        self.call(route::LOCK, &LockRequest { forget_revoked })
    }

    /// `POST /v1/shutdown`.
    pub fn shutdown(&self) -> Result<ShutdownResponse, CallError> {
        self.call(route::SHUTDOWN, &ShutdownRequest {})
    }

    /// POST a JSON body, for the routes above and for tests of hostile input.
    pub fn post<T: serde::Serialize>(&self, path: &str, body: &T) -> io::Result<Response> {
        let json = Zeroizing::new(serde_json::to_vec(body).map_err(io::Error::other)?);
        self.request("POST", path, Some(&json))
    }

    fn call<Req, Resp>(&self, path: &str, body: &Req) -> Result<Resp, CallError>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
    {
        let resp = self.post(path, body).map_err(CallError::Unreachable)?;
        if !resp.is_success() {
            return Err(CallError::Refused(resp.error()));
        }
        serde_json::from_slice(&resp.body).map_err(|e| {
            CallError::Refused(ErrorBody::new(
                ErrorKind::Internal,
                format!("unreadable answer from keywardd on {path}: {e}"),
            ))
        })
    }
}

fn send(stream: &mut UnixStream, method: &str, path: &str, body: Option<&[u8]>) -> io::Result<()> {
    let body = body.unwrap_or_default();
    let mut req = Zeroizing::new(Vec::with_capacity(160 + body.len()));
    write!(
        req,
        "{method} {path} HTTP/1.1\r\nhost: keywardd\r\n{PROTOCOL_HEADER}: {PROTOCOL_VERSION}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    req.extend_from_slice(body);
    stream.write_all(&req)
}

/// The error for a daemon that accepted a request and never answered it.
fn hung(waited: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "keywardd did not answer within {} s (hung?); run `keyward daemon restart`",
            waited.as_secs().max(1)
        ),
    )
}

/// One read; on a read timeout `keep_waiting` decides between another try and an error.
fn read_some(
    stream: &mut UnixStream,
    chunk: &mut [u8],
    keep_waiting: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<usize> {
    loop {
        match stream.read(chunk) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                keep_waiting()?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn read_response(
    stream: &mut UnixStream,
    keep_waiting: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<Response> {
    let mut buf = Zeroizing::new(Vec::with_capacity(2048));
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = read_some(stream, &mut chunk, keep_waiting)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "keywardd closed the connection before answering",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        chunk[..n].fill(0);
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("response header too large"));
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(io::Error::other)?;
    let status = parse_status(head)?;
    let len = content_length(head)?;
    if len > MAX_RESPONSE {
        return Err(io::Error::other("response body too large"));
    }
    let mut body = Zeroizing::new(buf[head_end..].to_vec());
    while body.len() < len {
        let n = read_some(stream, &mut chunk, keep_waiting)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated response",
            ));
        }
        body.extend_from_slice(&chunk[..n]);
        chunk[..n].fill(0);
    }
    body.truncate(len);
    Ok(Response { status, body })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_status(head: &str) -> io::Result<u16> {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("malformed status line from keywardd"))
}

fn content_length(head: &str) -> io::Result<usize> {
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                return value.trim().parse().map_err(io::Error::other);
            }
        }
    }
    Err(io::Error::other("response without content-length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_length() {
        let head = "HTTP/1.1 404 Not Found\r\ncontent-type: x\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(parse_status(head).unwrap(), 404);
        assert_eq!(content_length(head).unwrap(), 12);
        assert!(content_length("HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// What `read_response` makes of `bytes` sent by a "daemon" that then hangs up.
        fn read_all(bytes: Vec<u8>) -> io::Result<Response> {
            let (mut ours, mut theirs) = UnixStream::pair().unwrap();
            let writer = std::thread::spawn(move || {
                let _ = theirs.write_all(&bytes);
            });
            ours.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let r = read_response(&mut ours, &mut || Err(hung(Duration::from_secs(5))));
            let _ = writer.join();
            r
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Any bytes from the socket give a response or an error, never a panic,
            /// and never a body longer than the cap.
            #[test]
            fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                if let Ok(r) = read_all(bytes) {
                    prop_assert!(r.body.len() <= MAX_RESPONSE);
                }
            }

            /// A well-formed response comes back exactly, whatever its header casing.
            #[test]
            fn well_formed_responses_round_trip(
                status in 100u16..600,
                body in proptest::collection::vec(any::<u8>(), 0..1024),
                upper in any::<bool>(),
            ) {
                let name = if upper { "Content-Length" } else { "content-length" };
                let mut bytes = format!("HTTP/1.1 {status} X\r\n{name}: {}\r\n\r\n", body.len()).into_bytes();
                bytes.extend_from_slice(&body);
                let r = read_all(bytes).unwrap();
                prop_assert_eq!(r.status, status);
                prop_assert_eq!(r.body.as_slice(), body.as_slice());
            }

            /// Headers of any text: the status and length parsers never panic.
            #[test]
            fn header_parsers_never_panic(head in ".{0,300}") {
                let _ = parse_status(&head);
                let _ = content_length(&head);
            }
        }
    }
}
