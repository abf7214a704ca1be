//! Password hashes: argon2id (memory 19 MiB, 2 passes, 1 lane: OWASP's
//! minimum), in PHC string form, with a 16-byte salt the caller draws.
//!
//! Hashing is deliberately slow (tens of milliseconds), so it runs only at
//! login and when a password is set, on the node taking the request and
//! outside any lock; the Raft log carries the finished hash. A login for a
//! user that does not exist verifies against a dummy hash all the same, so
//! the answer's timing does not tell which user names exist.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash as Phc, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// The longest password accepted (bounds the hashing work per request).
pub const MAX_PASSWORD: usize = 256;

/// An argon2id hash in PHC string form.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash(String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|err| AuthError::Invalid(format!("argon2 parameters refused: {err}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl PasswordHash {
    /// Hashes `password` with `salt` (16 bytes from a cryptographic source).
    ///
    /// # Errors
    /// [`AuthError::Invalid`] if the password is shorter than
    /// [`MIN_PASSWORD`] or longer than [`MAX_PASSWORD`] bytes.
    pub fn new(password: &str, salt: [u8; 16]) -> Result<Self, AuthError> {
        if password.len() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
            return Err(AuthError::Invalid(format!(
                "a password has {MIN_PASSWORD} to {MAX_PASSWORD} bytes, this one has {}",
                password.len()
            )));
        }
        let salt = SaltString::encode_b64(&salt).map_err(|err| AuthError::Invalid(format!("salt refused: {err}")))?;
        let hash = hasher()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|err| AuthError::Invalid(format!("the password could not be hashed: {err}")))?;
        Ok(Self(hash.to_string()))
    }

    /// Whether `password` is the one hashed (argon2's comparison is constant-time).
    #[must_use]
    pub fn verify(&self, password: &str) -> bool {
        if password.len() > MAX_PASSWORD {
            return false;
        }
        let Ok(parsed) = Phc::new(&self.0) else { return false };
        hasher().is_ok_and(|argon| argon.verify_password(password.as_bytes(), &parsed).is_ok())
    }

    /// Spends the time of a verification without a user, so that a login for
    /// an unknown name takes as long as one with a wrong password.
    pub fn verify_dummy(password: &str) {
        static DUMMY: OnceLock<Option<PasswordHash>> = OnceLock::new();
        if let Some(dummy) = DUMMY.get_or_init(|| Self::new("janus-dummy-password", [7; 16]).ok()) {
            let _ = dummy.verify(password);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = PasswordHash::new("correct horse battery", [1; 16]).expect("hashed");
        assert!(hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.0);
        assert!(hash.verify("correct horse battery"));
        assert!(!hash.verify("correct horse battery "));
        assert!(!hash.verify(""));
        let salted = PasswordHash::new("correct horse battery", [2; 16]).expect("hashed");
        assert_ne!(hash, salted, "the salt makes each hash different");
        assert!(!format!("{hash:?}").contains("argon2"), "no hash in debug output");
        PasswordHash::verify_dummy("anything");
    }

    #[test]
    fn passwords_are_bounded() {
        assert!(PasswordHash::new("short", [1; 16]).is_err());
        let err = PasswordHash::new(&"x".repeat(MAX_PASSWORD + 1), [1; 16]).expect_err("too long");
        assert!(err.to_string().contains("8 to 256 bytes"), "{err}");
    }
}
