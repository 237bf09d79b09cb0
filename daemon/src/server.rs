//! HTTP/1.1 + JSON over the private Unix socket. Every connection has its peer uid
//! checked; bodies are capped at 64 KiB; slow clients time out.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use keyward_proto::{
    route, CheckRequest, CheckResponse, CredentialsRequest, ErrorBody, ErrorKind, KeyCheck,
    LockRequest, LockResponse, MfaSubmit, ShutdownResponse, MAX_BODY, PROTOCOL_HEADER,
    PROTOCOL_VERSION,
};
use tokio::net::UnixListener;
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::broker::Broker;
use crate::conns::{Conns, RateLimited, Ticket};
use crate::sts::Upstream;

const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

type Resp = Response<Full<Bytes>>;

/// Failed accepts (out of file descriptors) are logged at most this often.
static ACCEPT_WARNING: RateLimited = RateLimited::new(Duration::from_secs(30));

/// How many connections to keep: under the open-file limit (which the daemon raises to
/// its hard limit at start) with room to spare, so that accepting never runs out of
/// descriptors: the oldest idle connection makes way instead.
pub fn connection_cap() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024);
    usize::try_from(soft.saturating_sub(64))
        .unwrap_or(4096)
        .clamp(8, 4096)
}

/// Serves until `shutdown` turns true (SIGTERM, or `POST /v1/shutdown`).
pub async fn serve<U: Upstream>(
    listener: UnixListener,
    broker: Arc<Broker<U>>,
    shutdown: watch::Sender<bool>,
) {
    serve_with_cap(listener, broker, shutdown, None).await;
}

/// [`serve`] with at most `cap` connections (default: [`connection_cap`], followed as
/// the open-file limit changes): past it the oldest idle one is shed.
pub async fn serve_with_cap<U: Upstream>(
    listener: UnixListener,
    broker: Arc<Broker<U>>,
    shutdown: watch::Sender<bool>,
    cap: Option<usize>,
) {
    let my_uid = rustix::process::getuid().as_raw();
    let conns = Conns::new(cap.unwrap_or_else(connection_cap));
    let mut stop = shutdown.subscribe();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors: the oldest idle connections make way.
                    for _ in 0..16 {
                        if !conns.make_room() {
                            break;
                        }
                    }
                    if let Some(suppressed) = ACCEPT_WARNING.allow() {
                        tracing::warn!(error = %e, suppressed, live = conns.len(), "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == my_uid => {}
            Ok(cred) => {
                tracing::warn!(
                    peer_uid = cred.uid(),
                    "refused a connection from another user"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the peer's credentials; connection refused");
                continue;
            }
        }
        if cap.is_none() {
            conns.set_cap(connection_cap());
        }
        let Some(ticket) = conns.admit() else {
            tracing::debug!("every connection is busy; refused a new one");
            continue;
        };
        tokio::spawn(connection(stream, ticket, broker.clone(), shutdown.clone()));
    }
}

/// One connection: HTTP/1.1 with timeouts, closed early when the registry sheds it.
async fn connection<U: Upstream>(
    stream: tokio::net::UnixStream,
    ticket: Ticket,
    broker: Arc<Broker<U>>,
    shutdown: watch::Sender<bool>,
) {
    let busy = ticket.busy.clone();
    let svc = service_fn(move |req| {
        let (broker, shutdown, busy) = (broker.clone(), shutdown.clone(), busy.clone());
        async move {
            busy.store(true, Ordering::SeqCst);
            let resp = handle(&broker, &shutdown, req).await;
            busy.store(false, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .half_close(true)
        .max_buf_size(MAX_BODY + 16 * 1024)
        .serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        () = ticket.shed.notified() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

async fn handle<U: Upstream>(
    broker: &Arc<Broker<U>>,
    shutdown: &watch::Sender<bool>,
    req: Request<Incoming>,
) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if method == Method::GET && path == route::STATUS {
        return json(StatusCode::OK, &broker.status());
    }
    let _working = broker.working();
    let client_protocol = req
        .headers()
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if method == Method::POST && path == route::SHUTDOWN {
        tracing::info!("shutdown requested over the socket");
        let _ = shutdown.send(true);
        return json(StatusCode::OK, &ShutdownResponse { stopping: true });
    }
    if client_protocol != Some(PROTOCOL_VERSION) {
        return error(&ErrorBody::new(
            ErrorKind::ProtocolMismatch,
            format!(
                "keywardd speaks protocol {PROTOCOL_VERSION}, the client sent {}; run `keyward daemon restart`",
                client_protocol.map_or_else(|| "none".to_owned(), |p| p.to_string())
            ),
        ));
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    if method != Method::POST {
        return error(&ErrorBody::new(
            ErrorKind::BadRequest,
            format!("no route {method} {path}"),
        ));
    }
    post(broker, &path, &body).await
}

/// The POST routes, once the protocol version and the body are known good.
async fn post<U: Upstream>(broker: &Arc<Broker<U>>, path: &str, body: &[u8]) -> Resp {
    match path {
        route::CREDENTIALS => {
            let parsed: CredentialsRequest = match parse(body) {
                Ok(p) => p,
                Err(e) => return error(&e),
            };
            if let Err(e) = check_name(&parsed.profile) {
                return error(&e);
            }
            tracing::debug!(profile = %parsed.profile, "credentials requested");
            creds(&broker.credentials(&parsed.profile, parsed.can_prompt).await)
        }
        route::MFA => {
            let parsed: MfaSubmit = match parse(body) {
                Ok(p) => p,
                Err(e) => return error(&e),
            };
            if let Err(e) = check_name(&parsed.profile) {
                return error(&e);
            }
            tracing::debug!(profile = %parsed.profile, "MFA code submitted");
            let code = Zeroizing::new(parsed.code.clone());
            creds(&broker.submit_mfa(&parsed.profile, code).await)
        }
        route::CHECK => {
            if let Err(e) = parse_or_default::<CheckRequest>(body) {
                return error(&e);
            }
            let checked = broker
                .check_keys(false)
                .await
                .into_iter()
                .map(|(profile, r)| KeyCheck {
                    profile,
                    ok: r.is_ok(),
                    error: r.err(),
                })
                .collect();
            json(
                StatusCode::OK,
                &CheckResponse {
                    checked,
                    status: broker.status(),
                },
            )
        }
        route::LOCK => {
            let parsed: LockRequest = match parse_or_default(body) {
                Ok(p) => p,
                Err(e) => return error(&e),
            };
            let forgotten = broker.lock(parsed.forget_revoked);
            tracing::info!(sessions = forgotten, "locked: every session forgotten");
            json(StatusCode::OK, &LockResponse { forgotten })
        }
        _ => error(&ErrorBody::new(
            ErrorKind::BadRequest,
            format!("no route POST {path}"),
        )),
    }
}

/// A profile name is checked before it reaches a log line or a message: a newline or
/// an escape sequence in it could forge log lines.
fn check_name(name: &str) -> Result<(), ErrorBody> {
    crate::config::validate_name(name).map_err(|_| {
        ErrorBody::new(
            ErrorKind::BadRequest,
            format!(
                "{} is not a valid profile name: use 1-64 letters, digits, `-`, `_` or `.`",
                name.chars().take(80).collect::<String>().escape_debug()
            ),
        )
    })
}

/// An empty body means the message's defaults.
fn parse_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ErrorBody> {
    if body.is_empty() {
        Ok(T::default())
    } else {
        parse(body)
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Zeroizing<Vec<u8>>, ErrorBody> {
    // A declared length over the cap is refused before a byte of the body is read.
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ErrorBody::new(
            ErrorKind::TooLarge,
            format!("request body over {MAX_BODY} bytes"),
        ));
    }
    let limited = Limited::new(req.into_body(), MAX_BODY);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(ErrorBody::new(
            ErrorKind::BadRequest,
            "request body timed out",
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(ErrorBody::new(
            ErrorKind::TooLarge,
            format!("request body over {MAX_BODY} bytes"),
        )),
        Ok(Err(_)) => Err(ErrorBody::new(
            ErrorKind::BadRequest,
            "unreadable request body",
        )),
        Ok(Ok(c)) => Ok(Zeroizing::new(c.to_bytes().to_vec())),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ErrorBody> {
    serde_json::from_slice(body).map_err(|e| {
        ErrorBody::new(
            ErrorKind::BadRequest,
            format!(
                "malformed request body at line {} column {}",
                e.line(),
                e.column()
            ),
        )
    })
}

fn creds(outcome: &Result<Arc<crate::session::Session>, ErrorBody>) -> Resp {
    match outcome {
        Ok(s) => {
            let body = Bytes::from_owner(s.process_json());
            with_json_type(Response::new(Full::new(body)))
        }
        Err(e) => error(e),
    }
}

fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::MfaRequired | ErrorKind::MfaInvalid => StatusCode::UNAUTHORIZED,
        ErrorKind::MfaReused | ErrorKind::MfaThrottled => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::UnknownProfile | ErrorKind::NoKey => StatusCode::NOT_FOUND,
        ErrorKind::KeyRevoked | ErrorKind::AccessDenied => StatusCode::FORBIDDEN,
        ErrorKind::Keychain | ErrorKind::KeyLocked => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::BadRequest | ErrorKind::ProtocolMismatch => StatusCode::BAD_REQUEST,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Config | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(e: &ErrorBody) -> Resp {
    json(status_for(e.kind), e)
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = with_json_type(Response::new(Full::new(Bytes::from(bytes))));
    *resp.status_mut() = status;
    resp
}

fn with_json_type(mut resp: Resp) -> Resp {
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
