//! What the daemon does on its own: while it holds a profile's MFA session, rotating
//! an access key older than `rotate_after` (it runs `keyward rotate --auto`, which
//! needs that session for IAM), and desktop notices (the session ends in 10 minutes,
//! the key was revoked). `notify = false` turns the notices off.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Broker;
use crate::session::Session;
use crate::sts::Upstream;

/// How long before a session ends its notice shows.
pub const NOTICE_AHEAD: Duration = Duration::from_secs(10 * 60);
/// At most this often a profile's key age is checked.
const ROTATION_CHECK: Duration = Duration::from_secs(3600);

/// The `keyward` CLI next to this daemon.
fn cli() -> Option<std::path::PathBuf> {
    let me = std::env::current_exe().ok()?;
    let cli = me.with_file_name("keyward");
    cli.is_file().then_some(cli)
}

/// How often to check a key: hourly, or more often for a shorter `rotate_after`.
pub fn check_every(rotate_after: Duration) -> Duration {
    (rotate_after / 2).clamp(Duration::from_secs(1), ROTATION_CHECK)
}

impl<U: Upstream> Broker<U> {
    fn notices_on(&self) -> bool {
        self.config.get().is_ok_and(|c| c.notify())
    }

    pub(super) fn notify(&self, body: &str) {
        tracing::info!(notice = %body.escape_debug(), "notice");
        {
            let mut st = self.state();
            if st.notices.len() >= 20 {
                st.notices.remove(0);
            }
            st.notices.push(body.to_owned());
        }
        keyward_proto::notify::notify(body, self.notices_on());
    }

    /// The last notices shown (newest last).
    #[cfg(test)]
    pub(crate) fn notices(&self) -> Vec<String> {
        self.state().notices.clone()
    }

    /// After serving `base`'s own session: maybe run `keyward rotate --auto`.
    pub(super) fn maybe_rotate(&self, base: &str) {
        let Ok(cfg) = self.config.get() else { return };
        let after = match cfg.rotate_after() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "no automatic rotation");
                return;
            }
        };
        {
            let mut st = self.state();
            let due = st
                .rotation_checked
                .get(base)
                .is_none_or(|t| t.elapsed() >= check_every(after));
            if !due {
                return;
            }
            st.rotation_checked.insert(base.to_owned(), Instant::now());
        }
        let Some(cli) = cli() else {
            tracing::warn!("no keyward next to keywardd: no automatic rotation");
            return;
        };
        let profile = base.to_owned();
        // A thread, not the runtime: the child may take a minute (STS accepting the key).
        std::thread::spawn(move || {
            let out = std::process::Command::new(cli)
                .args(["rotate", "--auto", "--profile", &profile])
                .stdin(Stdio::null())
                .output();
            match out {
                Ok(out) => {
                    let said = String::from_utf8_lossy(if out.status.success() {
                        &out.stdout
                    } else {
                        &out.stderr
                    });
                    let last = said.lines().last().unwrap_or_default().to_owned();
                    tracing::info!(profile = %profile.escape_debug(), ok = out.status.success(), said = %last.escape_debug(), "key rotation check");
                }
                Err(e) => tracing::warn!(error = %e, "cannot run keyward rotate"),
            }
        });
    }

    /// A new MFA session for `name`: a notice 10 minutes before it ends, if it is
    /// still the one held then.
    pub(super) fn schedule_notice(self: &Arc<Self>, name: &str, session: &Arc<Session>) {
        let Some(wait) = notice_wait(session.remaining(self.clock.now())) else {
            return;
        };
        // Weak: a session `lock` forgets must be dropped (and zeroized) now, not when
        // its notice would have shown.
        let (this, name, session) = (self.clone(), name.to_owned(), Arc::downgrade(session));
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(session) = session.upgrade() {
                this.notice_if_current(&name, &session);
            }
        });
    }

    /// The session-ending notice, unless `session` is no longer the one held (a new
    /// login, or `lock`).
    pub(super) fn notice_if_current(&self, name: &str, session: &Arc<Session>) {
        let current = self
            .state()
            .sessions
            .get(name)
            .is_some_and(|s| Arc::ptr_eq(s, session));
        if current {
            self.notify(&format!(
                "the MFA session of `{name}` ends in 10 minutes; `keyward login --profile {name}` starts a new one"
            ));
        }
    }
}

/// How long to wait before a session with `left` to live gets its notice.
pub fn notice_wait(left: Duration) -> Option<Duration> {
    left.checked_sub(NOTICE_AHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_hourly_or_sooner_for_short_rotation_periods() {
        assert_eq!(
            check_every(Duration::from_secs(90 * 86_400)),
            ROTATION_CHECK
        );
        assert_eq!(
            check_every(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(check_every(Duration::from_secs(1)), Duration::from_secs(1));
    }

    #[test]
    fn the_notice_waits_until_ten_minutes_are_left() {
        assert_eq!(
            notice_wait(Duration::from_secs(16 * 60)),
            Some(Duration::from_secs(6 * 60))
        );
        assert_eq!(notice_wait(Duration::from_secs(9 * 60)), None);
    }
}
