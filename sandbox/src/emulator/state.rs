//! The emulator's shared state: who holds which access key, the sessions it minted,
//! MFA bookkeeping, call counts, the emulated clock and every authorization decision.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

/// Who signed a request, as the emulator knows it from the access key id.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The account's root: every action is allowed.
    Root,
    /// An IAM user's long-term access key.
    User { name: String },
    /// Temporary credentials the emulator has seen being issued.
    Session(Arc<Session>),
}

impl Caller {
    /// The IAM user behind the call: the key's owner, or the user a session belongs to.
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Caller::User { name } => Some(name),
            Caller::Session(s) => match &s.kind {
                SessionKind::User { name, .. } => Some(name),
                SessionKind::Role { .. } => None,
            },
            Caller::Root => None,
        }
    }
}

/// Temporary credentials from GetSessionToken or AssumeRole.
#[derive(Debug, Clone)]
pub struct Session {
    pub kind: SessionKind,
    pub issued: SystemTime,
    pub expires: SystemTime,
    /// Set when GetSessionToken checked an MFA code (role sessions never carry MFA).
    pub mfa_at: Option<SystemTime>,
    pub source_identity: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub transitive: BTreeSet<String>,
    /// The session policy passed to AssumeRole, if any.
    pub policy: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub enum SessionKind {
    /// GetSessionToken: acts as the user. moto is shown the user's long-term key.
    User { name: String, long_term_key: String },
    /// AssumeRole: moto minted the key itself and knows the session.
    Role { name: String, session_name: String },
}

/// One authorization decision, kept so that tests can assert the exact denied action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The caller's ARN (the role ARN for role sessions).
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    /// Why, in AWS's words where AWS has some ("no identity-based policy allows …").
    pub reason: String,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub counts: HashMap<String, usize>,
    pub seeds: HashMap<String, Vec<u8>>,
    pub used_codes: HashSet<(String, String)>,
    pub reused_code_attempts: usize,
    pub invalid_code_attempts: usize,
    /// Every TokenCode seen, to let tests check what was sent.
    pub codes_seen: Vec<String>,
    /// Secret keys and tokens of everything handed out (the leak scan's canaries).
    pub issued: Vec<String>,
    /// Codes that were valid when seen: these are the secrets.
    pub valid_codes: Vec<String>,
    /// Long-term keys AWS would not know any more (deleted or deactivated).
    pub rejected_keys: HashSet<String>,
    /// Long-term key id -> its user and secret.
    pub user_keys: HashMap<String, (String, String)>,
    /// Session access key id -> the session.
    pub sessions: HashMap<String, Arc<Session>>,
    /// Root key id -> its secret.
    pub root_keys: HashMap<String, Zeroizing<String>>,
    /// Session access key id -> its secret and session token, to check signatures.
    pub session_secrets: HashMap<String, KeySecret>,
    /// Device name -> last TOTP counter handed out by the phone.
    pub handed_out: HashMap<String, u64>,
    /// A fixed wall clock instead of the computer's (unit tests: no test depends on
    /// today's date).
    pub pinned: Option<SystemTime>,
    /// Seconds added to the wall clock for expiry and `aws:CurrentTime`.
    pub clock_offset: i64,
    /// How far AWS's clock (and the phones that agree with it) is ahead of this
    /// computer's, in seconds: TOTP checks, phone codes and the `Date` header use it.
    pub aws_skew: i64,
    pub enforce: bool,
    pub decisions: Vec<Decision>,
    /// The root user has an MFA device (see `report.rs`).
    pub root_mfa: bool,
    /// Users made older than they are, with their keys.
    pub backdated: HashMap<String, Duration>,
    /// When a user's long-term key last signed a request.
    pub last_used: HashMap<String, SystemTime>,
}

/// The emulator's state, shared with whoever runs it. Cloning shares it.
#[derive(Clone)]
pub struct Emulator(pub(crate) Arc<Mutex<Inner>>);

impl Inner {
    /// The computer's clock, or the pinned one.
    fn wall(&self) -> SystemTime {
        self.pinned.unwrap_or_else(SystemTime::now)
    }
}

impl Default for Emulator {
    /// Enforcement is on: every request must be allowed by IAM, as in AWS.
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Inner {
            enforce: true,
            ..Inner::default()
        })))
    }
}

impl Emulator {
    pub(crate) fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().expect("emulator state")
    }

    /// Requests signed with this key id (and secret) act as the account's root user.
    pub fn add_root_key(&self, access_key_id: &str, secret: &str) {
        self.inner()
            .root_keys
            .insert(access_key_id.to_owned(), Zeroizing::new(secret.to_owned()));
    }

    /// Remembers the secret and token of a session the emulator handed out.
    pub(crate) fn learn_session_secret(&self, access_key_id: &str, secret: &str, token: &str) {
        self.inner().session_secrets.insert(
            access_key_id.to_owned(),
            KeySecret {
                secret: Zeroizing::new(secret.to_owned()),
                token: Some(Zeroizing::new(token.to_owned())),
            },
        );
    }

    /// What a key id signs with, when the emulator knows it and AWS would still take
    /// the key (deleted, deactivated and unknown keys are refused elsewhere).
    pub(crate) fn signing_secret(&self, access_key_id: &str) -> Option<KeySecret> {
        let inner = self.inner();
        if let Some(secret) = inner.root_keys.get(access_key_id) {
            return Some(KeySecret {
                secret: secret.clone(),
                token: None,
            });
        }
        if inner.rejected_keys.contains(access_key_id) {
            return None;
        }
        if let Some((_, secret)) = inner.user_keys.get(access_key_id) {
            return Some(KeySecret {
                secret: Zeroizing::new(secret.clone()),
                token: None,
            });
        }
        inner.session_secrets.get(access_key_id).cloned()
    }

    /// Turns IAM authorization on (the default) or off.
    pub fn set_enforcement(&self, on: bool) {
        self.inner().enforce = on;
    }

    pub fn enforcing(&self) -> bool {
        self.inner().enforce
    }

    /// Stops the emulator's wall clock at `at` (unit tests).
    pub fn pin_clock(&self, at: SystemTime) {
        self.inner().pinned = Some(at);
    }

    /// The emulated time: the wall clock moved by [`Emulator::advance_clock`].
    pub fn now(&self) -> SystemTime {
        let inner = self.inner();
        shifted(inner.wall(), inner.clock_offset)
    }

    /// Moves the emulated clock forward (session expiry, `aws:CurrentTime`). TOTP
    /// codes keep the real time, like a phone does.
    pub fn advance_clock(&self, by: Duration) {
        self.inner().clock_offset += i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 2);
    }

    /// AWS's clock runs `secs` ahead of this computer's (negative: behind), as when
    /// this computer's clock is wrong: TOTP checks, phone codes and `Date` follow AWS.
    pub fn skew_aws_clock(&self, secs: i64) {
        self.inner().aws_skew = secs;
    }

    /// AWS's wall clock (see [`Emulator::skew_aws_clock`]).
    pub fn aws_time(&self) -> SystemTime {
        let inner = self.inner();
        shifted(inner.wall(), inner.aws_skew)
    }

    /// The TOTP step by AWS's clock.
    pub fn aws_step(&self) -> u64 {
        self.aws_time()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            / crate::totp::STEP
    }

    /// How many requests with this action reached the emulator (faulted ones included).
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

    /// Every request that reached the emulator, whatever its action.
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

    pub fn seed(&self, serial: &str) -> Option<Vec<u8>> {
        self.inner().seeds.get(serial).cloned()
    }

    /// From now on, requests signed with this key get InvalidClientTokenId, as AWS
    /// answers for a deleted key. Sessions issued from it live on, as in AWS.
    pub fn reject_key(&self, access_key_id: &str) {
        self.inner().rejected_keys.insert(access_key_id.to_owned());
    }

    /// The secret of a long-term key created through the emulator.
    pub fn secret_of(&self, access_key_id: &str) -> Option<String> {
        self.inner()
            .user_keys
            .get(access_key_id)
            .map(|(_, s)| s.clone())
    }

    /// The long-term key ids of a user, as created through the emulator.
    pub fn keys_of(&self, user: &str) -> Vec<String> {
        let inner = self.inner();
        let mut ids: Vec<String> = inner
            .user_keys
            .iter()
            .filter(|(id, (u, _))| u == user && !inner.rejected_keys.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    pub fn reused_code_attempts(&self) -> usize {
        self.inner().reused_code_attempts
    }

    pub fn invalid_code_attempts(&self) -> usize {
        self.inner().invalid_code_attempts
    }

    /// Secret access keys and session tokens of everything that went through.
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

    /// Every authorization decision so far, oldest first.
    pub fn decisions(&self) -> Vec<Decision> {
        self.inner().decisions.clone()
    }

    /// The denied decisions only.
    pub fn denials(&self) -> Vec<Decision> {
        self.inner()
            .decisions
            .iter()
            .filter(|d| !d.allowed)
            .cloned()
            .collect()
    }

    /// Who an access key id belongs to, as the emulator knows it.
    pub(crate) fn caller(&self, access_key_id: &str) -> Result<Caller, KeyProblem> {
        let inner = self.inner();
        if inner.root_keys.contains_key(access_key_id) {
            return Ok(Caller::Root);
        }
        if inner.rejected_keys.contains(access_key_id) {
            return Err(KeyProblem::Invalid);
        }
        if let Some((user, _)) = inner.user_keys.get(access_key_id) {
            return Ok(Caller::User { name: user.clone() });
        }
        if let Some(s) = inner.sessions.get(access_key_id) {
            let now = shifted(inner.wall(), inner.clock_offset);
            if now >= s.expires {
                return Err(KeyProblem::Expired);
            }
            return Ok(Caller::Session(s.clone()));
        }
        Err(KeyProblem::Invalid)
    }

    pub(crate) fn record_decision(&self, d: Decision) {
        self.inner().decisions.push(d);
    }
}

/// The secret a key signs with, and the session token bound to it (sessions only).
/// No `Debug`: it must not end up in a log.
#[derive(Clone)]
pub(crate) struct KeySecret {
    pub secret: Zeroizing<String>,
    pub token: Option<Zeroizing<String>>,
}

/// Why a key id cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    /// Unknown, deleted or deactivated: InvalidClientTokenId.
    Invalid,
    /// A session past its expiry: ExpiredToken.
    Expired,
}

fn shifted(t: SystemTime, offset: i64) -> SystemTime {
    let by = Duration::from_secs(offset.unsigned_abs());
    if offset >= 0 {
        t + by
    } else {
        t - by
    }
}
