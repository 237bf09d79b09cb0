//! RFC 6238 TOTP (SHA-1, 30 s, 6 digits), as AWS virtual MFA devices use.

use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const STEP: u64 = 30;

/// moto (like AWS) sends `Base32StringSeed` as base64 of the base32 text.
pub fn seed_from_wire(b64: &str) -> Option<Vec<u8>> {
    let b32 = data_encoding::BASE64.decode(b64.trim().as_bytes()).ok()?;
    seed_from_base32(std::str::from_utf8(&b32).ok()?)
}

pub fn seed_from_base32(b32: &str) -> Option<Vec<u8>> {
    let clean: String = b32.trim().trim_end_matches('=').to_ascii_uppercase();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()
}

pub fn code(seed: &[u8], counter: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(seed).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

pub fn now_step() -> u64 {
    now_secs() / STEP
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s -> 94287082 (8 digits); 6 digits: 287082.
        assert_eq!(super::code(b"12345678901234567890", 59 / 30), "287082");
    }
}
