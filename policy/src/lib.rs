//! AWS's policy evaluation logic for one account, with iam-rs deciding each policy
//! set. iam-rs (a crate keyward did not write) matches statements: actions, resources,
//! principals, conditions and `Resource` variables. This module only combines its
//! answers the way AWS documents it (explicit deny wins; identity ∩ boundary ∩
//! session policy; resource policies; KMS key policies; role trust policies), and
//! substitutes policy variables inside `Condition` values, which iam-rs does not.
#![forbid(unsafe_code)]

use iam_rs::{Arn, Decision, IAMPolicy, IAMRequest, PolicyEvaluator, Principal, PrincipalId};
/// The request context types, for callers that build an [`Identity`].
pub use iam_rs::{Context, ContextValue};
use serde_json::Value;

/// What stands for a variable whose key the request does not have: it matches no
/// string, so `StringEquals` fails and `StringNotEquals` matches, as in AWS.
const UNRESOLVED: &str = "keyward-emulator-unresolved-policy-variable";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Root,
    User,
    Role,
}

/// The caller as policy evaluation sees it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub kind: Kind,
    /// User ARN, role ARN (what `aws:PrincipalArn` holds) or the account root ARN.
    pub arn: String,
    /// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` for role sessions.
    pub session_arn: Option<String>,
    pub account_root: String,
    pub policies: Vec<Value>,
    pub boundary: Option<Value>,
    pub session_policy: Option<Value>,
    /// The principal's condition keys (`aws:username`, `aws:PrincipalTag/…`, MFA, …).
    pub context: Context,
}

/// The resource-based policy that takes part in a decision.
#[derive(Debug, Clone)]
pub enum ResourcePolicy {
    None,
    /// S3 bucket policies (and any other ordinary resource policy).
    Plain(Value),
    /// KMS key policies: the key policy must allow, directly or by naming the account.
    Key(Value),
    /// A role's trust policy, for sts:AssumeRole and friends.
    Trust(Value),
}

/// One action on one resource, with the request's own condition keys.
#[derive(Debug, Clone)]
pub struct Check {
    pub action: String,
    pub resource: String,
    pub context: Vec<(String, ContextValue)>,
    pub resource_policy: ResourcePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub reason: String,
}

impl Verdict {
    fn allow(reason: &str) -> Self {
        Self {
            allowed: true,
            reason: reason.to_owned(),
        }
    }

    fn deny(reason: impl Into<String>) -> Self {
        Self {
            allowed: false,
            reason: reason.into(),
        }
    }
}

/// AWS's decision for `id` doing `check`.
pub fn decide(id: &Identity, check: &Check) -> Verdict {
    if id.kind == Kind::Root {
        return Verdict::allow("the account root may do anything");
    }
    let mut ctx = id.context.clone();
    for (k, v) in &check.context {
        ctx.insert(k.clone(), v.clone());
    }
    let me = &id.arn;
    let set = |docs: &[Value]| evaluate(docs, me, &check.action, &check.resource, &ctx);
    let identity = set(&id.policies);
    let boundary = id.boundary.as_ref().map(|b| set(std::slice::from_ref(b)));
    let session = id
        .session_policy
        .as_ref()
        .map(|s| set(std::slice::from_ref(s)));
    let (rp_direct, rp_account, rp_deny) = resource_side(id, check, &ctx);
    for (outcome, place) in [
        (Some(&identity), "an identity-based policy"),
        (boundary.as_ref(), "a permissions boundary"),
        (session.as_ref(), "a session policy"),
    ] {
        match outcome {
            Some(Outcome::Deny) => {
                return Verdict::deny(format!("with an explicit deny in {place}"))
            }
            Some(Outcome::Error(e)) => {
                return Verdict::deny(format!("the emulator could not evaluate {place}: {e}"))
            }
            _ => {}
        }
    }
    if rp_deny {
        return Verdict::deny("with an explicit deny in a resource-based policy");
    }
    let capped = |o: Option<&Outcome>| o.is_none_or(|o| *o == Outcome::Allow);
    let identity_allows =
        identity == Outcome::Allow && capped(boundary.as_ref()) && capped(session.as_ref());
    let why_not = || {
        if identity != Outcome::Allow {
            "because no identity-based policy allows the action"
        } else if !capped(boundary.as_ref()) {
            "because no permissions boundary allows the action"
        } else {
            "because no session policy allows the action"
        }
    };
    let caps_ok = capped(boundary.as_ref()) && capped(session.as_ref());
    let sides = Sides {
        identity_allows,
        caps_ok,
        direct: rp_direct,
        account: rp_account,
        why_not: why_not(),
    };
    combine(&check.resource_policy, id.kind, &sides)
}

/// What the policies other than the resource's own said, for [`combine`].
struct Sides {
    identity_allows: bool,
    /// The boundary and session policy (when present) allow the call.
    caps_ok: bool,
    direct: bool,
    account: bool,
    why_not: &'static str,
}

/// Joins the resource policy's answer with the identity side, as AWS does per kind.
fn combine(policy: &ResourcePolicy, kind: Kind, s: &Sides) -> Verdict {
    let (names, delegates, refuses) = match policy {
        ResourcePolicy::Key(_) => (
            "the key policy allows it",
            "the key policy delegates to IAM, and IAM allows it",
            "because the key policy does not allow the action",
        ),
        ResourcePolicy::Trust(_) => (
            "the role's trust policy names the caller",
            "the trust policy delegates to IAM, and IAM allows it",
            "because the role's trust policy does not allow it",
        ),
        ResourcePolicy::Plain(_) | ResourcePolicy::None => {
            // A resource policy naming a user is enough; naming a role is still capped
            // by the role's boundary and session policy.
            return if s.direct && (kind == Kind::User || s.caps_ok) {
                Verdict::allow("a resource-based policy allows it")
            } else if s.identity_allows {
                Verdict::allow("an identity-based policy allows it")
            } else {
                Verdict::deny(s.why_not)
            };
        }
    };
    // A key or trust policy must allow the call itself, or delegate it to IAM.
    if s.direct {
        Verdict::allow(names)
    } else if s.account && s.identity_allows {
        Verdict::allow(delegates)
    } else if s.account {
        Verdict::deny(s.why_not)
    } else {
        Verdict::deny(refuses)
    }
}

/// `(allows the caller by name or "*", allows the account, denies the caller)`.
fn resource_side(id: &Identity, check: &Check, ctx: &Context) -> (bool, bool, bool) {
    let doc = match &check.resource_policy {
        ResourcePolicy::None => return (false, false, false),
        ResourcePolicy::Plain(d) | ResourcePolicy::Key(d) | ResourcePolicy::Trust(d) => d,
    };
    let docs = std::slice::from_ref(doc);
    let mut names = vec![id.arn.clone()];
    names.extend(id.session_arn.clone());
    let mut direct = false;
    let mut deny = false;
    for n in &names {
        match evaluate(docs, n, &check.action, &check.resource, ctx) {
            Outcome::Allow => direct = true,
            Outcome::Deny | Outcome::Error(_) => deny = true,
            Outcome::NotApplicable => {}
        }
    }
    // A statement naming the account applies to every principal of the account.
    let account = evaluate(docs, &id.account_root, &check.action, &check.resource, ctx);
    if account == Outcome::Deny {
        deny = true;
    }
    (direct, account == Outcome::Allow, deny)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Allow,
    Deny,
    NotApplicable,
    Error(String),
}

/// One policy set through iam-rs, after substituting condition variables.
fn evaluate(
    docs: &[Value],
    principal: &str,
    action: &str,
    resource: &str,
    ctx: &Context,
) -> Outcome {
    if docs.is_empty() {
        return Outcome::NotApplicable;
    }
    let mut policies = Vec::with_capacity(docs.len());
    for d in docs {
        let prepared = prepare(d, ctx);
        match IAMPolicy::from_json(&prepared.to_string()) {
            Ok(p) => policies.push(p),
            Err(e) => return Outcome::Error(format!("unreadable policy ({e})")),
        }
    }
    let Ok(arn) = Arn::parse(resource) else {
        return Outcome::Error(format!("bad resource ARN {resource}"));
    };
    let request = IAMRequest::new_with_context(
        Principal::Aws(PrincipalId::String(principal.to_owned())),
        action,
        arn,
        ctx.clone(),
    );
    match PolicyEvaluator::with_policies(policies).evaluate(&request) {
        Ok(r) => match r.decision {
            Decision::Allow => Outcome::Allow,
            Decision::Deny => Outcome::Deny,
            Decision::NotApplicable => Outcome::NotApplicable,
        },
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// A copy of `doc` ready for iam-rs: a `Version` (absent means 2008-10-17, where AWS
/// substitutes no variables), `"Resource": "*"` where a trust policy has none, and
/// every `${…}` in `Resource`, `NotResource` and string or ARN `Condition` values
/// replaced from the request context.
pub fn prepare(doc: &Value, ctx: &Context) -> Value {
    let mut doc = doc.clone();
    let Some(obj) = doc.as_object_mut() else {
        return doc;
    };
    let version = obj
        .get("Version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if version.is_none() {
        obj.insert("Version".into(), Value::String("2008-10-17".into()));
    }
    let statements = match obj.get_mut("Statement") {
        Some(Value::Array(a)) => a.iter_mut().collect::<Vec<_>>(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    };
    for st in statements {
        if let Some(st) = st.as_object_mut() {
            if !st.contains_key("Resource") && !st.contains_key("NotResource") {
                st.insert("Resource".into(), Value::String("*".into()));
            }
        }
        if version.as_deref() != Some("2012-10-17") {
            continue;
        }
        for field in ["Resource", "NotResource"] {
            if let Some(v) = st.get_mut(field) {
                substitute_all(v, ctx);
            }
        }
        if let Some(Value::Object(ops)) = st.get_mut("Condition") {
            for (op, keys) in ops.iter_mut() {
                if takes_variables(op) {
                    if let Value::Object(keys) = keys {
                        keys.values_mut().for_each(|v| substitute_all(v, ctx));
                    }
                }
            }
        }
    }
    doc
}

/// AWS substitutes variables only for string and ARN operators.
fn takes_variables(op: &str) -> bool {
    let base = op.rsplit(':').next().unwrap_or(op);
    base.starts_with("String") || base.starts_with("Arn")
}

fn substitute_all(v: &mut Value, ctx: &Context) {
    match v {
        Value::String(s) => *s = substitute(s, ctx),
        Value::Array(items) => items.iter_mut().for_each(|i| substitute_all(i, ctx)),
        _ => {}
    }
}

/// Replaces `${key}`, `${key, 'default'}` and the escapes `${*}`, `${?}`, `${$}`.
pub fn substitute(s: &str, ctx: &Context) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&resolve(inner, ctx));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

fn resolve(inner: &str, ctx: &Context) -> String {
    match inner {
        "*" | "?" | "$" => return inner.to_owned(),
        _ => {}
    }
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => (k.trim(), Some(d.trim().trim_matches('\'').to_owned())),
        None => (inner, None),
    };
    match ctx.get(key) {
        Some(ContextValue::String(v)) => v.clone(),
        Some(ContextValue::Boolean(b)) => b.to_string(),
        Some(ContextValue::Number(n)) => n.to_string(),
        Some(ContextValue::DateTime(d)) => d.to_rfc3339(),
        _ => default.unwrap_or_else(|| UNRESOLVED.to_owned()),
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
