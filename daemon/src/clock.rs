//! The one clock keyward decides by: session windows and MFA backoff in the daemon;
//! grant expiry and pruning, key age, idle machines, enrollment-code expiry and the tags
//! that record when something happened in the CLI. Binaries take [`Clock::system`] once
//! at the top and hand it down; tests pass [`Clock::fixed`], so no test depends on
//! today's date.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// `None` reads the system clock at each call.
    fixed: Option<SystemTime>,
}

impl Clock {
    /// The computer's clock: what every command uses.
    pub const fn system() -> Self {
        Self { fixed: None }
    }

    /// A clock stopped at `at` (tests).
    pub const fn fixed(at: SystemTime) -> Self {
        Self { fixed: Some(at) }
    }

    /// A clock stopped at an RFC 3339 time (tests).
    pub fn at(rfc3339: &str) -> Self {
        Self::fixed(humantime::parse_rfc3339(rfc3339).expect("an RFC 3339 time"))
    }

    pub fn now(self) -> SystemTime {
        self.fixed.unwrap_or_else(SystemTime::now)
    }

    pub fn utc(self) -> DateTime<Utc> {
        DateTime::<Utc>::from(self.now())
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }

    /// Now, as the RFC 3339 text keyward writes into tags.
    pub fn rfc3339(self) -> String {
        humantime::format_rfc3339_seconds(self.now()).to_string()
    }

    /// How long ago `then` was (zero for a time in the future).
    pub fn since(self, then: SystemTime) -> Duration {
        self.now().duration_since(then).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_says_the_same_time_in_every_form() {
        let c = Clock::at("2030-01-02T03:04:05Z");
        assert_eq!(c.rfc3339(), "2030-01-02T03:04:05Z");
        assert_eq!(c.utc().to_rfc3339(), "2030-01-02T03:04:05+00:00");
        assert_eq!(c.unix(), 1_893_553_445);
        assert_eq!(c.now(), c.now());
        let earlier = humantime::parse_rfc3339("2030-01-01T03:04:05Z").unwrap();
        assert_eq!(c.since(earlier), Duration::from_secs(86_400));
        assert_eq!(
            Clock::at("2029-01-01T00:00:00Z").since(c.now()),
            Duration::ZERO
        );
    }
}
