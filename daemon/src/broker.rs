//! The broker: in-memory sessions, one upstream call per profile at a time
//! (singleflight), one MFA prompt per device at a time (a lease), refresh-ahead for
//! role credentials, and the TOTP reuse guard.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use keyward_proto::{tty::is_valid_code, ErrorBody, ErrorKind, Status, MIN_REMAINING_SECS};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::config::{BaseProfile, Config, ConfigError, Profile, RoleProfile};
use crate::keychain::KeyStore;
use crate::session::{AccessKey, Session};
use crate::sts::{AssumeRoleRequest, Caller, StsError, Upstream};

/// Never hand out less than this.
pub const MIN_REMAINING: Duration = Duration::from_secs(MIN_REMAINING_SECS);
/// Role credentials are refreshed from the base session once they get this close.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(20 * 60);
/// After a failed role refresh, serve the old credentials this long before trying again.
pub const REFRESH_BACKOFF: Duration = Duration::from_secs(30);
/// How long one caller may hold the prompt for a device before another may take it.
const LEASE_MFA_PROCESS: Duration = Duration::from_secs(30);
const LEASE_TERMINAL: Duration = Duration::from_secs(120);
/// How long a request waits for someone else's prompt.
const MAX_WAIT: Duration = Duration::from_secs(125);
/// A used code is remembered this long (AWS accepts a code for about one step either side).
const CODE_MEMORY: Duration = Duration::from_secs(120);
const TOTP_STEP: u64 = 30;

type Outcome = Result<Arc<Session>, ErrorBody>;

#[derive(Default)]
struct State {
    sessions: HashMap<String, Arc<Session>>,
    flights: HashMap<String, watch::Receiver<Option<Outcome>>>,
    /// MFA serial -> until when one caller holds the prompt.
    leases: HashMap<String, Instant>,
    /// MFA serial -> last code sent and when.
    last_codes: HashMap<String, (Zeroizing<String>, Instant)>,
    /// Role profile -> last failed refresh.
    failed: HashMap<String, Instant>,
    /// Base profile -> the access key id STS refused as invalid.
    revoked: HashMap<String, String>,
    /// MFA serial -> when STS last refused a code for it, and why. Requests that were
    /// already waiting for that code share the refusal instead of trying codes of
    /// their own (which would burn MFA attempts).
    mfa_failures: HashMap<String, (Instant, ErrorBody)>,
    /// Bumped by `lock`; a flight started in an older epoch stores nothing.
    epoch: u64,
}

/// (modified time, length): when either changes, the file is read again.
type Stamp = (Option<SystemTime>, u64);

/// Caches the parsed config, re-reading it when the file changes.
pub struct ConfigSource {
    path: PathBuf,
    cached: Mutex<Option<(Stamp, Arc<Config>)>>,
}

impl ConfigSource {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            cached: Mutex::new(None),
        }
    }

    pub fn get(&self) -> Result<Arc<Config>, ConfigError> {
        let meta = std::fs::metadata(&self.path).ok();
        let stamp: Stamp = (
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.as_ref().map_or(0, std::fs::Metadata::len),
        );
        let mut cached = self.cached.lock().expect("config lock");
        if let Some((seen, c)) = cached.as_ref() {
            if *seen == stamp {
                return Ok(c.clone());
            }
        }
        let cfg = Arc::new(Config::load(&self.path)?);
        *cached = Some((stamp, cfg.clone()));
        Ok(cfg)
    }
}

pub struct Broker<U: Upstream> {
    upstream: U,
    keys: Arc<dyn KeyStore>,
    config: ConfigSource,
    state: Mutex<State>,
    generation: watch::Sender<u64>,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(kind, message)
}

fn revoked_error(profile: &str) -> ErrorBody {
    err(
        ErrorKind::KeyRevoked,
        format!("this computer's key was revoked or deleted (profile `{profile}`); run `keyward setup` to register again"),
    )
}

fn seconds_to_next_step() -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    TOTP_STEP - now % TOTP_STEP
}

impl<U: Upstream> Broker<U> {
    pub fn new(upstream: U, keys: Arc<dyn KeyStore>, config_path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            upstream,
            keys,
            config: ConfigSource::new(config_path),
            state: Mutex::new(State::default()),
            generation: watch::channel(0).0,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("broker state lock")
    }

    /// Wakes everyone waiting for a prompt or a flight.
    fn bump(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    fn profile(&self, name: &str) -> Result<Profile, ErrorBody> {
        let cfg = self.config.get().map_err(|e| {
            err(
                ErrorKind::Config,
                format!("{e}; fix it with `keyward profile add`"),
            )
        })?;
        if !cfg.profiles.contains_key(name) {
            let known: Vec<_> = cfg.profiles.keys().map(String::as_str).collect();
            return Err(err(
                ErrorKind::UnknownProfile,
                format!(
                    "no keyward profile `{name}` (known: {}); add it with `keyward profile add {name}`",
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                ),
            ));
        }
        cfg.resolve(name).map_err(|e| {
            err(
                ErrorKind::Config,
                format!("{e}; fix it with `keyward profile add`"),
            )
        })
    }

    /// Credentials for `profile`, or `mfa_required` when a code is needed first.
    pub async fn credentials(self: &Arc<Self>, profile: &str, can_prompt: bool) -> Outcome {
        match self.profile(profile)? {
            Profile::Base(b) => self.mfa_session(&b.name, &b, can_prompt).await,
            Profile::Role(r) if r.needs_direct_mfa() => {
                self.mfa_session(&r.name, &r.source, can_prompt).await
            }
            Profile::Role(r) => self.role_session(&r, can_prompt).await,
        }
    }

    /// A session that only an MFA code can create: serve it, wait for someone else's
    /// prompt, or hand this caller the prompt.
    async fn mfa_session(&self, name: &str, base: &BaseProfile, can_prompt: bool) -> Outcome {
        let mut rx = self.generation.subscribe();
        let entered = Instant::now();
        let deadline = entered + MAX_WAIT;
        loop {
            rx.borrow_and_update();
            let wait_until = {
                let mut st = self.state();
                if let Some(s) = st.sessions.get(name) {
                    if s.remaining(SystemTime::now()) >= MIN_REMAINING {
                        return Ok(s.clone());
                    }
                }
                if st.revoked.contains_key(&base.name) {
                    return Err(revoked_error(&base.name));
                }
                if let Some((at, failure)) = st.mfa_failures.get(&base.mfa_serial) {
                    if *at > entered {
                        return Err(failure.clone());
                    }
                }
                let mut required = err(
                    ErrorKind::MfaRequired,
                    format!("an MFA code is needed for profile `{name}`; run `keyward login --profile {name}`"),
                );
                required.mfa_serial = Some(base.mfa_serial.clone());
                if base.mfa_process.is_none() && !can_prompt {
                    return Err(required);
                }
                let now = Instant::now();
                match st.leases.get(&base.mfa_serial) {
                    Some(until) if *until > now && now < deadline => (*until).min(deadline),
                    Some(_) if now >= deadline => return Err(required),
                    _ => {
                        let ttl = if base.mfa_process.is_some() {
                            LEASE_MFA_PROCESS
                        } else {
                            LEASE_TERMINAL
                        };
                        st.leases.insert(base.mfa_serial.clone(), now + ttl);
                        required.mfa_process.clone_from(&base.mfa_process);
                        return Err(required);
                    }
                }
            };
            let _ = tokio::time::timeout_at(wait_until.into(), rx.changed()).await;
        }
    }

    async fn role_session(self: &Arc<Self>, r: &RoleProfile, can_prompt: bool) -> Outcome {
        let now = SystemTime::now();
        let (cached, backing_off, base_session) = {
            let st = self.state();
            let cached = st.sessions.get(&r.name).cloned();
            let backing_off = st
                .failed
                .get(&r.name)
                .is_some_and(|t| t.elapsed() < REFRESH_BACKOFF);
            let base = st
                .sessions
                .get(&r.source.name)
                .filter(|s| s.remaining(now) >= MIN_REMAINING)
                .cloned();
            (cached, backing_off, base)
        };
        let usable = cached.filter(|s| s.remaining(now) >= MIN_REMAINING);
        if let Some(s) = &usable {
            if s.remaining(now) >= REFRESH_AHEAD || backing_off {
                return Ok(s.clone());
            }
        }
        let base_session = match (base_session, &usable) {
            (Some(b), _) => b,
            // No base session to refresh from: keep serving what is still valid.
            (None, Some(s)) => return Ok(s.clone()),
            (None, None) => {
                self.mfa_session(&r.source.name, &r.source, can_prompt)
                    .await?
            }
        };
        let req = AssumeRoleRequest {
            role_arn: r.role_arn.clone(),
            session_name: session_name(&r.source.name),
            duration: r.duration,
            external_id: r.external_id.clone(),
            region: r.source.region.clone(),
            source_identity: r.source.source_identity(),
        };
        let this = self.clone();
        let base_name = r.source.name.clone();
        let result = self
            .flight(&r.name, move || async move {
                this.call(
                    &base_name,
                    this.upstream
                        .assume_role(Caller::Session(base_session), req),
                )
                .await
            })
            .await;
        match result {
            Ok(s) => {
                self.state().failed.remove(&r.name);
                Ok(s)
            }
            Err(e) => {
                self.state().failed.insert(r.name.clone(), Instant::now());
                match usable {
                    Some(s) if e.kind != ErrorKind::KeyRevoked => {
                        tracing::warn!(profile = %r.name, error = %e.message, "role refresh failed; serving the current credentials");
                        Ok(s)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// Takes an MFA code for `profile` (a base profile, a role over its base, or a
    /// direct-MFA role) and returns credentials for `profile`.
    pub async fn submit_mfa(self: &Arc<Self>, profile: &str, code: Zeroizing<String>) -> Outcome {
        let prof = self.profile(profile)?;
        if !is_valid_code(&code) {
            return Err(err(
                ErrorKind::MfaInvalid,
                "an MFA code is 6 digits; try again",
            ));
        }
        let (target, base) = match &prof {
            Profile::Base(b) => (b.name.clone(), b.clone()),
            Profile::Role(r) if r.needs_direct_mfa() => (r.name.clone(), r.source.clone()),
            Profile::Role(r) => (r.source.name.clone(), r.source.clone()),
        };
        let direct_role = match &prof {
            Profile::Role(r) if r.needs_direct_mfa() => Some(r.clone()),
            _ => None,
        };
        let serial = base.mfa_serial.clone();
        let leader = {
            let mut st = self.state();
            let live = st
                .sessions
                .get(&target)
                .is_some_and(|s| s.remaining(SystemTime::now()) >= MIN_REMAINING);
            if live || st.flights.contains_key(&target) {
                false
            } else {
                if let Some((last, at)) = st.last_codes.get(&serial) {
                    if at.elapsed() < CODE_MEMORY && last.as_str() == code.as_str() {
                        let mut e = err(
                            ErrorKind::MfaReused,
                            format!("that MFA code was already used; wait for the next one and run `keyward login --profile {profile}`"),
                        );
                        e.retry_after_secs = Some(seconds_to_next_step());
                        e.mfa_process.clone_from(&base.mfa_process);
                        return Err(e);
                    }
                }
                st.last_codes
                    .insert(serial.clone(), (code.clone(), Instant::now()));
                true
            }
        };
        let result = if leader {
            let this = self.clone();
            let base2 = base.clone();
            let r = self
                .flight(&target, move || async move {
                    let key = this.read_key(&base2.name).await?;
                    let call = async {
                        match direct_role {
                            Some(r) => {
                                let req = AssumeRoleRequest {
                                    role_arn: r.role_arn.clone(),
                                    session_name: session_name(&base2.name),
                                    duration: r.duration,
                                    external_id: r.external_id.clone(),
                                    region: base2.region.clone(),
                                    source_identity: base2.source_identity(),
                                };
                                let caller = Caller::KeyWithMfa {
                                    key,
                                    serial: base2.mfa_serial.clone(),
                                    code,
                                };
                                this.upstream.assume_role(caller, req).await
                            }
                            None => {
                                this.upstream
                                    .get_session_token(
                                        key,
                                        base2.region.clone(),
                                        base2.mfa_serial.clone(),
                                        code,
                                        base2.session_duration,
                                    )
                                    .await
                            }
                        }
                    };
                    this.call(&base2.name, call).await
                })
                .await;
            {
                let mut st = self.state();
                st.leases.remove(&serial);
                match &r {
                    Err(e) if e.kind == ErrorKind::MfaInvalid => {
                        st.mfa_failures
                            .insert(serial.clone(), (Instant::now(), e.clone()));
                    }
                    _ => {
                        st.mfa_failures.remove(&serial);
                    }
                }
            }
            self.bump();
            r
        } else {
            // Someone else's code is in flight, or a session already exists.
            self.credentials_no_prompt(&target).await
        };
        result?;
        match prof {
            Profile::Role(r) if !r.needs_direct_mfa() => self.role_session(&r, false).await,
            _ => self.credentials_no_prompt(profile).await,
        }
    }

    async fn credentials_no_prompt(self: &Arc<Self>, name: &str) -> Outcome {
        let flight = self.state().flights.get(name).cloned();
        if let Some(rx) = flight {
            return join(rx).await;
        }
        self.credentials(name, false).await
    }

    /// Runs an STS call and turns its error into a wire error; an invalid key marks the
    /// base profile revoked and drops its sessions.
    async fn call(
        &self,
        base_name: &str,
        fut: impl std::future::Future<Output = Result<Session, StsError>>,
    ) -> Result<Session, ErrorBody> {
        match fut.await {
            Ok(s) => Ok(s),
            Err(StsError::KeyInvalid(m)) => {
                tracing::warn!(profile = %base_name, message = %m, "STS refused this computer's key; dropping every session");
                self.mark_revoked(base_name).await;
                Err(revoked_error(base_name))
            }
            Err(StsError::InvalidMfa(m)) => Err(err(
                ErrorKind::MfaInvalid,
                format!("{m}; wait for the next code and run `keyward login --profile {base_name}`"),
            )),
            Err(StsError::AccessDenied(m)) => Err(err(
                ErrorKind::AccessDenied,
                format!("STS denied the request: {m}; check the role's trust policy and this user's groups"),
            )),
            Err(StsError::Transient(m)) => Err(err(
                ErrorKind::Upstream,
                format!("STS is unreachable or failing ({m}); check the network and run `keyward login --profile {base_name}` again"),
            )),
            Err(e @ StsError::Other { .. }) => Err(err(ErrorKind::Upstream, e.to_string())),
        }
    }

    async fn mark_revoked(&self, base_name: &str) {
        let key_id = self
            .read_key(base_name)
            .await
            .map(|k| k.id.clone())
            .unwrap_or_default();
        let mut st = self.state();
        st.revoked.insert(base_name.to_owned(), key_id);
        st.sessions.clear();
        st.leases.clear();
    }

    async fn read_key(&self, profile: &str) -> Result<AccessKey, ErrorBody> {
        let keys = self.keys.clone();
        let name = profile.to_owned();
        let got = tokio::task::spawn_blocking(move || keys.get(&name))
            .await
            .map_err(|_| err(ErrorKind::Internal, "keychain task failed"))?;
        match got {
            Ok(Some(k)) => Ok(k),
            Ok(None) => Err(err(
                ErrorKind::NoKey,
                format!("the keychain holds no access key for profile `{profile}`; run `keyward key import --profile {profile}`"),
            )),
            Err(e) => Err(err(ErrorKind::Keychain, e.to_string())),
        }
    }

    /// Joins the flight for `key`, or leads it: `make` runs once in its own task so a
    /// caller that goes away does not cancel it for the others.
    async fn flight<F, Fut>(self: &Arc<Self>, key: &str, make: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Session, ErrorBody>> + Send + 'static,
    {
        let claimed = {
            let mut st = self.state();
            if let Some(rx) = st.flights.get(key) {
                Err(rx.clone())
            } else {
                let (tx, rx) = watch::channel(None);
                st.flights.insert(key.to_owned(), rx);
                Ok((tx, st.epoch))
            }
        };
        let (tx, epoch) = match claimed {
            Ok(leader) => leader,
            Err(rx) => return join(rx).await,
        };
        let fut = make();
        let this = self.clone();
        let key = key.to_owned();
        let task = tokio::spawn(async move {
            let result = fut.await.map(Arc::new);
            {
                let mut st = this.state();
                st.flights.remove(&key);
                if let Ok(s) = &result {
                    if st.epoch == epoch {
                        st.sessions.insert(key.clone(), s.clone());
                    }
                }
            }
            let _ = tx.send(Some(result.clone()));
            this.bump();
            result
        });
        task.await
            .unwrap_or_else(|_| Err(err(ErrorKind::Internal, "the STS task failed")))
    }

    /// Asks STS whether each base profile's key still exists (GetCallerIdentity, always
    /// allowed). A key STS calls invalid marks the computer revoked and drops every
    /// session. With `only_live`, only profiles that hold a session are checked.
    pub async fn check_keys(
        self: &Arc<Self>,
        only_live: bool,
    ) -> Vec<(String, Result<(), ErrorBody>)> {
        let Ok(cfg) = self.config.get() else {
            return Vec::new();
        };
        let mut results = Vec::new();
        for name in cfg.profiles.keys() {
            let Ok(Profile::Base(base)) = cfg.resolve(name) else {
                continue;
            };
            {
                let st = self.state();
                if st.revoked.contains_key(name) {
                    results.push((name.clone(), Err(revoked_error(name))));
                    continue;
                }
                let live = st
                    .sessions
                    .keys()
                    .any(|s| s == name || cfg.resolve(s).is_ok_and(|p| p.base().name == *name));
                if only_live && !live {
                    continue;
                }
            }
            let key = match self.read_key(name).await {
                Ok(k) => k,
                Err(e) if e.kind == ErrorKind::NoKey => continue,
                Err(e) => {
                    results.push((name.clone(), Err(e)));
                    continue;
                }
            };
            let outcome = match self.upstream.check_key(key, base.region.clone()).await {
                Ok(()) => Ok(()),
                Err(StsError::KeyInvalid(m)) => {
                    tracing::warn!(profile = %name, message = %m, "STS no longer knows this computer's key; dropping every session");
                    self.mark_revoked(name).await;
                    self.bump();
                    Err(revoked_error(name))
                }
                Err(e) => Err(err(ErrorKind::Upstream, e.to_string())),
            };
            results.push((name.clone(), outcome));
        }
        results
    }

    /// Forgets every session (their secrets are zeroized as the last reference drops).
    /// The revoked mark stays unless `forget_revoked` (the key changed).
    pub fn lock(&self, forget_revoked: bool) -> usize {
        let n = {
            let mut st = self.state();
            st.epoch += 1;
            st.leases.clear();
            st.failed.clear();
            st.mfa_failures.clear();
            if forget_revoked {
                st.revoked.clear();
            }
            let n = st.sessions.len();
            st.sessions.clear();
            n
        };
        self.bump();
        n
    }

    pub fn status(&self) -> Status {
        let now = SystemTime::now();
        let st = self.state();
        let mut sessions: Vec<_> = st
            .sessions
            .iter()
            .filter(|(_, s)| s.remaining(now) > Duration::ZERO)
            .map(|(name, s)| s.info(name, now))
            .collect();
        sessions.sort_by(|a, b| a.profile.cmp(&b.profile));
        let mut revoked: Vec<_> = st.revoked.keys().cloned().collect();
        revoked.sort();
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: keyward_proto::PROTOCOL_VERSION,
            pid: std::process::id(),
            sessions,
            revoked,
            hardening: Some(crate::harden::report()),
        }
    }
}

async fn join(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone().expect("checked is_some"),
        Err(_) => Err(err(
            ErrorKind::Internal,
            "the STS call was abandoned; try again",
        )),
    }
}

/// `RoleSessionName` allows `[\w+=,.@-]`, 2 to 64 characters.
fn session_name(base: &str) -> String {
    let mut name: String = format!("keyward-{base}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests;
