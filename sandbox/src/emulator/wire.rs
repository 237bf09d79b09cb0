//! The wire details of AWS's protocols that the emulator reads and writes: form
//! fields, the SigV4 credential scope, XML values and each protocol's error envelope.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

/// How a service talks: IAM and STS use the query protocol, S3 REST-XML, KMS JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Query,
    RestXml,
    Json,
}

impl Protocol {
    pub fn of(service: &str, json_target: bool) -> Self {
        match service {
            "s3" => Protocol::RestXml,
            _ if json_target => Protocol::Json,
            _ => Protocol::Query,
        }
    }
}

/// Form fields of a query-protocol request (body first, then the URL query).
pub fn form_fields(body: &[u8], query: Option<&str>) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if let Some(q) = query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()).into_owned() {
            map.entry(k).or_insert(v);
        }
    }
    map
}

/// `(access key id, service)` from a SigV4 `Authorization` header.
pub fn credential_scope(auth: &str) -> Option<(&str, &str)> {
    let start = auth.find("Credential=")? + "Credential=".len();
    let rest = &auth[start..];
    let scope = &rest[..rest.find([',', ' ']).unwrap_or(rest.len())];
    let mut parts = scope.split('/');
    let key = parts.next()?;
    let service = parts.nth(2)?;
    Some((key, service))
}

pub fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let s = xml.find(&open)? + open.len();
    let e = s + xml[s..].find(&close)?;
    Some(&xml[s..e])
}

/// An AWS error in the envelope of `protocol`.
pub fn error(protocol: Protocol, status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let message = xml_escape(message);
    let (body, content_type) = match protocol {
        Protocol::Query => {
            let kind = if status >= 500 { "Receiver" } else { "Sender" };
            (format!("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>keyward-emulator</RequestId></ErrorResponse>"), "text/xml")
        }
        Protocol::RestXml => (
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>keyward-emulator</RequestId></Error>"),
            "application/xml",
        ),
        Protocol::Json => {
            let code = match code {
                "AccessDenied" => "AccessDeniedException",
                "InvalidClientTokenId" => "UnrecognizedClientException",
                "ExpiredToken" => "ExpiredTokenException",
                "SignatureDoesNotMatch" => "InvalidSignatureException",
                "IncompleteSignature" => "IncompleteSignatureException",
                other => other,
            };
            (serde_json::json!({"__type": code, "message": message}).to_string(), "application/x-amz-json-1.1")
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert("content-type", content_type.parse().expect("static"));
    r
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_scope_names_key_and_service() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIAXYZ/20261129/us-east-1/sts/aws4_request, SignedHeaders=host";
        assert_eq!(credential_scope(h), Some(("AKIAXYZ", "sts")));
        assert_eq!(credential_scope("Bearer x"), None);
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
