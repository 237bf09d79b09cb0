//! The broker: in-memory sessions, one upstream call per profile at a time
//! (singleflight), one MFA prompt per device at a time (a lease), refresh-ahead for
//! role credentials, and the TOTP reuse guard.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keyward_proto::{ErrorBody, ErrorKind, MIN_REMAINING_SECS};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{BaseProfile, Profile, RoleProfile};
use crate::keychain::{KeyStore, KeychainError};
use crate::session::{AccessKey, Session};
use crate::sts::{AssumeRoleRequest, Caller, StsError, Upstream};

mod chores;
mod mfa;
mod mfa_guard;
mod upkeep;

pub use crate::config::ConfigSource;
use mfa_guard::MfaGuard;
pub use upkeep::{relevant_environment, Working};

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

type Outcome = Result<Arc<Session>, ErrorBody>;

struct State {
    sessions: HashMap<String, Arc<Session>>,
    flights: HashMap<String, watch::Receiver<Option<Outcome>>>,
    /// MFA serial -> until when one caller holds the prompt.
    leases: HashMap<String, Instant>,
    /// Which codes may go to STS: reuse, wrong-code backoff, restarts.
    guard: MfaGuard,
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
    /// Base profile -> when its key's age was last checked for rotation.
    rotation_checked: HashMap<String, Instant>,
    /// The last desktop notices (also logged).
    notices: Vec<String>,
}

pub struct Broker<U: Upstream> {
    upstream: U,
    keys: Arc<dyn KeyStore>,
    config: ConfigSource,
    state: Mutex<State>,
    generation: watch::Sender<u64>,
    /// Requests being worked on (not `status`): a helper that waits on one of them
    /// asks `status` whether the daemon is busy or hung.
    working: AtomicUsize,
    /// The daemon's own values of [`keyward_proto::RELEVANT_ENV`].
    environment: BTreeMap<String, String>,
    /// What time it is, for session windows and backoff.
    clock: Clock,
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

impl<U: Upstream> Broker<U> {
    /// A broker whose MFA steps stay in memory (tests).
    pub fn new(upstream: U, keys: Arc<dyn KeyStore>, config_path: PathBuf) -> Arc<Self> {
        Self::with_mfa_store(upstream, keys, config_path, None)
    }

    /// A broker that keeps the TOTP step of each sent code in `mfa_store`, so that a
    /// restarted daemon never resends a code AWS already took.
    pub fn with_mfa_store(
        upstream: U,
        keys: Arc<dyn KeyStore>,
        config_path: PathBuf,
        mfa_store: Option<PathBuf>,
    ) -> Arc<Self> {
        Self::with_clock(upstream, keys, config_path, mfa_store, Clock::system())
    }

    /// The same, reading the time from `clock`.
    pub fn with_clock(
        upstream: U,
        keys: Arc<dyn KeyStore>,
        config_path: PathBuf,
        mfa_store: Option<PathBuf>,
        clock: Clock,
    ) -> Arc<Self> {
        let state = State {
            sessions: HashMap::new(),
            flights: HashMap::new(),
            leases: HashMap::new(),
            guard: MfaGuard::new(mfa_store).with_clock(clock),
            failed: HashMap::new(),
            revoked: HashMap::new(),
            mfa_failures: HashMap::new(),
            epoch: 0,
            rotation_checked: HashMap::new(),
            notices: Vec::new(),
        };
        Arc::new(Self {
            upstream,
            keys,
            config: ConfigSource::new(config_path),
            state: Mutex::new(state),
            generation: watch::channel(0).0,
            working: AtomicUsize::new(0),
            environment: relevant_environment(),
            clock,
        })
    }

    /// Marks a request as being worked on until the guard drops.
    pub fn working(&self) -> Working<'_> {
        self.working.fetch_add(1, Ordering::SeqCst);
        Working(&self.working)
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
            Profile::Base(b) => {
                let served = self.mfa_session(&b.name, &b, can_prompt).await;
                if served.is_ok() {
                    self.maybe_rotate(&b.name);
                }
                served
            }
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
                    if s.remaining(self.clock.now()) >= MIN_REMAINING {
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
                let now = Instant::now();
                match st.leases.get(&base.mfa_serial) {
                    _ if !can_prompt => None,
                    Some(until) if *until > now && now < deadline => Some((*until).min(deadline)),
                    Some(_) if now >= deadline => None,
                    _ => {
                        let ttl = if base.mfa_process.is_some() {
                            LEASE_MFA_PROCESS
                        } else {
                            LEASE_TERMINAL
                        };
                        st.leases.insert(base.mfa_serial.clone(), now + ttl);
                        None
                    }
                }
            };
            match wait_until {
                Some(until) => {
                    let _ = tokio::time::timeout_at(until.into(), rx.changed()).await;
                }
                None => return Err(self.code_needed(name, base).await),
            }
        }
    }

    /// `mfa_required` for a caller that would be asked for a code, unless the key is
    /// missing or unreadable: nobody should type a code for a key that is not there.
    async fn code_needed(&self, name: &str, base: &BaseProfile) -> ErrorBody {
        if let Err(e) = self.read_key(&base.name).await {
            self.state().leases.remove(&base.mfa_serial);
            self.bump();
            return e;
        }
        let mut required = err(
            ErrorKind::MfaRequired,
            format!(
                "an MFA code is needed for profile `{name}`; run `keyward login --profile {name}`"
            ),
        );
        required.mfa_serial = Some(base.mfa_serial.clone());
        required
    }

    async fn role_session(self: &Arc<Self>, r: &RoleProfile, can_prompt: bool) -> Outcome {
        let now = self.clock.now();
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
                format!("AWS refused the MFA code: {m}; enter the current code of the device, e.g. with `keyward login --profile {base_name}`"),
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
        let newly = {
            let mut st = self.state();
            let newly = st.revoked.insert(base_name.to_owned(), key_id).is_none();
            st.sessions.clear();
            st.leases.clear();
            newly
        };
        if newly {
            self.notify(&format!(
                "the access key of `{base_name}` was revoked or deleted; this computer gets no more AWS sessions until `keyward setup` registers it again"
            ));
        }
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
                format!("the keychain holds no access key for profile `{profile}`; register this computer with `keyward setup`, or store its existing key with `keyward key import --profile {profile}`"),
            )),
            Err(e @ KeychainError::Locked(_)) => Err(err(ErrorKind::KeyLocked, e.to_string())),
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
            if let Ok(s) = &result {
                if matches!(this.profile(&key), Ok(Profile::Base(_))) {
                    this.schedule_notice(&key, s);
                }
            }
            let _ = tx.send(Some(result.clone()));
            this.bump();
            result
        });
        task.await
            .unwrap_or_else(|_| Err(err(ErrorKind::Internal, "the STS task failed")))
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

#[cfg(test)]
mod mfa_tests;
