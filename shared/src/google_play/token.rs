//! OAuth 2.0 access tokens for Google's APIs from a service-account key: the JWT bearer grant
//! (an RS256 assertion, `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`), and the
//! per-key cache that reuses one access token until shortly before it expires.
//!
//! The HTTP exchange is the caller's (the adapter); this module signs assertions and keeps the
//! tokens, so that concurrent tasks of one key share one exchange.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use zeroize::Zeroizing;

use super::ServiceAccountKey;
use crate::clock::Clock;

/// The scope of the Google Play Developer API (androidpublisher).
pub const ANDROIDPUBLISHER_SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
/// The grant type of the JWT bearer flow (RFC 7523), as Google's OAuth server expects it.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of a signed assertion: Google accepts at most one hour.
pub const ASSERTION_LIFETIME: TimeDelta = TimeDelta::hours(1);
/// A cached access token is replaced once it has less than this left, so none expires in flight.
pub const REFRESH_MARGIN: TimeDelta = TimeDelta::minutes(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("could not sign the Google OAuth assertion with this service-account key")]
    Signing,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// Signs the JWT assertion of the bearer grant: `iss` the service account, `aud` the token URL
/// shipwatch is configured with, the androidpublisher scope, valid for [`ASSERTION_LIFETIME`].
pub fn sign_assertion(
    key: &ServiceAccountKey,
    token_url: &str,
    now: DateTime<Utc>,
) -> Result<Zeroizing<String>, SigningError> {
    let header = serde_json::json!({
        "alg": "RS256",
        "typ": "JWT",
        "kid": key.private_key_id(),
    });
    let claims = Claims {
        iss: key.client_email(),
        scope: ANDROIDPUBLISHER_SCOPE,
        aud: token_url,
        iat: now.timestamp(),
        exp: (now + ASSERTION_LIFETIME).timestamp(),
    };
    let claims = serde_json::to_vec(&claims).map_err(|_| SigningError::Signing)?;
    let mut signing_input = URL_SAFE_NO_PAD.encode(header.to_string());
    signing_input.push('.');
    signing_input.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let pair = RsaKeyPair::from_pkcs8(key.pkcs8_der()).map_err(|_| SigningError::Signing)?;
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| SigningError::Signing)?;
    let mut jwt = Zeroizing::new(signing_input);
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(jwt)
}

/// An OAuth access token. `Debug`/`Display` never show it.
#[derive(Clone)]
pub struct OAuthToken {
    value: Arc<Zeroizing<String>>,
    expires_at: DateTime<Utc>,
}

impl OAuthToken {
    pub fn new(value: String, expires_at: DateTime<Utc>) -> Self {
        Self {
            value: Arc::new(Zeroizing::new(value)),
            expires_at,
        }
    }

    /// The token, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.value.as_str()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Display for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted token, expires {}>", self.expires_at)
    }
}

/// What identifies one key's tokens: the account and its public key (a re-uploaded account with
/// a new key gets new tokens).
type Slot = Arc<tokio::sync::Mutex<Option<OAuthToken>>>;

/// One access token per service-account key, reused until [`REFRESH_MARGIN`] before it expires.
/// Each key has its own async lock, held across the exchange, so concurrent tasks of one key
/// wait for one exchange instead of each making their own; other keys are not held up.
pub struct TokenCache {
    clock: Arc<dyn Clock>,
    slots: Mutex<HashMap<(String, String), Slot>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &ServiceAccountKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry((key.client_email().to_owned(), key.fingerprint().to_owned()))
            .or_default()
            .clone()
    }

    /// The key's cached token while it is fresh, else the result of `exchange` (cached when it
    /// worked). A failed exchange caches nothing.
    pub async fn get<F, Fut, E>(
        &self,
        key: &ServiceAccountKey,
        exchange: F,
    ) -> Result<OAuthToken, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<OAuthToken, E>>,
    {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref() {
            if token.expires_at - self.clock.now() > REFRESH_MARGIN {
                return Ok(token.clone());
            }
        }
        let token = exchange().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Drops the key's token (Google refused it: the next call exchanges again).
    pub async fn forget(&self, key: &ServiceAccountKey) {
        let slot = self.slot(key);
        *slot.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;

    const RSA_A: &str = include_str!("../../../tests/fixtures/google_play/rsa_a.pem");
    const RSA_B: &str = include_str!("../../../tests/fixtures/google_play/rsa_b.pem");

    fn key(pem: &str, email: &str) -> ServiceAccountKey {
        let file = serde_json::json!({
            "type": "service_account",
            "private_key_id": "kid1",
            "private_key": pem,
            "client_email": email,
        });
        ServiceAccountKey::from_json(file.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_assertion_carries_the_grant_claims() {
        let key = key(RSA_A, "a@p.iam.gserviceaccount.com");
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let jwt = sign_assertion(&key, "https://oauth2.example/token", now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid1");
        assert_eq!(claims["iss"], "a@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "https://oauth2.example/token");
        assert_eq!(claims["scope"], ANDROIDPUBLISHER_SCOPE);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );
    }

    #[tokio::test]
    async fn one_exchange_per_key_until_the_token_nears_expiry() {
        let clock = Arc::new(ManualClock::new(
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        ));
        let cache = Arc::new(TokenCache::new(clock.clone()));
        let exchanges = Arc::new(AtomicUsize::new(0));
        let a = key(RSA_A, "a@p.iam.gserviceaccount.com");
        let b = key(RSA_B, "b@p.iam.gserviceaccount.com");
        let fetch = |exchanges: Arc<AtomicUsize>, now: DateTime<Utc>| async move {
            exchanges.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<_, ()>(OAuthToken::new("t".into(), now + TimeDelta::hours(1)))
        };
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (cache, exchanges, a, now) =
                (cache.clone(), exchanges.clone(), a.clone(), clock.now());
            tasks.push(tokio::spawn(async move {
                cache.get(&a, || fetch(exchanges, now)).await.unwrap()
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            exchanges.load(Ordering::SeqCst),
            1,
            "16 tasks, one exchange"
        );
        cache
            .get(&b, || fetch(exchanges.clone(), clock.now()))
            .await
            .unwrap();
        assert_eq!(
            exchanges.load(Ordering::SeqCst),
            2,
            "another key, its own token"
        );
        clock.advance_by(TimeDelta::minutes(54));
        cache
            .get(&a, || fetch(exchanges.clone(), clock.now()))
            .await
            .unwrap();
        assert_eq!(
            exchanges.load(Ordering::SeqCst),
            2,
            "6 minutes left: reused"
        );
        clock.advance_by(TimeDelta::minutes(2));
        cache
            .get(&a, || fetch(exchanges.clone(), clock.now()))
            .await
            .unwrap();
        assert_eq!(
            exchanges.load(Ordering::SeqCst),
            3,
            "4 minutes left: replaced"
        );
        cache.forget(&a).await;
        cache
            .get(&a, || fetch(exchanges.clone(), clock.now()))
            .await
            .unwrap();
        assert_eq!(
            exchanges.load(Ordering::SeqCst),
            4,
            "forgotten: exchanged again"
        );
        let failed: Result<OAuthToken, &str> = TokenCache::new(clock.clone())
            .get(&a, || async { Err("refused") })
            .await;
        assert!(failed.is_err());
    }
}
