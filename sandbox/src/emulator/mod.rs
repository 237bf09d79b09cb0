//! The AWS emulation that moto lacks, as a reverse proxy in front of it:
//!
//! - **IAM authorization**: every request is judged by iam-rs with the full request
//!   context ([`crate::authz`]); AccessDenied comes back as AWS words it;
//! - **sessions**: fresh credentials for GetSessionToken, remembered with their MFA,
//!   issue time and expiry; AssumeRole with trust policies, SourceIdentity and tags;
//! - **MFA**: TOTP codes checked one step either side and never twice; the emulator
//!   also plays the phone (`/__keyward_emulator/code?device=NAME`);
//! - **the key lifecycle**: a deleted or inactive key gets InvalidClientTokenId, while
//!   sessions issued from it live on, as in AWS;
//! - call counts, and an [`Interceptor`] that sees each request first (fault injection).

// A refusal is the HTTP response itself, built once per refused request: boxing it
// buys nothing.
#![allow(clippy::result_large_err)]

pub mod authorize;
pub mod chunked;
pub mod mfa;
pub mod report;
pub mod sigv4;
pub mod state;
pub mod sts;
pub mod upstream;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

pub use state::{Caller, Decision, Emulator, Session, SessionKind};
pub use wire::Protocol;

use crate::authz::calls::{self, Call};
use crate::emulator::authorize::authorize;
use crate::emulator::state::KeyProblem;
use crate::emulator::upstream::{Answer, Moto};
use crate::emulator::wire::{credential_scope, error, form_fields, xml_value};

type Resp = Response<Full<Bytes>>;

/// What an [`Interceptor`] returns: an answer in place of the emulator's, or none.
pub type Intercepted<'a> = Pin<Box<dyn Future<Output = Option<Resp>> + Send + 'a>>;

/// Sees every request before the emulator does; may answer it instead.
pub trait Interceptor: Send + Sync {
    fn before<'a>(&'a self, action: &'a str) -> Intercepted<'a>;
}

/// No interception: a plain emulator.
pub struct NoFaults;

impl Interceptor for NoFaults {
    fn before<'a>(&'a self, _action: &'a str) -> Intercepted<'a> {
        Box::pin(async { None })
    }
}

/// An AWS error in the query-protocol envelope (IAM and STS), for interceptors.
pub fn aws_error(status: u16, code: &str, message: &str) -> Resp {
    error(Protocol::Query, status, code, message)
}

/// Serves on `listener`, forwarding to `upstream` (moto), until `stop` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    emu: Emulator,
    upstream: String,
    faults: Arc<dyn Interceptor>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let moto = Moto::new(&upstream);
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a { Ok(s) => s, Err(_) => continue },
            _ = &mut stop => break,
        };
        let emu = emu.clone();
        let moto = moto.clone();
        let faults = faults.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let emu = emu.clone();
                let moto = moto.clone();
                let faults = faults.clone();
                async move {
                    let mut resp = handle(req, &emu, faults.as_ref(), &moto).await;
                    // AWS's clock, which a skewed computer's disagrees with.
                    let date = chrono::DateTime::<chrono::Utc>::from(emu.aws_time())
                        .format("%a, %d %b %Y %H:%M:%S GMT")
                        .to_string();
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&date) {
                        resp.headers_mut().insert(hyper::header::DATE, v);
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// `GET /__keyward_emulator/code?device=NAME`: the next code of a device, waiting for
/// the next TOTP step when the current ones were all handed out.
async fn code_for_device(emu: &Emulator, query: &str) -> Resp {
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let device = param("device").unwrap_or_default();
    // An authenticator's view: the current code, repeated within its step.
    if let Some(clock) = param("current") {
        if let Some(code) = emu.current_code(&device, clock == "host") {
            return Response::new(Full::new(Bytes::from(code)));
        }
    }
    for _ in 0..80 {
        match emu.next_code(&device) {
            Some(Ok(code)) => return Response::new(Full::new(Bytes::from(code))),
            Some(Err(wait)) => tokio::time::sleep(wait.min(Duration::from_millis(500))).await,
            None => break,
        }
    }
    let mut r = Response::new(Full::new(Bytes::from_static(b"no such MFA device")));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

async fn handle(
    req: Request<Incoming>,
    emu: &Emulator,
    faults: &dyn Interceptor,
    moto: &Moto,
) -> Resp {
    let (parts, body) = req.into_parts();
    let Ok(body) = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    else {
        return aws_error(400, "BadRequest", "unreadable body");
    };
    if parts.uri.path() == "/__keyward_emulator/code" {
        return code_for_device(emu, parts.uri.query().unwrap_or("")).await;
    }
    let json_target = parts.headers.contains_key("x-amz-target");
    let signed = match sigv4::parse(&parts) {
        Ok(s) => s,
        Err(f) => return refuse_signature(guess_protocol(&parts, &body), &f),
    };
    let (key_id, service) = signed
        .as_ref()
        .map_or(("", "s3"), |s| (s.key_id.as_str(), s.service.as_str()));
    let protocol = Protocol::of(service, json_target);
    // Refused before anything counts or changes, as AWS refuses before the service.
    if let Some(s) = &signed {
        if let Err(f) = sigv4::verify(emu, &parts, &body, s) {
            return refuse_signature(protocol, &f);
        }
    }
    let fields = match protocol {
        Protocol::Query => form_fields(&body, parts.uri.query()),
        _ => std::collections::HashMap::new(),
    };
    let json: Option<serde_json::Value> = (protocol == Protocol::Json)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten();
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let mut call = Call {
        service,
        method: parts.method.as_str(),
        path: &path,
        query: parts.uri.query().unwrap_or(""),
        fields: &fields,
        headers: &parts.headers,
        json: json.as_ref(),
        caller_user: None,
    };
    let action = calls::action_name(&call);
    *emu.inner().counts.entry(action.clone()).or_default() += 1;

    let caller = match identify(emu, key_id, protocol) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(resp) = faults.before(&action).await {
        return resp;
    }
    call.caller_user = caller.user_name();
    if let Caller::User { name } = &caller {
        emu.note_use(name);
    }
    let forward = forward(moto, &parts, &caller, key_id, body.clone());
    match (service, action.as_str()) {
        ("sts", "GetCallerIdentity") => match moto.account().await {
            Ok(account) if !matches!(caller, Caller::Root) || emu.enforcing() => {
                sts::get_caller_identity(&caller, &account)
            }
            _ => answer(forward.await),
        },
        ("sts", "GetSessionToken") => {
            sts::get_session_token(emu, moto, &caller, key_id, &fields, forward).await
        }
        ("sts", "AssumeRole") => sts::assume_role(emu, moto, &caller, &call, forward).await,
        _ => {
            if emu.enforcing() {
                if let Err(r) = authorize(emu, moto, &caller, &call, Vec::new(), &[]).await {
                    return error(protocol, r.status, r.code, &r.message);
                }
                if let Err(r) = object_key_check(emu, moto, &caller, &call).await {
                    return error(protocol, r.status, r.code, &r.message);
                }
            }
            let mut answered = forward.await;
            if let Ok(a) = &mut answered {
                after_success(emu, moto, service, &action, &fields, a).await;
                if service == "iam" {
                    report::patch(emu, &action, a);
                }
            }
            let head = parts.method == hyper::Method::HEAD;
            let length = answered.as_ref().ok().and_then(|a| head_length(head, a));
            let mut resp = answer(answered);
            if let Some(length) = length {
                resp.headers_mut()
                    .insert(hyper::header::CONTENT_LENGTH, length);
            }
            resp
        }
    }
}

/// A HEAD answer's Content-Length is the object's size, as moto says: the body that
/// would have come is not there to count (s3fs, `aws s3 cp … -` and rclone read it).
fn head_length(head: bool, a: &Answer) -> Option<hyper::header::HeaderValue> {
    head.then(|| a.headers.get(hyper::header::CONTENT_LENGTH).cloned())
        .flatten()
}

/// The protocol of a request whose signature did not parse: from what is left of its
/// scope, else its shape (a JSON target, or a form with an `Action`).
fn guess_protocol(parts: &hyper::http::request::Parts, body: &[u8]) -> Protocol {
    let auth = parts.headers.get("authorization");
    let auth = auth.and_then(|v| v.to_str().ok()).unwrap_or_default();
    let json_target = parts.headers.contains_key("x-amz-target");
    if let Some((_, service)) = credential_scope(auth) {
        return Protocol::of(service, json_target);
    }
    if json_target {
        Protocol::Json
    } else if form_fields(body, parts.uri.query()).contains_key("Action") {
        Protocol::Query
    } else {
        Protocol::RestXml
    }
}

fn refuse_signature(protocol: Protocol, f: &sigv4::Failure) -> Resp {
    let (status, code, message) = sigv4::refusal(protocol, f);
    error(protocol, status, code, &message)
}

/// Who signed the request. An unknown key is the root account's while nothing is
/// enforced (moto's own tests sign with anything), and refused once it is.
fn identify(emu: &Emulator, key_id: &str, protocol: Protocol) -> Result<Caller, Resp> {
    match emu.caller(key_id) {
        Ok(c) => Ok(c),
        Err(KeyProblem::Expired) => Err(error(
            protocol,
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        )),
        Err(KeyProblem::Invalid)
            if emu.enforcing() || emu.inner().rejected_keys.contains(key_id) =>
        {
            Err(match protocol {
                Protocol::RestXml => error(
                    protocol,
                    403,
                    "InvalidAccessKeyId",
                    "The AWS Access Key Id you provided does not exist in our records.",
                ),
                _ => error(
                    protocol,
                    403,
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                ),
            })
        }
        Err(KeyProblem::Invalid) => Ok(Caller::Root),
    }
}

/// What a successful call teaches the emulator, and whether moto's account snapshot
/// is stale now.
async fn after_success(
    emu: &Emulator,
    moto: &Moto,
    service: &str,
    action: &str,
    fields: &std::collections::HashMap<String, String>,
    a: &upstream::Answer,
) {
    if (200..300).contains(&a.status) {
        learn(emu, action, fields, a);
        if changes_state(service, action) {
            moto.invalidate().await;
        }
    }
}

/// Reading an SSE-KMS object also needs kms:Decrypt on its key, through S3.
async fn object_key_check(
    emu: &Emulator,
    moto: &Moto,
    caller: &Caller,
    call: &Call<'_>,
) -> Result<(), authorize::Refusal> {
    let (action, bucket, key) = calls::s3_operation(call);
    if call.service != "s3" || action != "s3:GetObject" {
        return Ok(());
    }
    let (Some(b), Some(k)) = (bucket, key) else {
        return Ok(());
    };
    let Some(kms_key) = moto.object_kms_key(&b, &k).await else {
        return Ok(());
    };
    let id = authorize::caller_identity(emu, moto, caller).await?;
    let account = moto.account().await.map_err(|e| authorize::Refusal {
        status: 500,
        code: "InternalFailure",
        message: e,
    })?;
    authorize::check_one(
        emu,
        moto,
        &id,
        &account,
        calls::kms_via_s3("kms:Decrypt", &kms_key),
        &[],
    )
    .await
}

/// Forwards to moto. Requests signed with a GetSessionToken session are shown to moto
/// under the user's long-term key, so moto answers as that user.
async fn forward(
    moto: &Moto,
    parts: &hyper::http::request::Parts,
    caller: &Caller,
    key_id: &str,
    body: Bytes,
) -> Result<Answer, String> {
    let uri = format!(
        "{}{}",
        moto.url(),
        parts
            .uri
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str)
    );
    let mut fwd = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in &parts.headers {
        if matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            continue;
        }
        if name == "authorization" {
            if let Caller::Session(s) = caller {
                if let SessionKind::User { long_term_key, .. } = &s.kind {
                    let v = value
                        .to_str()
                        .unwrap_or_default()
                        .replacen(key_id, long_term_key, 1);
                    fwd = fwd.header(name, v);
                    continue;
                }
            }
        }
        fwd = fwd.header(name, value);
    }
    let req = fwd.body(Full::new(body)).map_err(|e| e.to_string())?;
    moto.send(req).await
}

fn answer(a: Result<Answer, String>) -> Resp {
    match a {
        Ok(a) => {
            let mut a = a;
            let text = String::from_utf8_lossy(&a.body);
            // moto sometimes wraps IAM errors in <Errors>; AWS does not.
            if a.status >= 400 && text.contains("<Errors>") {
                a.body = Bytes::from(text.replace("<Errors>", "").replace("</Errors>", ""));
            }
            sts::passthrough(a)
        }
        Err(e) => aws_error(502, "ServiceUnavailable", &format!("moto unreachable: {e}")),
    }
}

/// What a successful answer teaches the emulator: MFA seeds, keys and their fate.
fn learn(
    emu: &Emulator,
    action: &str,
    fields: &std::collections::HashMap<String, String>,
    a: &Answer,
) {
    let text = String::from_utf8_lossy(&a.body);
    match action {
        "CreateVirtualMFADevice" => {
            if let (Some(serial), Some(seed)) = (
                xml_value(&text, "SerialNumber"),
                xml_value(&text, "Base32StringSeed"),
            ) {
                if let Some(seed) = crate::totp::seed_from_wire(seed) {
                    emu.learn_seed(serial, seed);
                }
            }
        }
        "CreateAccessKey" => {
            if let (Some(user), Some(id), Some(secret)) = (
                xml_value(&text, "UserName"),
                xml_value(&text, "AccessKeyId"),
                xml_value(&text, "SecretAccessKey"),
            ) {
                emu.inner()
                    .user_keys
                    .insert(id.to_owned(), (user.to_owned(), secret.to_owned()));
            }
        }
        "DeleteAccessKey" => {
            if let Some(id) = fields.get("AccessKeyId") {
                emu.inner().rejected_keys.insert(id.clone());
            }
        }
        "UpdateAccessKey" => {
            if let Some(id) = fields.get("AccessKeyId") {
                let mut inner = emu.inner();
                if fields.get("Status").map(String::as_str) == Some("Inactive") {
                    inner.rejected_keys.insert(id.clone());
                } else {
                    inner.rejected_keys.remove(id);
                }
            }
        }
        _ => {}
    }
    sts::remember_secrets(emu, &text);
}

/// Whether a successful request can change what authorization reads.
fn changes_state(service: &str, action: &str) -> bool {
    let read = ["Get", "List", "Describe", "Head", "Generate", "Simulate"]
        .iter()
        .any(|p| action.starts_with(p));
    match service {
        "sts" => false,
        "s3" => matches!(
            action,
            "PutBucketPolicy" | "DeleteBucketPolicy" | "CreateBucket" | "DeleteBucket"
        ),
        "kms" => matches!(
            action,
            "PutKeyPolicy"
                | "CreateKey"
                | "CreateAlias"
                | "UpdateAlias"
                | "DeleteAlias"
                | "ScheduleKeyDeletion"
        ),
        // IAM and anything else: whatever is not a read.
        _ => !read,
    }
}
