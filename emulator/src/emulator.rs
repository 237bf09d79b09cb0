//! The AWS emulation that moto lacks, as a reverse proxy in front of it:
//!
//! - it learns TOTP seeds from CreateVirtualMFADevice answers, hands out codes for a
//!   device (the user's phone), and rejects wrong or reused codes on
//!   GetSessionToken/AssumeRole the way AWS does;
//! - it mints fresh random credentials for GetSessionToken (moto returns the same fixed
//!   ones every time) and maps them back to the caller's user, so GetCallerIdentity
//!   answers with the user's ARN as AWS does;
//! - it refuses a deleted or inactive access key with InvalidClientTokenId (sessions
//!   issued from it live on, as in AWS);
//! - it counts calls per Action and rewrites moto's `<Errors>` error envelope.
//!
//! An [`Interceptor`] sees each request first: the test suite injects faults there.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::Rng;

use crate::totp;

/// What an [`Interceptor`] returns: an answer in place of the emulator's, or none.
pub type Intercepted<'a> = Pin<Box<dyn Future<Output = Option<Response<Full<Bytes>>>> + Send + 'a>>;

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

#[derive(Default)]
struct Inner {
    counts: HashMap<String, usize>,
    seeds: HashMap<String, Vec<u8>>,
    used_codes: HashSet<(String, String)>,
    reused_code_attempts: usize,
    invalid_code_attempts: usize,
    /// Session access key id -> the long-term key id that asked for it.
    session_owner: HashMap<String, String>,
    /// Every TokenCode seen, to let tests check what was sent.
    codes_seen: Vec<String>,
    /// Secret keys and tokens of every session handed out.
    issued: Vec<String>,
    /// Codes that were valid when seen: these are the secrets.
    valid_codes: Vec<String>,
    /// Long-term keys AWS would not know any more (deleted or revoked).
    rejected_keys: HashSet<String>,
    /// Long-term keys created through the emulator: id -> secret (for tests that sign by hand).
    key_secrets: HashMap<String, String>,
    /// Device name -> last TOTP counter handed out by [`Emulator::next_code`].
    handed_out: HashMap<String, u64>,
}

/// The emulator's state, shared with whoever runs it.
#[derive(Default, Clone)]
pub struct Emulator(Arc<Mutex<Inner>>);

impl Emulator {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().expect("emulator state")
    }

    /// How many requests with this Action reached the proxy (faulted ones included).
    pub fn count(&self, action: &str) -> usize {
        self.inner().counts.get(action).copied().unwrap_or(0)
    }

    /// Calls per action, sorted.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<_> = self
            .inner()
            .counts
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort();
        v
    }

    /// Every request that reached the proxy, whatever its action.
    pub fn total(&self) -> usize {
        self.inner().counts.values().sum()
    }

    /// The MFA seeds learned so far, base32: secrets too.
    pub fn seeds_base32(&self) -> Vec<String> {
        self.inner()
            .seeds
            .values()
            .map(|s| data_encoding::BASE32_NOPAD.encode(s))
            .collect()
    }

    /// From now on, requests signed with this key (or its sessions) get
    /// InvalidClientTokenId, as AWS answers for a deleted key.
    pub fn reject_key(&self, access_key_id: &str) {
        self.inner().rejected_keys.insert(access_key_id.to_owned());
    }

    /// The secret of a long-term key created through the proxy.
    pub fn secret_of(&self, access_key_id: &str) -> Option<String> {
        self.inner().key_secrets.get(access_key_id).cloned()
    }

    /// A current TOTP code for the device whose serial ends in `/<device>`, never one
    /// handed out before (like a person waiting for the next code). `None` when the
    /// device is unknown; `Some(Err(wait))` when the caller must wait for the next step.
    pub fn next_code(&self, device: &str) -> Option<Result<String, Duration>> {
        let mut inner = self.inner();
        let seed = inner
            .seeds
            .iter()
            .find(|(serial, _)| serial.rsplit('/').next() == Some(device))
            .map(|(_, s)| s.clone())?;
        let now = totp::now_step();
        // AWS accepts one step either side, so a t-1 code still works, but only while
        // step t lasts: hand one out only with 10 s or more of the step left, so it cannot
        // expire between here and STS. Codes for t and t+1 stay valid for 30 s or more.
        let floor = if totp::now_secs() % totp::STEP < totp::STEP - 10 {
            now - 1
        } else {
            now
        };
        let counter = inner
            .handed_out
            .get(device)
            .map_or(floor, |l| (l + 1).max(floor));
        if counter > now + 1 {
            let secs = totp::STEP - totp::now_secs() % totp::STEP;
            return Some(Err(Duration::from_secs(secs)));
        }
        inner.handed_out.insert(device.to_owned(), counter);
        Some(Ok(totp::code(&seed, counter)))
    }

    pub fn seed(&self, serial: &str) -> Option<Vec<u8>> {
        self.inner().seeds.get(serial).cloned()
    }

    pub fn reused_code_attempts(&self) -> usize {
        self.inner().reused_code_attempts
    }

    pub fn invalid_code_attempts(&self) -> usize {
        self.inner().invalid_code_attempts
    }

    /// Secret access keys and session tokens of every session that went through.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.inner().issued.clone()
    }

    /// Codes that were valid TOTP codes when they arrived (the secret ones).
    pub fn valid_codes(&self) -> Vec<String> {
        self.inner().valid_codes.clone()
    }

    pub fn codes_seen(&self) -> Vec<String> {
        self.inner().codes_seen.clone()
    }
}

/// Serves on `listener`, forwarding to `upstream` (moto), until `stop` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    emu: Emulator,
    upstream: String,
    faults: Arc<dyn Interceptor>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a { Ok(s) => s, Err(_) => continue },
            _ = &mut stop => break,
        };
        let emu = emu.clone();
        let client = client.clone();
        let upstream = upstream.clone();
        let faults = faults.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let emu = emu.clone();
                let client = client.clone();
                let upstream = upstream.clone();
                let faults = faults.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        handle(req, &emu, faults.as_ref(), &client, &upstream).await,
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// An AWS error in the standard query-protocol envelope.
pub fn aws_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert("content-type", "text/xml".parse().expect("static"));
    r
}

/// Form fields of a query-protocol request (body first, then the URL query).
fn form_fields(body: &[u8], query: Option<&str>) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if let Some(q) = query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()).into_owned() {
            map.entry(k).or_insert(v);
        }
    }
    map
}

/// A name for requests of the REST (S3) and JSON (KMS) protocols, which carry no Action.
fn action_of(parts: &hyper::http::request::Parts) -> String {
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let q = parts.uri.query().unwrap_or("");
    let sub = |name: &str| {
        q.split('&')
            .any(|kv| kv == name || kv.starts_with(&format!("{name}=")))
    };
    match (parts.method.as_str(), sub("policy")) {
        ("GET", true) => "GetBucketPolicy".into(),
        ("PUT", true) => "PutBucketPolicy".into(),
        ("DELETE", true) => "DeleteBucketPolicy".into(),
        (m, _) => format!("S3:{m}"),
    }
}

/// `GET /__keyward_emulator/code?device=NAME`: the next code of a device, waiting for
/// the next TOTP step when the current ones were all handed out.
async fn code_for_device(emu: &Emulator, query: &str) -> Response<Full<Bytes>> {
    let device = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "device")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
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

fn access_key_of(auth: &str) -> Option<&str> {
    let start = auth.find("Credential=")? + "Credential=".len();
    let rest = &auth[start..];
    Some(&rest[..rest.find('/')?])
}

fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let s = xml.find(&open)? + open.len();
    let e = s + xml[s..].find(&close)?;
    Some(&xml[s..e])
}

fn random_token(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// Checks an MFA code like AWS: one step either side, never twice.
#[allow(clippy::result_large_err)]
fn check_mfa(emu: &Emulator, serial: &str, code: &str) -> Result<(), Response<Full<Bytes>>> {
    let mut inner = emu.inner();
    inner.codes_seen.push(code.to_owned());
    let Some(seed) = inner.seeds.get(serial).cloned() else {
        inner.invalid_code_attempts += 1;
        return Err(aws_error(403, "AccessDenied", "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user."));
    };
    let key = (serial.to_owned(), code.to_owned());
    if inner.used_codes.contains(&key) {
        inner.reused_code_attempts += 1;
        return Err(aws_error(
            403,
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
        ));
    }
    let now = totp::now_step();
    let valid = [now - 1, now, now + 1]
        .iter()
        .any(|&c| totp::code(&seed, c) == code);
    if !valid {
        inner.invalid_code_attempts += 1;
        return Err(aws_error(
            403,
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
        ));
    }
    inner.used_codes.insert(key);
    inner.valid_codes.push(code.to_owned());
    Ok(())
}

async fn handle(
    req: Request<Incoming>,
    emu: &Emulator,
    faults: &dyn Interceptor,
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &str,
) -> Response<Full<Bytes>> {
    let (mut parts, body) = req.into_parts();
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
    let fields = form_fields(&body, parts.uri.query());
    let action = fields
        .get("Action")
        .cloned()
        .unwrap_or_else(|| action_of(&parts));
    let caller_key = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(access_key_of)
        .map(str::to_owned);

    *emu.inner().counts.entry(action.clone()).or_default() += 1;
    // AWS refuses a deleted or inactive key; sessions issued from it live on (which
    // is why revocation attaches a deny-all policy first).
    if let Some(key) = &caller_key {
        if emu.inner().rejected_keys.contains(key) {
            return aws_error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            );
        }
    }
    if let Some(resp) = faults.before(&action).await {
        return resp;
    }

    if matches!(action.as_str(), "GetSessionToken" | "AssumeRole") {
        if let (Some(serial), Some(code)) = (fields.get("SerialNumber"), fields.get("TokenCode")) {
            if let Err(resp) = check_mfa(emu, serial, code) {
                return resp;
            }
        }
    }

    // Requests signed with a GetSessionToken session act as the user that made it.
    if let Some(key) = &caller_key {
        let owner = emu.inner().session_owner.get(key).cloned();
        if let Some(owner) = owner {
            if let Some(v) = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
            {
                let rewritten = v.replacen(key.as_str(), &owner, 1);
                if let Ok(h) = rewritten.parse() {
                    parts.headers.insert("authorization", h);
                }
            }
        }
    }

    let uri = format!(
        "{upstream}{}",
        parts
            .uri
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str)
    );
    let mut fwd = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            fwd = fwd.header(name, value);
        }
    }
    let Ok(fwd) = fwd.body(Full::new(body)) else {
        return aws_error(500, "InternalFailure", "proxy could not build the request");
    };
    let resp = match client.request(fwd).await {
        Ok(r) => r,
        Err(e) => return aws_error(502, "ServiceUnavailable", &format!("moto unreachable: {e}")),
    };
    let (mut rparts, rbody) = resp.into_parts();
    let Ok(rbody) = rbody
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    else {
        return aws_error(502, "ServiceUnavailable", "unreadable moto response");
    };
    let mut text = String::from_utf8_lossy(&rbody).into_owned();

    if rparts.status.is_success() {
        match action.as_str() {
            "CreateVirtualMFADevice" => {
                if let (Some(serial), Some(seed)) = (
                    xml_value(&text, "SerialNumber"),
                    xml_value(&text, "Base32StringSeed"),
                ) {
                    if let Some(seed) = totp::seed_from_wire(seed) {
                        emu.inner().seeds.insert(serial.to_owned(), seed);
                    }
                }
            }
            "GetSessionToken" => {
                text = fresh_session(emu, &text, caller_key.as_deref());
            }
            "CreateAccessKey" => {
                if let (Some(id), Some(secret)) = (
                    xml_value(&text, "AccessKeyId"),
                    xml_value(&text, "SecretAccessKey"),
                ) {
                    emu.inner()
                        .key_secrets
                        .insert(id.to_owned(), secret.to_owned());
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
        // Every secret a response carries is a canary: session keys and tokens, and
        // the long-term secret of a new access key.
        let mut inner = emu.inner();
        for tag in ["SecretAccessKey", "SessionToken"] {
            if let Some(v) = xml_value(&text, tag) {
                inner.issued.push(v.to_owned());
            }
        }
    } else if text.contains("<Errors>") {
        text = text.replace("<Errors>", "").replace("</Errors>", "");
    }
    rparts.headers.remove("content-length");
    Response::from_parts(rparts, Full::new(Bytes::from(text)))
}

/// moto answers GetSessionToken with the same fixed credentials every time; AWS never does.
fn fresh_session(emu: &Emulator, xml: &str, caller: Option<&str>) -> String {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (Some(id), Some(secret), Some(token)) = (
        xml_value(xml, "AccessKeyId"),
        xml_value(xml, "SecretAccessKey"),
        xml_value(xml, "SessionToken"),
    ) else {
        return xml.to_owned();
    };
    let new_id = format!("ASIA{}", random_token(16, UPPER));
    let new_secret = random_token(40, B64);
    let new_token = random_token(300, B64);
    if let Some(owner) = caller {
        emu.inner()
            .session_owner
            .insert(new_id.clone(), owner.to_owned());
    }
    xml.replacen(
        &format!("<AccessKeyId>{id}</AccessKeyId>"),
        &format!("<AccessKeyId>{new_id}</AccessKeyId>"),
        1,
    )
    .replacen(
        &format!("<SecretAccessKey>{secret}</SecretAccessKey>"),
        &format!("<SecretAccessKey>{new_secret}</SecretAccessKey>"),
        1,
    )
    .replacen(
        &format!("<SessionToken>{token}</SessionToken>"),
        &format!("<SessionToken>{new_token}</SessionToken>"),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_is_read_from_sigv4_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIAXYZ/20261129/us-east-1/sts/aws4_request, SignedHeaders=host";
        assert_eq!(access_key_of(h), Some("AKIAXYZ"));
    }

    #[test]
    fn form_fields_merge_body_and_query() {
        let f = form_fields(
            b"Action=GetSessionToken&TokenCode=123456",
            Some("Version=2011-06-15"),
        );
        assert_eq!(f["Action"], "GetSessionToken");
        assert_eq!(f["Version"], "2011-06-15");
    }
}
