//! The broker's housekeeping: checking that keys still exist, `lock`, and `status`
//! (with the daemon's own environment and whether it is busy).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_proto::{ErrorBody, ErrorKind, Status};

use super::{err, revoked_error, Broker};
use crate::config::Profile;
use crate::sts::{StsError, Upstream};

/// Counts a request as being worked on while it lives.
pub struct Working<'a>(pub(super) &'a AtomicUsize);

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// This process's values of the variables that decide where STS calls and keychain
/// access go; a proxy's user and password are hidden.
pub fn relevant_environment() -> BTreeMap<String, String> {
    keyward_proto::RELEVANT_ENV
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .map(|v| ((*k).to_owned(), keyward_proto::hide_userinfo(&v)))
        })
        .collect()
}

impl<U: Upstream> Broker<U> {
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
        let now = self.clock.now();
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
            busy: !st.flights.is_empty()
                || self.working.load(Ordering::SeqCst) > 0
                || st.leases.values().any(|until| *until > Instant::now()),
            environment: self.environment.clone(),
        }
    }
}
