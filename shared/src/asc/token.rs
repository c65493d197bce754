//! ES256 bearer tokens for the App Store Connect API, and the per-key token cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::credentials::{ApiCredentials, IssuerId, KeyId};

/// The `aud` claim App Store Connect requires.
pub const AUDIENCE: &str = "appstoreconnect-v1";
/// How long minted tokens live. Apple rejects lifetimes over 20 minutes.
pub const TOKEN_LIFETIME: TimeDelta = TimeDelta::minutes(15);
/// A cached token is replaced once it has less than this left, so none expires in flight.
pub const REFRESH_MARGIN: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("could not sign the App Store Connect token with this private key")]
    Signing,
}

/// A signed bearer token. `Debug`/`Display` never show it.
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<Zeroizing<String>>,
    expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// The compact JWS, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.value.as_str()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted token, expires {}>", self.expires_at)
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
    aud: &'a str,
}

/// Makes sure the aws-lc backend is the one jsonwebtoken uses, whatever features other crates enable.
pub(crate) fn install_crypto_provider() {
    // Err only means a provider is already installed, which is fine.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Signs a fresh token valid from `now` for [`TOKEN_LIFETIME`].
pub fn mint_token(
    credentials: &ApiCredentials,
    now: DateTime<Utc>,
) -> Result<AccessToken, TokenError> {
    install_crypto_provider();
    let issued_at = now.timestamp();
    let expires_at = now + TOKEN_LIFETIME;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(credentials.key_id.as_str().to_owned());
    header.typ = Some("JWT".to_owned());
    let claims = Claims {
        iss: credentials.issuer_id.as_str(),
        iat: issued_at,
        exp: expires_at.timestamp(),
        aud: AUDIENCE,
    };
    let der = credentials.private_key.pkcs8_der();
    let key = EncodingKey::from_ec_der(&der);
    let value = jsonwebtoken::encode(&header, &claims, &key).map_err(|_| TokenError::Signing)?;
    Ok(AccessToken {
        value: Arc::new(Zeroizing::new(value)),
        expires_at: DateTime::from_timestamp(expires_at.timestamp(), 0).unwrap_or(expires_at),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    key_id: KeyId,
    issuer_id: IssuerId,
    fingerprint: String,
}

/// One token per API key, shared by every session of a client (and so across sweeps in a
/// warm process). Minting happens under the lock, so concurrent callers never mint twice.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<CacheKey, AccessToken>>,
    minted: std::sync::atomic::AtomicU64,
}

impl TokenCache {
    pub(crate) fn token_for(
        &self,
        credentials: &ApiCredentials,
        clock: &dyn Clock,
    ) -> Result<AccessToken, TokenError> {
        let key = CacheKey {
            key_id: credentials.key_id.clone(),
            issuer_id: credentials.issuer_id.clone(),
            fingerprint: credentials.private_key.fingerprint().to_owned(),
        };
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = clock.now();
        if let Some(token) = tokens.get(&key)
            && token.expires_at - now >= REFRESH_MARGIN
            && token.expires_at - now <= TOKEN_LIFETIME
        {
            return Ok(token.clone());
        }
        let token = mint_token(credentials, now)?;
        self.minted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Drop tokens of keys no longer in use so the cache cannot grow without bound.
        tokens.retain(|_, cached| cached.expires_at > now);
        tokens.insert(key, token.clone());
        Ok(token)
    }

    pub(crate) fn minted(&self) -> u64 {
        self.minted.load(std::sync::atomic::Ordering::Relaxed)
    }
}
