//! Bearer tokens: generation, hashing and constant-time checks. Tokens are stored only as SHA-256.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of team tokens, so leaked tokens are recognisable by secret scanners.
pub const TEAM_TOKEN_PREFIX: &str = "swt_";
/// Prefix of generated admin tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "swa_";

/// A fresh random bearer token with `prefix` (256 bits of entropy).
pub fn generate_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Lowercase hex SHA-256 of a token: what is stored and looked up.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` hashes to `expected_hash`, compared in constant time.
pub fn token_matches(token: &str, expected_hash: &str) -> bool {
    let actual = hash_token(token);
    actual.as_bytes().ct_eq(expected_hash.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_and_prefixed() {
        let a = generate_token(TEAM_TOKEN_PREFIX);
        let b = generate_token(TEAM_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("swt_") && a.len() == 4 + 43);
    }

    #[test]
    fn matching_uses_the_hash() {
        let token = generate_token(ADMIN_TOKEN_PREFIX);
        let hash = hash_token(&token);
        assert!(token_matches(&token, &hash));
        assert!(!token_matches("swa_wrong", &hash));
        assert!(!token_matches(&token, ""));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
