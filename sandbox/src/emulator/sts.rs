//! GetSessionToken and AssumeRole as AWS does them: the MFA device must be the
//! caller's, codes are checked, durations are bounded (one hour when chaining), the
//! source identity is inherited and cannot change, and every session gets fresh
//! credentials the emulator remembers, so later requests act as that session.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use iam_rs::ContextValue;
use rand::Rng;

use crate::authz::calls::{list_field, tag_pairs, Call, Need, PolicyRef};
use crate::emulator::authorize::{authorize, Refusal};
use crate::emulator::state::{Caller, Emulator, Session, SessionKind};
use crate::emulator::upstream::{Answer, Moto};
use crate::emulator::wire::{error, xml_value, Protocol};

type Resp = Response<Full<Bytes>>;

fn refuse(r: &Refusal) -> Resp {
    error(Protocol::Query, r.status, r.code, &r.message)
}

fn invalid(message: &str) -> Resp {
    error(Protocol::Query, 400, "ValidationError", message)
}

/// DurationSeconds, or `None` when it is not a number.
fn duration(fields: &HashMap<String, String>, default: u64) -> Option<u64> {
    match fields.get("DurationSeconds") {
        None => Some(default),
        Some(d) => d.parse().ok(),
    }
}

/// The serial must be an MFA device of `user`, and the code valid and unused.
async fn check_code(
    emu: &Emulator,
    moto: &Moto,
    user: &str,
    serial: &str,
    code: &str,
) -> Result<(), Resp> {
    let account = moto
        .account()
        .await
        .map_err(|e| error(Protocol::Query, 500, "InternalFailure", &e))?;
    let owned = account
        .mfa_devices
        .get(serial)
        .is_some_and(|u| u.as_deref() == Some(user));
    let outcome = if owned {
        emu.check_mfa(serial, code)
    } else {
        emu.inner().codes_seen.push(code.to_owned());
        Err(crate::emulator::mfa::MfaRefusal::UnknownDevice)
    };
    outcome.map_err(|r| error(Protocol::Query, 403, "AccessDenied", r.message()))
}

/// GetSessionToken: only a user's long-term key may call it; no policy can deny it.
pub async fn get_session_token(
    emu: &Emulator,
    moto: &Moto,
    caller: &Caller,
    key_id: &str,
    fields: &HashMap<String, String>,
    forward: impl std::future::Future<Output = Result<Answer, String>>,
) -> Resp {
    let Caller::User { name } = caller else {
        return error(
            Protocol::Query,
            403,
            "AccessDenied",
            "Cannot call GetSessionToken with session credentials",
        );
    };
    let secs = match duration(fields, 43_200) {
        Some(s) if (900..=129_600).contains(&s) => s,
        _ => return invalid("DurationSeconds must be a number between 900 and 129600"),
    };
    let mfa = match (fields.get("SerialNumber"), fields.get("TokenCode")) {
        (Some(serial), Some(code)) => {
            if let Err(r) = check_code(emu, moto, name, serial, code).await {
                return r;
            }
            true
        }
        _ => false,
    };
    let answer = match forward.await {
        Ok(a) => a,
        Err(e) => return error(Protocol::Query, 502, "ServiceUnavailable", &e),
    };
    if answer.status != 200 {
        return passthrough(answer);
    }
    let long_term_key = key_id.to_owned();
    let now = emu.now();
    let session = Session {
        kind: SessionKind::User {
            name: name.clone(),
            long_term_key,
        },
        issued: now,
        expires: now + Duration::from_secs(secs),
        mfa_at: mfa.then_some(now),
        source_identity: None,
        tags: BTreeMap::new(),
        transitive: BTreeSet::new(),
        policy: None,
    };
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    let text = fresh_credentials(emu, &text, session);
    Response::new(Full::new(Bytes::from(text)))
}

/// AssumeRole, authorized against the trust policy and the caller's own policies.
pub async fn assume_role(
    emu: &Emulator,
    moto: &Moto,
    caller: &Caller,
    call: &Call<'_>,
    forward: impl std::future::Future<Output = Result<Answer, String>>,
) -> Resp {
    let fields = call.fields;
    let role_arn = fields.get("RoleArn").cloned().unwrap_or_default();
    let role_name = role_arn.rsplit('/').next().unwrap_or_default().to_owned();
    let (user, session) = match caller {
        Caller::Root => {
            return error(
                Protocol::Query,
                403,
                "AccessDenied",
                "Roles may not be assumed by root accounts.",
            )
        }
        Caller::User { name } => (Some(name.clone()), None),
        Caller::Session(s) => match &s.kind {
            SessionKind::User { name, .. } => (Some(name.clone()), Some(s.clone())),
            SessionKind::Role { .. } => (None, Some(s.clone())),
        },
    };
    let secs = match role_duration(moto, fields, &role_name, session.is_some()).await {
        Ok(secs) => secs,
        Err(r) => return r,
    };
    let mut extra_ctx = match mfa_context(emu, moto, fields, user.as_deref()).await {
        Ok(ctx) => ctx,
        Err(r) => return r,
    };
    let source_identity = match source_identity(fields, session.as_deref()) {
        Ok(si) => si,
        Err(r) => return r,
    };
    let mut extra = Vec::new();
    if let Some(si) = &source_identity {
        extra_ctx.push((
            "sts:SourceIdentity".into(),
            ContextValue::String(si.clone()),
        ));
        extra.push(Need {
            action: "sts:SetSourceIdentity".into(),
            resource: role_arn.clone(),
            context: Vec::new(),
            policy: PolicyRef::Trust(role_name.clone()),
        });
    }
    if emu.enforcing() {
        if let Err(r) = authorize(emu, moto, caller, call, extra, &extra_ctx).await {
            return refuse(&r);
        }
    }
    let answer = match forward.await {
        Ok(a) => a,
        Err(e) => return error(Protocol::Query, 502, "ServiceUnavailable", &e),
    };
    if answer.status != 200 {
        return passthrough(answer);
    }
    let mut text = String::from_utf8_lossy(&answer.body).into_owned();
    if let Some(id) = xml_value(&text, "AccessKeyId").map(str::to_owned) {
        let s = role_session(
            emu,
            fields,
            role_name,
            secs,
            session.as_deref(),
            source_identity.as_ref(),
        );
        if let (Some(secret), Some(token)) = (
            xml_value(&text, "SecretAccessKey"),
            xml_value(&text, "SessionToken"),
        ) {
            emu.learn_session_secret(&id, secret, token);
        }
        emu.inner().sessions.insert(id, Arc::new(s));
    }
    if let Some(si) = &source_identity {
        text = text.replacen(
            "</AssumeRoleResult>",
            &format!("<SourceIdentity>{si}</SourceIdentity></AssumeRoleResult>"),
            1,
        );
    }
    remember_secrets(emu, &text);
    Response::new(Full::new(Bytes::from(text)))
}

/// The session length AWS would grant: 15 min at least, 1 h when chaining, and the
/// role's own maximum.
async fn role_duration(
    moto: &Moto,
    fields: &HashMap<String, String>,
    role_name: &str,
    chained: bool,
) -> Result<u64, Resp> {
    let Some(secs) = duration(fields, 3600) else {
        return Err(invalid("DurationSeconds must be a number"));
    };
    if secs < 900 {
        return Err(invalid("DurationSeconds must be at least 900"));
    }
    if chained && secs > 3600 {
        return Err(invalid("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."));
    }
    if secs > moto.role_max_session(role_name).await {
        return Err(invalid(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(secs)
}

/// The MFA keys of the request context, after checking the code a user sent. A role
/// session has no device of its own, so it cannot send one.
async fn mfa_context(
    emu: &Emulator,
    moto: &Moto,
    fields: &HashMap<String, String>,
    user: Option<&str>,
) -> Result<Vec<(String, ContextValue)>, Resp> {
    let (Some(serial), Some(code)) = (fields.get("SerialNumber"), fields.get("TokenCode")) else {
        return Ok(Vec::new());
    };
    let Some(u) = user else {
        return Err(error(
            Protocol::Query,
            403,
            "AccessDenied",
            "MultiFactorAuthentication failed: a role session has no MFA device",
        ));
    };
    check_code(emu, moto, u, serial, code).await?;
    Ok(vec![
        (
            "aws:MultiFactorAuthPresent".into(),
            ContextValue::Boolean(true),
        ),
        ("aws:MultiFactorAuthAge".into(), ContextValue::Number(0.0)),
    ])
}

/// The new session's source identity: inherited from the caller's session, which may
/// repeat it but never change it.
fn source_identity(
    fields: &HashMap<String, String>,
    session: Option<&Session>,
) -> Result<Option<String>, Resp> {
    let inherited = session.and_then(|s| s.source_identity.clone());
    let requested = fields.get("SourceIdentity").cloned();
    if let (Some(i), Some(r)) = (&inherited, &requested) {
        if i != r {
            return Err(error(
                Protocol::Query,
                403,
                "AccessDenied",
                &format!("The source identity {i} of this session cannot be changed to {r}."),
            ));
        }
    }
    Ok(requested.or(inherited))
}

/// What the emulator remembers of a role session: transitive tags come along from the
/// caller's session, and new tags join them.
fn role_session(
    emu: &Emulator,
    fields: &HashMap<String, String>,
    role_name: String,
    secs: u64,
    caller: Option<&Session>,
    source_identity: Option<&String>,
) -> Session {
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    let mut transitive: BTreeSet<String> = BTreeSet::new();
    if let Some(s) = caller {
        for k in &s.transitive {
            if let Some(v) = s.tags.get(k) {
                tags.insert(k.clone(), v.clone());
                transitive.insert(k.clone());
            }
        }
    }
    for (k, v) in tag_pairs(fields, "Tags.member") {
        tags.entry(k).or_insert(v);
    }
    transitive.extend(list_field(fields, "TransitiveTagKeys.member").unwrap_or_default());
    let now = emu.now();
    Session {
        kind: SessionKind::Role {
            name: role_name,
            session_name: fields.get("RoleSessionName").cloned().unwrap_or_default(),
        },
        issued: now,
        expires: now + Duration::from_secs(secs),
        mfa_at: None,
        source_identity: source_identity.cloned(),
        tags,
        transitive,
        policy: fields
            .get("Policy")
            .and_then(|p| serde_json::from_str(p).ok()),
    }
}

/// GetCallerIdentity as AWS answers it, from what the emulator knows of the caller
/// (moto would name its own default user for the root key). No policy can deny it.
pub fn get_caller_identity(caller: &Caller, account: &crate::authz::account::Account) -> Resp {
    use crate::authz::account::ACCOUNT;
    let user = |name: &str| {
        let arn = account.users.get(name).map_or_else(
            || format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            |u| u.arn.clone(),
        );
        (arn, format!("AIDA{}", name.to_uppercase()))
    };
    let (arn, user_id) = match caller {
        Caller::Root => (format!("arn:aws:iam::{ACCOUNT}:root"), ACCOUNT.to_owned()),
        Caller::User { name } => user(name),
        Caller::Session(s) => match &s.kind {
            SessionKind::User { name, .. } => user(name),
            SessionKind::Role { name, session_name } => (
                format!("arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session_name}"),
                format!("AROA{}:{session_name}", name.to_uppercase()),
            ),
        },
    };
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{arn}</Arn><UserId>{user_id}</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>keyward-emulator</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert("content-type", "text/xml".parse().expect("static"));
    r
}

pub fn passthrough(a: Answer) -> Resp {
    let mut r = Response::new(Full::new(a.body));
    *r.status_mut() =
        hyper::StatusCode::from_u16(a.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (k, v) in &a.headers {
        if k != "content-length" && k != "transfer-encoding" {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
    r
}

fn random_token(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// moto answers GetSessionToken with the same fixed credentials every time; AWS never does.
fn fresh_credentials(emu: &Emulator, xml: &str, session: Session) -> String {
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
    emu.learn_session_secret(&new_id, &new_secret, &new_token);
    emu.inner()
        .sessions
        .insert(new_id.clone(), Arc::new(session));
    let text = xml
        .replacen(
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
        );
    remember_secrets(emu, &text);
    text
}

/// Every secret a response carries is a canary for the leak scan.
pub fn remember_secrets(emu: &Emulator, xml: &str) {
    let mut inner = emu.inner();
    for tag in ["SecretAccessKey", "SessionToken"] {
        if let Some(v) = xml_value(xml, tag) {
            inner.issued.push(v.to_owned());
        }
    }
}
