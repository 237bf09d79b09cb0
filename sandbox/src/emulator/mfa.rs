//! MFA as AWS does it: a code is valid one TOTP step either side of now, and never
//! twice. The emulator also plays the phone: it hands out each device's codes.

use std::time::Duration;

use crate::emulator::state::Emulator;
use crate::totp;

/// Why an MFA code was refused; both read "MultiFactorAuthentication failed" at AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaRefusal {
    UnknownDevice,
    BadCode,
}

impl MfaRefusal {
    pub fn message(self) -> &'static str {
        match self {
            MfaRefusal::UnknownDevice => "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.",
            MfaRefusal::BadCode => "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
        }
    }
}

impl Emulator {
    /// Checks a code like AWS: one step either side, never twice.
    pub(crate) fn check_mfa(&self, serial: &str, code: &str) -> Result<(), MfaRefusal> {
        let now = self.aws_step();
        let mut inner = self.inner();
        inner.codes_seen.push(code.to_owned());
        let Some(seed) = inner.seeds.get(serial).cloned() else {
            inner.invalid_code_attempts += 1;
            return Err(MfaRefusal::UnknownDevice);
        };
        let key = (serial.to_owned(), code.to_owned());
        if inner.used_codes.contains(&key) {
            inner.reused_code_attempts += 1;
            return Err(MfaRefusal::BadCode);
        }
        if ![now - 1, now, now + 1]
            .iter()
            .any(|&c| totp::code(&seed, c) == code)
        {
            inner.invalid_code_attempts += 1;
            return Err(MfaRefusal::BadCode);
        }
        inner.used_codes.insert(key);
        inner.valid_codes.push(code.to_owned());
        Ok(())
    }

    pub(crate) fn learn_seed(&self, serial: &str, seed: Vec<u8>) {
        self.inner().seeds.insert(serial.to_owned(), seed);
    }

    /// A current TOTP code for the device whose serial ends in `/<device>`, never one
    /// handed out before (like a person waiting for the next code). `None` when the
    /// device is unknown; `Some(Err(wait))` when the caller must wait for the next step.
    pub fn next_code(&self, device: &str) -> Option<Result<String, Duration>> {
        let now = self.aws_step();
        let secs = self
            .aws_time()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut inner = self.inner();
        let seed = inner
            .seeds
            .iter()
            .find(|(serial, _)| serial.rsplit('/').next() == Some(device))
            .map(|(_, s)| s.clone())?;
        // AWS accepts one step either side, so a t-1 code still works, but only while
        // step t lasts: hand one out only with 10 s or more of the step left, so it cannot
        // expire between here and STS. Codes for t and t+1 stay valid for 30 s or more.
        let floor = if secs % totp::STEP < totp::STEP - 10 {
            now - 1
        } else {
            now
        };
        let counter = inner
            .handed_out
            .get(device)
            .map_or(floor, |l| (l + 1).max(floor));
        if counter > now + 1 {
            return Some(Err(Duration::from_secs(totp::STEP - secs % totp::STEP)));
        }
        inner.handed_out.insert(device.to_owned(), counter);
        Some(Ok(totp::code(&seed, counter)))
    }

    /// What an authenticator shows now: the code of the current step, the same one
    /// until the step ends. `host_clock`: by this computer's clock (an authenticator
    /// here, e.g. `ykman oath`), else by AWS's (a phone).
    pub fn current_code(&self, device: &str, host_clock: bool) -> Option<String> {
        let step = if host_clock {
            totp::now_step()
        } else {
            self.aws_step()
        };
        let inner = self.inner();
        let seed = inner
            .seeds
            .iter()
            .find(|(serial, _)| serial.rsplit('/').next() == Some(device))
            .map(|(_, s)| s.clone())?;
        Some(totp::code(&seed, step))
    }
}
