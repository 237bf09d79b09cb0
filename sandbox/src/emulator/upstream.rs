//! moto, as the emulator talks to it: forwarding requests, and the reads the
//! authorizer needs (the account's IAM state, bucket and key policies), cached until
//! a request changes state.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::authz::account::Account;

/// moto's answer, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// What the authorizer has read from moto, valid while `generation` is current.
#[derive(Default)]
struct Cache {
    generation: u64,
    account: Option<(u64, Arc<Account>)>,
    buckets: HashMap<String, (u64, Result<Option<Value>, ()>)>,
    keys: HashMap<String, (u64, Option<KeyInfo>)>,
}

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub arn: String,
    pub policy: Value,
}

#[derive(Clone)]
pub struct Moto {
    url: String,
    client: Client<HttpConnector, Full<Bytes>>,
    cache: Arc<Mutex<Cache>>,
}

/// The emulator reads moto as this key; moto, whose own auth is off, takes any.
const READER: &str = "keyward-emulator-reader";

impl Moto {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            cache: Arc::new(Mutex::new(Cache::default())),
        }
    }

    /// Sends a request to moto and reads the whole answer.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Answer, String> {
        let resp: Response<_> = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("moto unreachable: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("unreadable moto response: {e}"))?
            .to_bytes();
        Ok(Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Something changed: every cached read is stale from now on.
    pub async fn invalidate(&self) {
        self.cache.lock().await.generation += 1;
    }

    fn signed(&self, method: Method, path: &str, service: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential={READER}/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
            )
    }

    async fn query(&self, form: &str) -> Result<String, String> {
        let req = self
            .signed(Method::POST, "/", "iam")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form.to_owned())))
            .map_err(|e| e.to_string())?;
        let a = self.send(req).await?;
        let text = String::from_utf8_lossy(&a.body).into_owned();
        if a.status == 200 {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// The whole account, from GetAccountAuthorizationDetails and ListVirtualMFADevices.
    pub async fn account(&self) -> Result<Arc<Account>, String> {
        let generation = {
            let c = self.cache.lock().await;
            if let Some((g, a)) = &c.account {
                if *g == c.generation {
                    return Ok(a.clone());
                }
            }
            c.generation
        };
        let mut account = Account::default();
        let mut marker: Option<String> = None;
        loop {
            let mut form = "Action=GetAccountAuthorizationDetails&Version=2010-05-08".to_owned();
            if let Some(m) = &marker {
                form = form + "&Marker=" + &encode(m);
            }
            marker = account.add_details_page(&self.query(&form).await?)?;
            if marker.is_none() {
                break;
            }
        }
        loop {
            let mut form = "Action=ListVirtualMFADevices&Version=2010-05-08".to_owned();
            if let Some(m) = &marker {
                form = form + "&Marker=" + &encode(m);
            }
            marker = account.add_mfa_page(&self.query(&form).await?)?;
            if marker.is_none() {
                break;
            }
        }
        let account = Arc::new(account);
        self.cache.lock().await.account = Some((generation, account.clone()));
        Ok(account)
    }

    /// A bucket's policy: `Ok(None)` without one, `Err` when the bucket does not exist.
    pub async fn bucket_policy(&self, bucket: &str) -> Result<Option<Value>, ()> {
        let generation = {
            let c = self.cache.lock().await;
            if let Some((g, p)) = c.buckets.get(bucket) {
                if *g == c.generation {
                    return p.clone();
                }
            }
            c.generation
        };
        let req = self
            .signed(Method::GET, &format!("/{bucket}?policy"), "s3")
            .body(Full::new(Bytes::new()))
            .map_err(|_| ())?;
        let answer = self.send(req).await.map_err(|_| ())?;
        let result = match answer.status {
            200 => Ok(serde_json::from_slice(&answer.body).ok()),
            _ if String::from_utf8_lossy(&answer.body).contains("NoSuchBucketPolicy") => Ok(None),
            _ => Err(()),
        };
        self.cache
            .lock()
            .await
            .buckets
            .insert(bucket.to_owned(), (generation, result.clone()));
        result
    }

    /// A KMS key's ARN and policy, by id, ARN or alias.
    pub async fn key(&self, key_id: &str) -> Option<KeyInfo> {
        let generation = {
            let c = self.cache.lock().await;
            if let Some((g, k)) = c.keys.get(key_id) {
                if *g == c.generation {
                    return k.clone();
                }
            }
            c.generation
        };
        let described = self
            .kms("DescribeKey", &serde_json::json!({"KeyId": key_id}))
            .await;
        let info = match described {
            Some(d) => {
                let arn = d["KeyMetadata"]["Arn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let policy = self
                    .kms(
                        "GetKeyPolicy",
                        &serde_json::json!({"KeyId": arn, "PolicyName": "default"}),
                    )
                    .await
                    .and_then(|p| {
                        p["Policy"]
                            .as_str()
                            .and_then(|t| serde_json::from_str(t).ok())
                    })
                    .unwrap_or(Value::Null);
                Some(KeyInfo { arn, policy })
            }
            None => None,
        };
        self.cache
            .lock()
            .await
            .keys
            .insert(key_id.to_owned(), (generation, info.clone()));
        info
    }

    async fn kms(&self, op: &str, body: &Value) -> Option<Value> {
        let req = self
            .signed(Method::POST, "/", "kms")
            .header("x-amz-target", format!("TrentService.{op}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(body.to_string())))
            .ok()?;
        let a = self.send(req).await.ok()?;
        (a.status == 200)
            .then(|| serde_json::from_slice(&a.body).ok())
            .flatten()
    }

    /// The KMS key an object is encrypted with, if any.
    pub async fn object_kms_key(&self, bucket: &str, key: &str) -> Option<String> {
        let req = self
            .signed(Method::HEAD, &format!("/{bucket}/{key}"), "s3")
            .body(Full::new(Bytes::new()))
            .ok()?;
        let a = self.send(req).await.ok()?;
        a.headers
            .get("x-amz-server-side-encryption-aws-kms-key-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// A role's MaxSessionDuration in seconds (AWS's default when unreadable).
    pub async fn role_max_session(&self, role: &str) -> u64 {
        let form = format!(
            "Action=GetRole&RoleName={}&Version=2010-05-08",
            encode(role)
        );
        self.query(&form)
            .await
            .ok()
            .and_then(|x| {
                crate::emulator::wire::xml_value(&x, "MaxSessionDuration")
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(3600)
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
