//! Enrollment codes: `keyward enroll` prints one on an admin computer, `keyward setup
//! --enroll` reads it on the new one (from the terminal or stdin, never argv).
//!
//! A code holds the temporary credentials of an enrollment session: the enroller
//! role, tagged with the one owner and machine it may register, for 15 minutes. AWS
//! enforces all of that (see the enroller policy); the checksum only catches a damaged
//! or edited code, and the expiry is checked before any AWS call.
//!
//! Both computers then show the same pairing code, derived from what the registration
//! created, so that the admin grants rights only to the computer in front of it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

const PREFIX: &str = "kw2";

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct EnrollCode {
    pub account: String,
    pub region: String,
    pub owner: String,
    pub machine: String,
    /// What the admin computer will grant once the computer appears (for display).
    pub groups: Vec<String>,
    pub buckets: Vec<String>,
    pub kms_keys: Vec<String>,
    pub issued_at: u64,
    pub expires_at: u64,
    pub issued_by: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl std::fmt::Debug for EnrollCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollCode")
            .field("owner", &self.owner)
            .field("machine", &self.machine)
            .field("account", &self.account)
            .field("expires_at", &self.expires_at)
            .field("credentials", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    #[error("that is not a keyward enrollment code (it should start with `kw2.`); copy it again from `keyward enroll`")]
    Malformed,
    #[error("the enrollment code is damaged or was edited (checksum mismatch); copy it again, or run `keyward enroll` again")]
    Tampered,
    #[error(
        "the enrollment code expired {0}s ago; run `keyward enroll` again on a registered computer"
    )]
    Expired(u64),
}

fn checksum(payload: &str) -> String {
    let digest = Sha256::digest(format!("{PREFIX}.{payload}").as_bytes());
    data_encoding::HEXLOWER.encode(&digest[..8])
}

/// The code both computers show after a registration: the same only if the admin
/// sees the very user, MFA device and key that this computer created.
pub fn pairing_code(user_arn: &str, mfa_serial: &str, key_id: &str) -> String {
    let digest =
        Sha256::digest(format!("keyward-pairing|{user_arn}|{mfa_serial}|{key_id}").as_bytes());
    let hex = data_encoding::HEXUPPER.encode(&digest[..4]);
    format!("{}-{}", &hex[..4], &hex[4..])
}

impl EnrollCode {
    pub fn encode(&self) -> zeroize::Zeroizing<String> {
        let json =
            zeroize::Zeroizing::new(serde_json::to_vec(self).expect("plain fields serialize"));
        let payload = zeroize::Zeroizing::new(data_encoding::BASE64URL_NOPAD.encode(&json));
        zeroize::Zeroizing::new(format!(
            "{PREFIX}.{}.{}",
            payload.as_str(),
            checksum(&payload)
        ))
    }

    /// Parses and checks a code at time `now` (seconds since the epoch).
    pub fn decode(text: &str, now: u64) -> Result<Self, CodeError> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let text = zeroize::Zeroizing::new(text);
        let mut parts = text.split('.');
        let (Some(PREFIX), Some(payload), Some(sum), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CodeError::Malformed);
        };
        if checksum(payload) != sum {
            return Err(CodeError::Tampered);
        }
        let json = zeroize::Zeroizing::new(
            data_encoding::BASE64URL_NOPAD
                .decode(payload.as_bytes())
                .map_err(|_| CodeError::Tampered)?,
        );
        let code: EnrollCode = serde_json::from_slice(&json).map_err(|_| CodeError::Tampered)?;
        if now >= code.expires_at {
            return Err(CodeError::Expired(now - code.expires_at));
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(expires_at: u64) -> EnrollCode {
        EnrollCode {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            owner: "alice".into(),
            machine: "work".into(),
            groups: vec!["dev".into()],
            buckets: vec![],
            kms_keys: vec![],
            issued_at: 1000,
            expires_at,
            issued_by: "alice-laptop".into(),
            access_key_id: "ASIAENROLL".into(),
            secret_access_key: "ENROLLSECRETCANARY".into(),
            session_token: "ENROLLTOKENCANARY".into(),
        }
    }

    #[test]
    fn round_trip_before_expiry() {
        let text = sample(2000).encode();
        let back = EnrollCode::decode(&text, 1500).unwrap();
        assert_eq!(back.owner, "alice");
        assert_eq!(back.session_token, "ENROLLTOKENCANARY");
        // Line breaks and spaces from copy-paste are fine.
        let wrapped = format!("  {}\n{} ", &text[..20], &text[20..]);
        assert!(EnrollCode::decode(&wrapped, 1500).is_ok());
    }

    #[test]
    fn expired_tampered_and_garbage_are_refused() {
        let text = sample(2000).encode();
        assert_eq!(
            EnrollCode::decode(&text, 2000).unwrap_err(),
            CodeError::Expired(0)
        );
        let mut bytes = text.as_bytes().to_vec();
        let i = 10;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(bytes).unwrap();
        assert_eq!(
            EnrollCode::decode(&edited, 1500).unwrap_err(),
            CodeError::Tampered
        );
        assert_eq!(
            EnrollCode::decode("hello", 1500).unwrap_err(),
            CodeError::Malformed
        );
        assert_eq!(
            EnrollCode::decode("kw2.a.b.c", 1500).unwrap_err(),
            CodeError::Malformed
        );
    }

    /// Pasted codes are untrusted: any mangling is refused, never a panic, never accepted.
    #[test]
    fn mangled_codes_are_refused_without_panic() {
        let text = sample(2000).encode();
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let mut b = text.as_bytes().to_vec();
            let i = (next() as usize) % b.len();
            match next() % 3 {
                0 => b[i] = b"A.-_9z="[(next() % 7) as usize],
                1 => b.truncate(i),
                _ => b.insert(i, b'.'),
            }
            let mangled = String::from_utf8_lossy(&b).into_owned();
            if mangled != *text {
                assert!(
                    EnrollCode::decode(&mangled, 1500).is_err(),
                    "accepted: {mangled}"
                );
            }
        }
    }

    #[test]
    fn pairing_codes_differ_for_another_key() {
        let a = pairing_code("arn:u", "arn:mfa", "AKIA1");
        assert_eq!(a.len(), 9);
        assert_eq!(a, pairing_code("arn:u", "arn:mfa", "AKIA1"));
        assert_ne!(a, pairing_code("arn:u", "arn:mfa", "AKIA2"));
    }

    #[test]
    fn debug_redacts_the_credentials() {
        let d = format!("{:?}", sample(2000));
        assert!(!d.contains("CANARY") && !d.contains("ASIAENROLL"), "{d}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            /// Every code decodes to what was encoded before it expires, and to an
            /// error (never a panic) once it has, or once any character changed.
            #[test]
            fn codes_round_trip_and_any_change_is_refused(
                owner in "[a-z0-9]{1,12}",
                machine in "[a-z0-9-]{1,20}",
                groups in proptest::collection::vec("[A-Za-z0-9_+=,.@-]{1,20}", 0..4),
                secret in "[A-Za-z0-9/+]{40}",
                at in 0usize..400,
                to in proptest::char::range('!', '~'),
            ) {
                let mut code = sample(2000);
                code.owner = owner;
                code.machine = machine;
                code.groups = groups;
                code.secret_access_key = secret;
                let text = code.encode();
                let back = EnrollCode::decode(&text, 1500).unwrap();
                let again = back.encode();
                prop_assert_eq!(again.as_str(), text.as_str());
                prop_assert!(EnrollCode::decode(&text, 2001).is_err());
                let mut chars: Vec<char> = text.chars().collect();
                let i = at % chars.len();
                if chars[i] != to {
                    chars[i] = to;
                    let changed: String = chars.into_iter().collect();
                    prop_assert!(EnrollCode::decode(&changed, 1500).is_err());
                }
            }

            #[test]
            fn any_text_is_refused_without_a_panic(text in ".{0,300}") {
                prop_assert!(EnrollCode::decode(&text, 1500).is_err());
            }
        }
    }
}
