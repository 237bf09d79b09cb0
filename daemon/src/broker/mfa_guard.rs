//! Which MFA codes may go to STS. Per device it remembers every code tried within the
//! reuse window and what STS made of it, backs off after wrong codes, and keeps the
//! TOTP step of the last code it sent (never the code) in a 0600 file of the runtime
//! directory, so that a restarted daemon does not resend a code AWS already took.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use zeroize::Zeroizing;

use crate::clock::Clock;

/// A code is remembered this long (AWS accepts a code for about one step either side).
pub const CODE_MEMORY: Duration = Duration::from_secs(120);
/// Wrong codes in a row before the device backs off.
pub const FREE_WRONG: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
const TOTP_STEP: u64 = 30;

/// What the guard says about a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Send it to STS.
    Go,
    /// AWS took this code (or, after a restart, maybe one of this step): wait.
    Reused { retry_after: u64 },
    /// STS refused this very code a moment ago; sending it again would only count
    /// as another wrong code.
    RefusedBefore,
    /// Too many wrong codes: nothing goes to STS for this device before then.
    Throttled { retry_after: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Admitted; STS has it or is about to.
    Pending,
    Accepted,
    Refused,
}

struct Tried {
    code: Zeroizing<String>,
    at: Instant,
    fate: Fate,
}

#[derive(Default)]
struct Device {
    tried: Vec<Tried>,
    wrong_in_a_row: u32,
    backoff: Duration,
    blocked_until: Option<Instant>,
}

pub struct MfaGuard {
    devices: HashMap<String, Device>,
    /// Where the steps are kept; `None` keeps them in memory only (tests).
    store: Option<PathBuf>,
    /// MFA serial -> the TOTP step of the last code sent, by this or an earlier daemon.
    steps: BTreeMap<String, u64>,
    /// Serials this daemon has sent a code for: its own memory is exact for them.
    mine: std::collections::HashSet<String>,
    clock: Clock,
}

/// The TOTP step at `clock`'s now.
pub fn current_step(clock: Clock) -> u64 {
    clock.unix() / TOTP_STEP
}

/// Seconds until the next TOTP step begins.
pub fn seconds_to_next_step(clock: Clock) -> u64 {
    let now = clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    TOTP_STEP - now % TOTP_STEP
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl MfaGuard {
    /// A guard whose steps live in `store` (read now, if it exists).
    pub fn new(store: Option<PathBuf>) -> Self {
        let steps = store
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            devices: HashMap::new(),
            store,
            steps,
            mine: std::collections::HashSet::new(),
            clock: Clock::system(),
        }
    }

    /// The same guard, reading TOTP steps from `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// Decides about `code` for device `serial`; a `Go` code is remembered as pending.
    pub fn admit(&mut self, serial: &str, code: &Zeroizing<String>) -> Admission {
        let now = Instant::now();
        let dev = self.devices.entry(serial.to_owned()).or_default();
        dev.tried.retain(|t| now.duration_since(t.at) < CODE_MEMORY);
        if let Some(until) = dev.blocked_until.filter(|u| *u > now) {
            return Admission::Throttled {
                retry_after: ceil_secs(until - now),
            };
        }
        if let Some(t) = dev.tried.iter().find(|t| t.code.as_str() == code.as_str()) {
            return match t.fate {
                Fate::Refused => Admission::RefusedBefore,
                Fate::Pending | Fate::Accepted => Admission::Reused {
                    retry_after: seconds_to_next_step(self.clock),
                },
            };
        }
        // An earlier daemon sent a code in this step: this one may be the same.
        let restored = !self.mine.contains(serial);
        if restored
            && self
                .steps
                .get(serial)
                .is_some_and(|s| *s >= current_step(self.clock))
        {
            return Admission::Reused {
                retry_after: seconds_to_next_step(self.clock),
            };
        }
        dev.tried.push(Tried {
            code: code.clone(),
            at: now,
            fate: Fate::Pending,
        });
        Admission::Go
    }

    /// The code never reached STS (the key could not be read): forget it.
    pub fn withdraw(&mut self, serial: &str, code: &Zeroizing<String>) {
        if let Some(dev) = self.devices.get_mut(serial) {
            dev.tried.retain(|t| t.code.as_str() != code.as_str());
        }
    }

    /// The code is about to go to STS: record its step where a restart finds it.
    pub fn sent(&mut self, serial: &str) {
        self.mine.insert(serial.to_owned());
        self.steps
            .insert(serial.to_owned(), current_step(self.clock));
        self.save();
    }

    /// STS refused the code. Returns the backoff when this made the device back off.
    pub fn refused(&mut self, serial: &str, code: &Zeroizing<String>) -> Option<Duration> {
        self.set_fate(serial, code, Fate::Refused);
        // A wrong code burns nothing: the right code of this step is still unused.
        if self.steps.remove(serial).is_some() {
            self.save();
        }
        let dev = self.devices.entry(serial.to_owned()).or_default();
        dev.wrong_in_a_row += 1;
        if dev.wrong_in_a_row < FREE_WRONG {
            return None;
        }
        dev.backoff = if dev.backoff.is_zero() {
            FIRST_BACKOFF
        } else {
            (dev.backoff * 2).min(MAX_BACKOFF)
        };
        dev.blocked_until = Some(Instant::now() + dev.backoff);
        Some(dev.backoff)
    }

    /// STS took the code: the device's count of wrong codes starts again.
    pub fn accepted(&mut self, serial: &str, code: &Zeroizing<String>) {
        self.set_fate(serial, code, Fate::Accepted);
        let dev = self.devices.entry(serial.to_owned()).or_default();
        dev.wrong_in_a_row = 0;
        dev.backoff = Duration::ZERO;
        dev.blocked_until = None;
    }

    fn set_fate(&mut self, serial: &str, code: &Zeroizing<String>, fate: Fate) {
        if let Some(t) = self.devices.get_mut(serial).and_then(|d| {
            d.tried
                .iter_mut()
                .find(|t| t.code.as_str() == code.as_str())
        }) {
            t.fate = fate;
        }
    }

    /// Writes the steps (serials and step numbers: nothing secret), 0600, atomically.
    fn save(&self) {
        let Some(path) = &self.store else { return };
        let Ok(json) = serde_json::to_vec(&self.steps) else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&json))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot keep the MFA steps; a restart may resend a used code");
        }
    }
}

#[cfg(test)]
mod tests;
