//! Taking an MFA code: the guard decides whether it may go to STS, one flight sends it,
//! and the outcome (a session, a refusal, an upstream failure) is shared with every
//! request waiting for that device.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use keyward_proto::{tty::is_valid_code, ErrorBody, ErrorKind};
use zeroize::Zeroizing;

use super::mfa_guard::{self, Admission};
use super::{err, session_name, Broker, Outcome, MIN_REMAINING};
use crate::config::{BaseProfile, Profile, RoleProfile};
use crate::session::{AccessKey, Session};
use crate::sts::{AssumeRoleRequest, Caller, StsError, Upstream};

/// Why the guard kept a code from STS, in words that say when to try again.
fn not_admitted(a: &Admission, profile: &str, serial: &str, now: SystemTime) -> ErrorBody {
    let mut e = match a {
        Admission::Reused { retry_after } => {
            let mut e = err(
                ErrorKind::MfaReused,
                format!("that MFA code was already used; wait {retry_after} s for the next one and run `keyward login --profile {profile}`"),
            );
            e.retry_after_secs = Some(*retry_after);
            e
        }
        Admission::RefusedBefore => err(
            ErrorKind::MfaInvalid,
            format!("AWS refused this same code a moment ago; enter the current code of {serial}"),
        ),
        Admission::Throttled { retry_after } => {
            let at = now + Duration::from_secs(*retry_after);
            let mut e = err(
                ErrorKind::MfaThrottled,
                format!(
                    "too many wrong MFA codes for {serial}: the next try is allowed in {retry_after} s (at {})",
                    humantime::format_rfc3339_seconds(at)
                ),
            );
            e.retry_after_secs = Some(*retry_after);
            e
        }
        Admission::Go => err(ErrorKind::Internal, "admitted"),
    };
    e.mfa_serial = Some(serial.to_owned());
    e
}

impl<U: Upstream> Broker<U> {
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
        let (target, base, direct_role) = match &prof {
            Profile::Base(b) => (b.name.clone(), b.clone(), None),
            Profile::Role(r) if r.needs_direct_mfa() => {
                (r.name.clone(), r.source.clone(), Some(r.clone()))
            }
            Profile::Role(r) => (r.source.name.clone(), r.source.clone(), None),
        };
        let leader = {
            let mut st = self.state();
            let live = st
                .sessions
                .get(&target)
                .is_some_and(|s| s.remaining(self.clock.now()) >= MIN_REMAINING);
            if live || st.flights.contains_key(&target) {
                false
            } else {
                match st.guard.admit(&base.mfa_serial, &code) {
                    Admission::Go => true,
                    other => {
                        // The prompt this code answered is over: the next caller may
                        // prompt at once instead of waiting out the lease.
                        st.leases.remove(&base.mfa_serial);
                        drop(st);
                        self.bump();
                        return Err(not_admitted(
                            &other,
                            profile,
                            &base.mfa_serial,
                            self.clock.now(),
                        ));
                    }
                }
            }
        };
        let result = if leader {
            self.lead_mfa(&target, base, direct_role, code).await
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

    /// Sends an admitted code to STS in a flight. The code counts as used only once the
    /// key was read and the call is about to go out; the outcome is shared with every
    /// request that was waiting for this device's prompt.
    async fn lead_mfa(
        self: &Arc<Self>,
        target: &str,
        base: BaseProfile,
        direct_role: Option<RoleProfile>,
        code: Zeroizing<String>,
    ) -> Outcome {
        let serial = base.mfa_serial.clone();
        let this = self.clone();
        let sent_code = code.clone();
        let r = self
            .flight(target, move || async move {
                let key = match this.read_key(&base.name).await {
                    Ok(k) => k,
                    Err(e) => {
                        this.state().guard.withdraw(&base.mfa_serial, &sent_code);
                        return Err(e);
                    }
                };
                this.state().guard.sent(&base.mfa_serial);
                let call = this.mfa_call(key, &base, direct_role, sent_code);
                this.call(&base.name, call).await
            })
            .await;
        let r = self.settle_mfa(&serial, &code, r);
        self.bump();
        r
    }

    /// GetSessionToken, or AssumeRole with the key and the code for a long role.
    fn mfa_call(
        &self,
        key: AccessKey,
        base: &BaseProfile,
        direct_role: Option<RoleProfile>,
        code: Zeroizing<String>,
    ) -> impl std::future::Future<Output = Result<Session, StsError>> + Send + '_ {
        let serial = base.mfa_serial.clone();
        let region = base.region.clone();
        let duration = base.session_duration;
        let source_identity = base.source_identity();
        let session_name = session_name(&base.name);
        async move {
            match direct_role {
                Some(r) => {
                    let req = AssumeRoleRequest {
                        role_arn: r.role_arn.clone(),
                        session_name,
                        duration: r.duration,
                        external_id: r.external_id.clone(),
                        region,
                        source_identity,
                    };
                    let caller = Caller::KeyWithMfa { key, serial, code };
                    self.upstream.assume_role(caller, req).await
                }
                None => {
                    self.upstream
                        .get_session_token(key, region, serial, code, duration)
                        .await
                }
            }
        }
    }

    /// Records what STS made of a code; waiters that entered before share the outcome,
    /// a refusal as much as an upstream failure, instead of paying for their own try.
    fn settle_mfa(&self, serial: &str, code: &Zeroizing<String>, r: Outcome) -> Outcome {
        let mut st = self.state();
        st.leases.remove(serial);
        match r {
            Ok(s) => {
                st.guard.accepted(serial, code);
                st.mfa_failures.remove(serial);
                Ok(s)
            }
            Err(mut e) => {
                if e.kind == ErrorKind::MfaInvalid {
                    if let Some(backoff) = st.guard.refused(serial, code) {
                        let _ = write!(
                            e.message,
                            "; after {} wrong codes the next try is allowed in {} s (at {})",
                            mfa_guard::FREE_WRONG,
                            backoff.as_secs(),
                            humantime::format_rfc3339_seconds(self.clock.now() + backoff)
                        );
                    }
                }
                st.mfa_failures
                    .insert(serial.to_owned(), (Instant::now(), e.clone()));
                Err(e)
            }
        }
    }
}
