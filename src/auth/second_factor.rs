//! The second factor: TOTP (RFC 6238, SHA-1, 6 digits, 30 s, as every
//! authenticator app expects) and one-time recovery codes.
//!
//! A code is accepted in the window before, at and after now (±30 s of
//! clock drift), and only for a time step later than the last one used,
//! so a code seen over someone's shoulder cannot be replayed.

use sha2::{Digest as _, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

pub const ISSUER: &str = "Consulta";
pub const STEP_SECS: u64 = 30;
/// How many recovery codes enrolment hands out.
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("the stored TOTP secret is not usable")]
pub struct SecretError;

/// A new random 160-bit secret, base32 (what apps and `otpauth://` take).
pub fn new_secret() -> String {
    Secret::generate_secret().to_encoded().to_string()
}

fn totp(secret_b32: &str, account: &str) -> Result<TOTP, SecretError> {
    let bytes = Secret::Encoded(secret_b32.to_owned()).to_bytes().map_err(|_| SecretError)?;
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECS, bytes, Some(ISSUER.to_owned()), account.to_owned())
        .map_err(|_| SecretError)
}

/// The `otpauth://totp/…` URI an authenticator app scans.
pub fn otpauth_uri(secret_b32: &str, account: &str) -> Result<String, SecretError> {
    Ok(totp(secret_b32, account)?.get_url())
}

/// The current code at `unix_secs` (for tests and tools).
pub fn code_at(secret_b32: &str, unix_secs: u64) -> Result<String, SecretError> {
    Ok(totp(secret_b32, "x")?.generate(unix_secs))
}

/// The time step `code` belongs to, if it is valid within ±1 step of
/// `unix_secs`.
pub fn matching_step(secret_b32: &str, code: &str, unix_secs: u64) -> Result<Option<i64>, SecretError> {
    let totp = totp(secret_b32, "x")?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now_step = unix_secs / STEP_SECS;
    for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
        let expected = totp.generate(step * STEP_SECS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            return Ok(i64::try_from(step).ok());
        }
    }
    Ok(None)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fresh recovery codes such as `k7qm-2xwd-9fbt` (60 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let chars: Vec<char> =
                (0..12).map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())])).collect();
            chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
        })
        .collect()
}

/// What is stored of a recovery code or a sign-in challenge: SHA-256 hex
/// of its normalized form (case and dashes and spaces do not matter).
pub fn secret_hash(raw: &str) -> String {
    let normalized: String =
        raw.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_code_matches_its_own_step_and_its_neighbours_only() {
        let secret = new_secret();
        let t = 1_800_000_000;
        let code = code_at(&secret, t).unwrap();
        assert_eq!(matching_step(&secret, &code, t).unwrap(), Some((t / 30) as i64));
        assert!(matching_step(&secret, &code, t + 30).unwrap().is_some());
        assert_eq!(matching_step(&secret, &code, t + 90).unwrap(), None);
        assert_eq!(matching_step(&secret, "12345", t).unwrap(), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_the_same_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert_eq!(secret_hash(&codes[0]), secret_hash(&codes[0].to_uppercase().replace('-', " ")));
    }

    #[test]
    fn the_uri_names_the_issuer_and_account() {
        let uri = otpauth_uri(&new_secret(), "pat@example.org").unwrap();
        assert!(uri.starts_with("otpauth://totp/Consulta:pat%40example.org?"), "{uri}");
    }
}
