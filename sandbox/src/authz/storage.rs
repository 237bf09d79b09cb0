//! What an S3 or KMS request needs: its action (from the request's method, path and
//! sub-resource), its resource ARN, and for SSE-KMS the key it uses through S3.

use serde_json::Value;

use crate::authz::account::ACCOUNT;
use crate::authz::calls::{action_name, any_resource, s, Call, Need, PolicyRef};

/// `(action, bucket, key)` of a path-style S3 request.
pub fn s3_operation(c: &Call) -> (String, Option<String>, Option<String>) {
    let path = c.path.trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (Some(b.to_owned()), Some(k.to_owned())),
        Some((b, _)) => (Some(b.to_owned()), None),
        None if path.is_empty() => (None, None),
        None => (Some(path.to_owned()), None),
    };
    let has = |name: &str| {
        c.query
            .split('&')
            .any(|kv| kv == name || kv.starts_with(&format!("{name}=")))
    };
    let m = c.method;
    let action = match (&bucket, &key) {
        (None, _) => "s3:ListAllMyBuckets".to_owned(),
        (Some(_), Some(_)) => match m {
            "GET" | "HEAD" if has("acl") => "s3:GetObjectAcl".into(),
            "PUT" if has("acl") => "s3:PutObjectAcl".into(),
            "GET" | "HEAD" if has("tagging") => "s3:GetObjectTagging".into(),
            "PUT" if has("tagging") => "s3:PutObjectTagging".into(),
            "GET" | "HEAD" => "s3:GetObject".into(),
            "PUT" | "POST" => "s3:PutObject".into(),
            "DELETE" => "s3:DeleteObject".into(),
            _ => format!("s3:{m}Object"),
        },
        (Some(_), None) => {
            let sub = [
                ("policy", "BucketPolicy"),
                ("acl", "BucketAcl"),
                ("publicAccessBlock", "BucketPublicAccessBlock"),
                ("encryption", "EncryptionConfiguration"),
                ("versioning", "BucketVersioning"),
                ("tagging", "BucketTagging"),
                ("ownershipControls", "BucketOwnershipControls"),
                ("policyStatus", "BucketPolicyStatus"),
            ]
            .into_iter()
            .find(|(q, _)| has(q));
            match (m, sub) {
                ("GET" | "HEAD", Some((_, what))) => format!("s3:Get{what}"),
                ("DELETE", Some(("policy", _))) => "s3:DeleteBucketPolicy".into(),
                // Deleting any other sub-resource is allowed by its Put action.
                ("PUT" | "DELETE", Some((_, what))) => format!("s3:Put{what}"),
                ("GET", None) if has("location") => "s3:GetBucketLocation".into(),
                ("GET" | "HEAD", None) => "s3:ListBucket".into(),
                ("PUT", None) => "s3:CreateBucket".into(),
                ("DELETE", None) => "s3:DeleteBucket".into(),
                ("POST", None) if has("delete") => "s3:DeleteObject".into(),
                _ => format!("s3:{m}Bucket"),
            }
        }
    };
    (action, bucket, key)
}

pub(crate) fn s3_needs(c: &Call) -> Vec<Need> {
    let (action, bucket, key) = s3_operation(c);
    let resource = match (&bucket, &key) {
        (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
        (Some(b), None) => format!("arn:aws:s3:::{b}"),
        _ => "arn:aws:s3:::*".to_owned(),
    };
    let mut need = Need::new(action.clone(), resource);
    if let Some(b) = &bucket {
        if action != "s3:CreateBucket" {
            need.policy = PolicyRef::Bucket(b.clone());
        }
    }
    let header = |h: &str| c.headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(enc) = header("x-amz-server-side-encryption") {
        need = need.with("s3:x-amz-server-side-encryption", s(enc));
    }
    let kms_key = header("x-amz-server-side-encryption-aws-kms-key-id");
    if let Some(k) = kms_key {
        need = need.with("s3:x-amz-server-side-encryption-aws-kms-key-id", s(k));
    }
    let mut out = vec![need];
    // S3 calls KMS on the caller's behalf for SSE-KMS uploads.
    if action == "s3:PutObject" && header("x-amz-server-side-encryption") == Some("aws:kms") {
        if let Some(k) = kms_key {
            out.push(kms_via_s3("kms:GenerateDataKey", k));
        }
    }
    out
}

/// A KMS permission S3 needs on the caller's behalf (`kms:ViaService` is S3).
pub fn kms_via_s3(action: &str, key: &str) -> Need {
    Need {
        action: action.to_owned(),
        resource: key.to_owned(),
        context: vec![
            ("kms:ViaService".to_owned(), s("s3.us-east-1.amazonaws.com")),
            ("kms:CallerAccount".to_owned(), s(ACCOUNT)),
        ],
        policy: PolicyRef::Key(key.to_owned()),
    }
}

// KMS

pub(crate) fn kms_needs(c: &Call) -> Vec<Need> {
    let op = action_name(c);
    let key = c
        .json
        .and_then(|j| j.get("KeyId").or_else(|| j.get("TargetKeyId")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let need = match key {
        Some(k) => Need {
            action: format!("kms:{op}"),
            resource: k.clone(),
            context: vec![("kms:CallerAccount".to_owned(), s(ACCOUNT))],
            policy: PolicyRef::Key(k),
        },
        None => Need::new(format!("kms:{op}"), any_resource("kms")),
    };
    vec![need]
}
