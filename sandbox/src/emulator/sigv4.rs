//! Signature Version 4 as AWS checks it, on every request a client sends: the
//! `Authorization` header or a presigned URL's `X-Amz-Signature`, recomputed by the
//! `aws-sigv4` crate from the request parts and the key's secret; the session token
//! bound to its key; AWS's 15-minute window; S3's `x-amz-content-sha256` against the
//! body, and each chunk of a streaming upload ([`super::chunked`]).
//!
//! Keys the emulator does not know are left to [`super::identify`], which refuses them
//! (or, with enforcement off, takes them as the root's, as moto does).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use hyper::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::emulator::chunked;
use crate::emulator::state::{Emulator, KeySecret};
use crate::emulator::wire::Protocol;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// AWS's window either side of its clock.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest a presigned URL may live (seven days).
const MAX_EXPIRES: u64 = 604_800;
const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Where the signature travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Header,
    Query { expires: u64 },
}

/// What a request says about its signature.
#[derive(Debug, Clone)]
pub struct Signed {
    pub key_id: String,
    pub region: String,
    pub service: String,
    signed_headers: Vec<String>,
    signature: String,
    location: Location,
}

/// Why a signature is refused; [`refusal`] words it as the service does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The header or the presigned query lacks a part, or a part does not parse.
    Malformed(&'static str),
    /// No `X-Amz-Date` (nor a parseable one).
    MissingDate,
    /// The session token is missing, another key's, or sent with a long-term key.
    BadToken,
    /// Outside the window: `Signature expired` or `Signature not yet current`.
    Skewed {
        expired: bool,
        date: String,
        now: String,
    },
    /// A presigned URL past its `X-Amz-Expires`.
    PresignExpired,
    Mismatch,
    /// The body does not hash to `x-amz-content-sha256`.
    BodyHash,
    /// A streaming body that does not decode, or ends early.
    IncompleteBody,
}

/// The signature of a request: `None` without any (anonymous), an error when it is
/// there but malformed.
pub fn parse(parts: &Parts) -> Result<Option<Signed>, Failure> {
    if let Some(auth) = parts.headers.get("authorization") {
        let auth = auth
            .to_str()
            .map_err(|_| Failure::Malformed("the header is not text"))?;
        return parse_header(auth).map(Some);
    }
    let query = parts.uri.query().unwrap_or("");
    let param = |name: &str| query_param(query, name);
    if param("X-Amz-Signature").is_none() && param("X-Amz-Credential").is_none() {
        return Ok(None);
    }
    if param("X-Amz-Algorithm").as_deref() != Some(ALGORITHM) {
        return Err(Failure::Malformed(
            "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
        ));
    }
    let expires = param("X-Amz-Expires")
        .and_then(|e| e.parse::<u64>().ok())
        .filter(|e| *e <= MAX_EXPIRES)
        .ok_or(Failure::Malformed(
            "X-Amz-Expires must be a number of seconds up to 604800",
        ))?;
    let (Some(credential), Some(signed), Some(signature)) = (
        param("X-Amz-Credential"),
        param("X-Amz-SignedHeaders"),
        param("X-Amz-Signature"),
    ) else {
        return Err(Failure::Malformed(
            "a presigned URL needs X-Amz-Credential, X-Amz-SignedHeaders and X-Amz-Signature",
        ));
    };
    scoped(&credential, &signed, signature, Location::Query { expires }).map(Some)
}

fn parse_header(auth: &str) -> Result<Signed, Failure> {
    let rest = auth
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or(Failure::Malformed("the algorithm must be AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(Failure::Malformed(
            "the header needs Credential, SignedHeaders and Signature",
        ));
    };
    scoped(credential, signed, signature.to_owned(), Location::Header)
}

/// `KEY/DATE/REGION/SERVICE/aws4_request`, and the signed header names.
fn scoped(
    credential: &str,
    signed: &str,
    signature: String,
    location: Location,
) -> Result<Signed, Failure> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, "aws4_request"] = parts[..] else {
        return Err(Failure::Malformed(
            "the Credential must be KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
        ));
    };
    if key.is_empty() || date.len() != 8 || region.is_empty() || service.is_empty() {
        return Err(Failure::Malformed(
            "the Credential must be KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
        ));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(String::is_empty) || signature.is_empty() {
        return Err(Failure::Malformed(
            "SignedHeaders and Signature must not be empty",
        ));
    }
    Ok(Signed {
        key_id: key.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature,
        location,
    })
}

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a signed request against the secret the emulator knows for its key.
pub fn verify(emu: &Emulator, parts: &Parts, body: &[u8], s: &Signed) -> Result<(), Failure> {
    let Some(known) = emu.signing_secret(&s.key_id) else {
        return Ok(());
    };
    let query = parts.uri.query().unwrap_or("");
    let sent_token = match s.location {
        Location::Header => header(parts, "x-amz-security-token").map(str::to_owned),
        Location::Query { .. } => query_param(query, "X-Amz-Security-Token"),
    };
    check_token(&known, sent_token.as_deref())?;
    let date = match s.location {
        Location::Header => header(parts, "x-amz-date").map(str::to_owned),
        Location::Query { .. } => query_param(query, "X-Amz-Date"),
    }
    .ok_or(Failure::MissingDate)?;
    let time = chrono::NaiveDateTime::parse_from_str(&date, DATE_FORMAT)
        .map_err(|_| Failure::MissingDate)?
        .and_utc();
    let time = SystemTime::from(time);
    check_window(emu.aws_time(), time, s.location)?;

    let payload = header(parts, "x-amz-content-sha256");
    let creds = Credentials::new(
        &s.key_id,
        known.secret.as_str(),
        sent_token,
        None,
        "keyward-emulator",
    );
    let identity: Identity = creds.into();
    let params = |settings| {
        v4::SigningParams::builder()
            .identity(&identity)
            .region(&s.region)
            .name(&s.service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|_| Failure::Malformed("the Credential scope is incomplete"))
    };
    let computed = recompute(parts, body, s, payload, params(settings(parts, s))?)?;
    if !same(&computed, &s.signature) {
        return Err(Failure::Mismatch);
    }
    match payload {
        None | Some("UNSIGNED-PAYLOAD" | "STREAMING-UNSIGNED-PAYLOAD-TRAILER") => Ok(()),
        Some(chunked::SIGNED | chunked::SIGNED_TRAILER) => {
            let trailer = payload == Some(chunked::SIGNED_TRAILER);
            chunked::verify(
                body,
                &s.signature,
                &params(SigningSettings::default())?,
                trailer,
            )
        }
        Some(hash) => {
            let actual = data_encoding::HEXLOWER.encode(&Sha256::digest(body));
            if same(&actual, &hash.to_ascii_lowercase()) {
                Ok(())
            } else {
                Err(Failure::BodyHash)
            }
        }
    }
}

/// A session's token must be its own; a long-term key carries none.
fn check_token(known: &KeySecret, sent: Option<&str>) -> Result<(), Failure> {
    match (&known.token, sent) {
        (None, None) => Ok(()),
        (Some(mine), Some(sent)) if same(mine, sent) => Ok(()),
        _ => Err(Failure::BadToken),
    }
}

fn check_window(now: SystemTime, time: SystemTime, location: Location) -> Result<(), Failure> {
    let fmt = |t: SystemTime| {
        chrono::DateTime::<chrono::Utc>::from(t)
            .format(DATE_FORMAT)
            .to_string()
    };
    let skewed = |expired| Failure::Skewed {
        expired,
        date: fmt(time),
        now: fmt(now),
    };
    if time > now + WINDOW {
        return Err(skewed(false));
    }
    match location {
        Location::Header if time + WINDOW < now => Err(skewed(true)),
        Location::Query { expires } if time + Duration::from_secs(expires) < now => {
            Err(Failure::PresignExpired)
        }
        _ => Ok(()),
    }
}

/// S3 signs the path as sent; every other service normalizes and encodes it again.
fn settings(parts: &Parts, s: &Signed) -> SigningSettings {
    let mut settings = SigningSettings::default();
    // Exactly the headers the client signed: none left out by name.
    settings.excluded_headers = Some(Vec::new());
    if s.service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let token_signed = s.signed_headers.iter().any(|h| h == "x-amz-security-token");
    if let Location::Query { expires } = s.location {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
    } else if !token_signed && parts.headers.contains_key("x-amz-security-token") {
        settings.session_token_mode = SessionTokenMode::Exclude;
    }
    settings
}

/// The signature `aws-sigv4` computes for this request and secret.
fn recompute(
    parts: &Parts,
    body: &[u8],
    s: &Signed,
    payload: Option<&str>,
    params: v4::SigningParams<'_, SigningSettings>,
) -> Result<String, Failure> {
    let host = header(parts, "host").unwrap_or("localhost");
    let mut uri = format!("http://{host}{}", parts.uri.path());
    let query = parts.uri.query().unwrap_or("");
    let query = match s.location {
        Location::Header => query.to_owned(),
        // The signer adds the X-Amz-* parameters back itself.
        Location::Query { .. } => without_signature_params(query),
    };
    if !query.is_empty() {
        uri = format!("{uri}?{query}");
    }
    let mut headers: Vec<(&str, String)> = Vec::new();
    // The token goes in through the credentials, so that the crate's logs redact it.
    for name in s
        .signed_headers
        .iter()
        .filter(|h| *h != "x-amz-security-token")
    {
        for value in parts.headers.get_all(name.as_str()) {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers.push((name.as_str(), value));
        }
    }
    let body = match (payload, s.location) {
        (Some(p), _) => SignableBody::Precomputed(p.to_owned()),
        (None, Location::Query { .. }) if s.service == "s3" => SignableBody::UnsignedPayload,
        (None, _) => SignableBody::Bytes(body),
    };
    let req = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        body,
    )
    .map_err(|_| Failure::Mismatch)?;
    let params = params.into();
    let out = sign(req, &params).map_err(|_| Failure::Mismatch)?;
    Ok(out.signature().to_owned())
}

/// The query minus the presigning parameters, each other pair kept as sent.
fn without_signature_params(query: &str) -> String {
    const OURS: [&str; 7] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    ];
    query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            !pair.is_empty() && !OURS.contains(&key.as_ref())
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// How each protocol words a refusal: `(status, code, message)`. KMS (JSON) answers
/// 400 with its own codes; STS and IAM (query) 403, and 400 for an incomplete one.
pub fn refusal(protocol: Protocol, f: &Failure) -> (u16, &'static str, String) {
    if protocol == Protocol::RestXml {
        return s3_refusal(f);
    }
    let json = protocol == Protocol::Json;
    let pick = |query: &'static str, kms: &'static str| if json { kms } else { query };
    let denied = if json { 400 } else { 403 };
    match f {
        Failure::IncompleteBody => (
            400,
            "IncompleteBody",
            "The request body terminated unexpectedly".into(),
        ),
        Failure::Malformed(why) => (
            400,
            pick("IncompleteSignature", "IncompleteSignatureException"),
            format!("The authorization is malformed: {why}."),
        ),
        Failure::MissingDate => (
            400,
            pick("IncompleteSignature", "IncompleteSignatureException"),
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        ),
        Failure::BadToken => (
            denied,
            pick("InvalidClientTokenId", "UnrecognizedClientException"),
            "The security token included in the request is invalid.".into(),
        ),
        Failure::Skewed { expired, date, now } => (
            denied,
            pick("SignatureDoesNotMatch", "InvalidSignatureException"),
            skew_words(*expired, date, now),
        ),
        Failure::PresignExpired => (
            denied,
            pick("SignatureDoesNotMatch", "InvalidSignatureException"),
            "Signature expired: the presigned request is past its X-Amz-Expires.".into(),
        ),
        Failure::Mismatch | Failure::BodyHash => (
            denied,
            pick("SignatureDoesNotMatch", "InvalidSignatureException"),
            MISMATCH.into(),
        ),
    }
}

/// S3's words (REST-XML `<Error><Code>`).
fn s3_refusal(f: &Failure) -> (u16, &'static str, String) {
    let (status, code, message) = match f {
        Failure::Malformed(why) => {
            let m = format!("The authorization header is malformed; {why}.");
            return (400, "AuthorizationHeaderMalformed", m);
        }
        Failure::MissingDate => (403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"),
        Failure::BadToken => (400, "InvalidToken", "The provided token is malformed or otherwise invalid."),
        Failure::Skewed { .. } => (403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."),
        Failure::PresignExpired => (403, "AccessDenied", "Request has expired"),
        Failure::Mismatch => (403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."),
        Failure::BodyHash => (400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."),
        Failure::IncompleteBody => (400, "IncompleteBody", "The request body terminated unexpectedly"),
    };
    (status, code, message.to_owned())
}

/// AWS's words for a date outside the window, as STS, IAM and KMS say them.
fn skew_words(expired: bool, date: &str, now: &str) -> String {
    if expired {
        format!(
            "Signature expired: {date} is now earlier than {} ({now} - 15 min.)",
            shift(now, -15)
        )
    } else {
        format!(
            "Signature not yet current: {date} is still later than {} ({now} + 15 min.)",
            shift(now, 15)
        )
    }
}

/// `now` (`YYYYMMDDTHHMMSSZ`) moved by `minutes`, for AWS's skew message.
fn shift(now: &str, minutes: i64) -> String {
    chrono::NaiveDateTime::parse_from_str(now, DATE_FORMAT)
        .map(|t| {
            (t + chrono::Duration::minutes(minutes))
                .format(DATE_FORMAT)
                .to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
