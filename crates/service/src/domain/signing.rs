//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): `webhook-signature:
//! v1,<base64 HMAC-SHA256>` keyed by the decoded `whsec_` secret over `"{id}.{timestamp}.{body}"`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

/// Prefix of a Standard Webhooks signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a generated secret (the spec asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// Why a payload could not be signed. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("the signing secret is not valid base64 after the `whsec_` prefix")]
    SecretNotBase64,
    #[error("the signing secret is empty")]
    EmptySecret,
}

/// A fresh secret: `whsec_` + base64 of 32 random bytes from the operating system's CSPRNG.
pub fn generate_signing_secret() -> String {
    let mut key = zeroize::Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rng().fill_bytes(key.as_mut());
    format!("{SECRET_PREFIX}{}", BASE64.encode(key.as_ref()))
}

/// The `webhook-signature` header value for one message. Like the reference libraries, a secret
/// without the `whsec_` prefix is taken as the base64 key itself.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SigningError> {
    let encoded_key = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = zeroize::Zeroizing::new(
        BASE64
            .decode(encoded_key.trim())
            .map_err(|_| SigningError::SecretNotBase64)?,
    );
    if key.is_empty() {
        return Err(SigningError::EmptySecret);
    }
    // HMAC takes keys of any length, so this cannot fail for a non-empty key; map it anyway
    // rather than panic.
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SigningError::EmptySecret)?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_prefixed_32_byte_keys_and_differ() {
        let first = generate_signing_secret();
        let second = generate_signing_secret();
        assert_ne!(first, second);
        let decoded = BASE64
            .decode(first.strip_prefix(SECRET_PREFIX).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(decoded.len(), SECRET_BYTES);
    }

    #[test]
    fn bad_secrets_are_errors_that_do_not_echo_them() {
        let error = sign("whsec_not*base64!", "msg", 1, b"{}").unwrap_err();
        assert_eq!(error, SigningError::SecretNotBase64);
        assert!(!error.to_string().contains("not*base64"));
        assert_eq!(
            sign("whsec_", "msg", 1, b"{}"),
            Err(SigningError::EmptySecret)
        );
    }
}
