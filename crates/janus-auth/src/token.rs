//! API tokens: `jns_<id>_<secret>`, with a 16-hex-digit id (8 random bytes)
//! to find the token and a 64-hex-digit secret (32 random bytes) to prove
//! it. Only the SHA-256 of the secret is stored (in the replicated state, so
//! also in snapshots); a presented secret is hashed and compared in constant
//! time. A secret is random and long, so a fast hash is enough: argon2 is
//! for passwords, which people choose.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AuthError;

const PREFIX: &str = "jns_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A token's public id (shown in listings and audit lines).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TokenId(String);

impl TokenId {
    /// Checks that `text` is 16 lowercase hex digits.
    ///
    /// # Errors
    /// [`AuthError::Invalid`].
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        if text.len() == 2 * ID_BYTES && is_lower_hex(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(AuthError::Invalid(format!("invalid token id {text:?}: a token id is 16 hex digits")))
        }
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Ordered and hashed as its text, so maps keyed by it are searched by `&str`.
impl std::borrow::Borrow<str> for TokenId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SHA-256 of a token's secret: what the state keeps.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    fn of(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    /// Whether `secret` hashes to this, compared in constant time.
    #[must_use]
    pub fn matches(&self, secret: &[u8]) -> bool {
        Self::of(secret).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// A newly minted token: its full text goes to the user once and is never
/// stored; the state keeps `id` and `hash`.
pub struct IssuedToken {
    /// The token's id.
    pub id: TokenId,
    /// The SHA-256 of its secret.
    pub hash: SecretHash,
    text: String,
}

impl IssuedToken {
    /// A token from 40 random bytes (8 for the id, 32 for the secret), which
    /// the caller draws from a cryptographic source.
    #[must_use]
    pub fn mint(random: [u8; ID_BYTES + SECRET_BYTES]) -> Self {
        let (id, secret) = random.split_at(ID_BYTES);
        let id = hex(id);
        let secret_hex = hex(secret);
        Self {
            hash: SecretHash::of(secret_hex.as_bytes()),
            text: format!("{PREFIX}{id}_{secret_hex}"),
            id: TokenId(id),
        }
    }

    /// The token as the user presents it. Show it once; never log it.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuedToken({}, secret redacted)", self.id)
    }
}

/// A presented token, split into its id and its secret.
pub(crate) struct Presented<'a> {
    pub(crate) id: &'a str,
    pub(crate) secret: &'a [u8],
}

/// Splits a presented token; anything else is [`AuthError::MalformedToken`].
pub(crate) fn split(text: &str) -> Result<Presented<'_>, AuthError> {
    let rest = text.trim().strip_prefix(PREFIX).ok_or(AuthError::MalformedToken)?;
    let (id, secret) = rest.split_once('_').ok_or(AuthError::MalformedToken)?;
    // The secret's characters are not checked one by one: it is hashed and
    // compared, and a wrong one simply does not match (a check on every
    // request).
    if id.len() != 2 * ID_BYTES || secret.len() != 2 * SECRET_BYTES || !is_lower_hex(id) {
        return Err(AuthError::MalformedToken);
    }
    Ok(Presented { id, secret: secret.as_bytes() })
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; 40] {
        std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(u8::try_from(i).unwrap_or(0)))
    }

    #[test]
    fn a_minted_token_splits_back_into_its_id_and_a_matching_secret() {
        let token = IssuedToken::mint(random(1));
        assert!(token.text().starts_with("jns_") && token.text().len() == 4 + 16 + 1 + 64, "{}", token.text());
        let presented = split(token.text()).expect("well formed");
        assert_eq!(presented.id, token.id.as_str());
        assert!(token.hash.matches(presented.secret));
        let other = IssuedToken::mint(random(2));
        assert!(!token.hash.matches(split(other.text()).expect("well formed").secret));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let token = IssuedToken::mint(random(3));
        let secret = &token.text()[21..];
        let shown = format!("{token:?} {:?}", token.hash);
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains(token.id.as_str()), "{shown}");
    }

    #[test]
    fn anything_else_is_malformed() {
        let good = IssuedToken::mint(random(4));
        let text = good.text().to_owned();
        for bad in [
            String::new(),
            "Bearer x".to_owned(),
            text.replacen("jns_", "jnx_", 1),
            text[..text.len() - 1].to_owned(),
            text.to_uppercase(),
            text.replace('_', "-"),
            format!("{text}0"),
        ] {
            assert!(matches!(split(&bad), Err(AuthError::MalformedToken)), "{bad}");
        }
        assert!(TokenId::parse(good.id.as_str()).is_ok());
        assert!(TokenId::parse("xyz").is_err());
    }
}
