//! An independent Standard Webhooks verifier, written from the specification
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>),
//! to check what shipwatch sends. It deliberately shares no code with
//! `shipwatch_service::domain::signing`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

/// The spec's recommended tolerance between the signed timestamp and now.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    MissingHeader(&'static str),
    SecretNotBase64,
    TimestampNotANumber,
    TimestampTooOld,
    TimestampInTheFuture,
    NoMatchingSignature,
}

/// Verifies a message from its three `webhook-*` headers.
pub fn verify_headers(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .ok_or(VerifyError::MissingHeader(name))
    };
    verify(
        secret,
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
        body,
        now_unix,
    )
}

/// Verifies `signatures` (space-separated `v1,<base64>` entries; other versions are ignored) for
/// the message `msg_id`/`timestamp`/`body`, keyed by the base64 part of a `whsec_` secret.
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::TimestampNotANumber)?;
    if now_unix - seconds > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(VerifyError::TimestampTooOld);
    }
    if seconds - now_unix > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(VerifyError::TimestampInTheFuture);
    }
    let key_text = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = STANDARD
        .decode(key_text)
        .map_err(|_| VerifyError::SecretNotBase64)?;
    let mut signed_content = Vec::with_capacity(msg_id.len() + timestamp.len() + body.len() + 2);
    signed_content.extend_from_slice(msg_id.as_bytes());
    signed_content.push(b'.');
    signed_content.extend_from_slice(timestamp.trim().as_bytes());
    signed_content.push(b'.');
    signed_content.extend_from_slice(body);
    let mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| VerifyError::SecretNotBase64)?;
    let mac = {
        let mut mac = mac;
        mac.update(&signed_content);
        mac
    };
    for entry in signatures.split(' ') {
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        if version != "v1" {
            continue;
        }
        let Ok(candidate) = STANDARD.decode(encoded) else {
            continue;
        };
        // verify_slice compares in constant time.
        if mac.clone().verify_slice(&candidate).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatchingSignature)
}
