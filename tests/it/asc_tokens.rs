//! ES256 tokens: shape, reuse, refresh before expiry, one mint under concurrency, and the
//! fake's independent verifier (p256, not jsonwebtoken).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::{Value, json};
use shipwatch_shared::asc::{AscClient, AscConfig, AscError, mint_token};
use shipwatch_shared::clock::{Clock, ManualClock};
use shipwatch_shared::credentials::ApiCredentials;
use shipwatch_tests::fake_asc::{FakeAsc, TokenRejection, verify_es256_token};
use shipwatch_tests::test_keys::TestKey;

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn fake_with_clock() -> (FakeAsc, Arc<ManualClock>, TestKey, AscClient) {
    let clock = Arc::new(ManualClock::starting_now());
    let fake = FakeAsc::start_with_clock(clock.clone()).await;
    let key = TestKey::generate();
    fake.register_key(&key);
    let client =
        AscClient::with_clock(AscConfig::new(&fake.base_url()).unwrap(), clock.clone()).unwrap();
    (fake, clock, key, client)
}

#[test]
fn token_has_apple_header_and_claims() {
    let key = TestKey::generate();
    let now = Utc::now();
    let token = mint_token(&key.credentials(), now).unwrap();
    let header = decode_part(token.expose(), 0);
    let claims = decode_part(token.expose(), 1);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], key.key_id.as_str());
    assert_eq!(claims["iss"], key.issuer_id.as_str());
    assert_eq!(claims["aud"], "appstoreconnect-v1");
    assert_eq!(claims["iat"], now.timestamp());
    assert_eq!(claims["exp"].as_i64().unwrap() - now.timestamp(), 15 * 60);
    // Verified by the independent p256 verifier.
    let lookup = |kid: &str| {
        (kid == key.key_id.as_str()).then(|| (key.issuer_id.to_string(), key.verifying_key))
    };
    assert_eq!(
        verify_es256_token(token.expose(), now, lookup),
        Ok(key.key_id.to_string())
    );
}

#[test]
fn independent_verifier_rejects_what_apple_rejects() {
    let key = TestKey::generate();
    let other = TestKey::generate_for(key.issuer_id.clone());
    let now = Utc::now();
    let lookup = |kid: &str| {
        (kid == key.key_id.as_str()).then(|| (key.issuer_id.to_string(), key.verifying_key))
    };
    let header = json!({"alg": "ES256", "kid": key.key_id.as_str(), "typ": "JWT"});
    let claims = |iat: i64, exp: i64, iss: &str, aud: &str| json!({"iss": iss, "iat": iat, "exp": exp, "aud": aud});
    let t = now.timestamp();
    let issuer = key.issuer_id.as_str();
    let good = key.sign_jwt(&header, &claims(t, t + 600, issuer, "appstoreconnect-v1"));
    assert!(verify_es256_token(&good, now, lookup).is_ok());

    let cases = [
        (
            key.sign_jwt(&header, &claims(t, t + 1201, issuer, "appstoreconnect-v1")),
            TokenRejection::LifetimeTooLong,
        ),
        (
            key.sign_jwt(
                &header,
                &claims(t - 900, t - 1, issuer, "appstoreconnect-v1"),
            ),
            TokenRejection::Expired,
        ),
        (
            key.sign_jwt(
                &header,
                &claims(t + 300, t + 900, issuer, "appstoreconnect-v1"),
            ),
            TokenRejection::IssuedInFuture,
        ),
        (
            key.sign_jwt(
                &header,
                &claims(
                    t,
                    t + 600,
                    "00000000-0000-0000-0000-000000000000",
                    "appstoreconnect-v1",
                ),
            ),
            TokenRejection::WrongIssuer,
        ),
        (
            key.sign_jwt(&header, &claims(t, t + 600, issuer, "appstoreconnect-v2")),
            TokenRejection::WrongAudience,
        ),
        (
            key.sign_jwt(
                &json!({"alg": "HS256", "kid": key.key_id.as_str(), "typ": "JWT"}),
                &claims(t, t + 600, issuer, "appstoreconnect-v1"),
            ),
            TokenRejection::WrongAlgorithm,
        ),
        (
            // Signed by another key but claiming this key's id.
            other.sign_jwt(&header, &claims(t, t + 600, issuer, "appstoreconnect-v1")),
            TokenRejection::BadSignature,
        ),
        (
            other.sign_jwt(
                &json!({"alg": "ES256", "kid": other.key_id.as_str(), "typ": "JWT"}),
                &claims(t, t + 600, issuer, "appstoreconnect-v1"),
            ),
            TokenRejection::UnknownKey,
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(
            verify_es256_token(&token, now, lookup),
            Err(expected.clone()),
            "{expected:?}"
        );
    }
    // Tampering with the claims breaks the signature.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(
        claims(t, t + 600, issuer, "appstoreconnect-v1")
            .to_string()
            .replace("appstoreconnect-v1", "appstoreconnect-v1 "),
    );
    assert_eq!(
        verify_es256_token(&parts.join("."), now, lookup),
        Err(TokenRejection::BadSignature)
    );
}

#[tokio::test]
async fn one_token_is_reused_across_requests_and_sessions() {
    let (fake, _clock, key, client) = fake_with_clock().await;
    let credentials = Arc::new(key.credentials());
    let first = client.session(credentials.clone());
    let second = client.session(Arc::new(key.credentials()));
    for _ in 0..3 {
        first.count_apps().await.unwrap();
        second.list_apps_with_versions().await.unwrap();
    }
    assert_eq!(fake.requests_for(&key.key_id), 6);
    assert_eq!(fake.distinct_tokens_for(&key.key_id), 1);
    assert_eq!(client.tokens_minted(), 1);
    assert_eq!(first.requests_sent(), 3);
    assert_eq!(second.requests_sent(), 3);
}

#[tokio::test]
async fn token_is_refreshed_shortly_before_expiry() {
    let (fake, clock, key, client) = fake_with_clock().await;
    let session = client.session(Arc::new(key.credentials()));
    session.count_apps().await.unwrap();
    clock.advance(Duration::from_secs(13 * 60));
    session.count_apps().await.unwrap();
    assert_eq!(
        fake.distinct_tokens_for(&key.key_id),
        1,
        "13 minutes in, still reused"
    );
    // 14 min 1 s in: 59 s left, under the 60 s margin, so a new token is minted.
    clock.advance(Duration::from_secs(61));
    session.count_apps().await.unwrap();
    assert_eq!(fake.distinct_tokens_for(&key.key_id), 2);
    // Long after the first token expired, requests still succeed with a fresh one.
    clock.advance(Duration::from_secs(3600));
    session.count_apps().await.unwrap();
    assert_eq!(fake.distinct_tokens_for(&key.key_id), 3);
    let tokens = fake.tokens_seen();
    let last_claims = decode_part(tokens.last().unwrap(), 1);
    assert_eq!(last_claims["iat"], clock.now().timestamp());
}

#[tokio::test]
async fn fake_rejects_tokens_the_clock_has_expired() {
    let (fake, clock, key, _client) = fake_with_clock().await;
    let token = mint_token(&key.credentials(), clock.now()).unwrap();
    clock.advance(Duration::from_secs(16 * 60));
    let response = reqwest::Client::new()
        .get(format!("{}/v1/apps?limit=1", fake.base_url()))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "NOT_AUTHORIZED");
}

#[tokio::test]
async fn hundred_concurrent_calls_mint_one_token() {
    let (fake, _clock, key, client) = fake_with_clock().await;
    let session = client.session(Arc::new(key.credentials()));
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.count_apps().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.requests_for(&key.key_id), 100);
    assert_eq!(fake.distinct_tokens_for(&key.key_id), 1);
    assert_eq!(client.tokens_minted(), 1);
    assert_eq!(session.requests_sent(), 100);
}

#[tokio::test]
async fn cache_is_keyed_by_key_issuer_and_fingerprint() {
    let (fake, _clock, key, client) = fake_with_clock().await;
    let other = TestKey::generate();
    fake.register_key(&other);
    client
        .session(Arc::new(key.credentials()))
        .count_apps()
        .await
        .unwrap();
    client
        .session(Arc::new(other.credentials()))
        .count_apps()
        .await
        .unwrap();
    assert_eq!(client.tokens_minted(), 2);
    // Same Key ID and Issuer ID but a different private key (a replaced upload): no reuse.
    let replaced = TestKey::generate();
    let impostor = ApiCredentials::new(
        key.key_id.clone(),
        key.issuer_id.clone(),
        replaced.private_key(),
    );
    let error = client
        .session(Arc::new(impostor))
        .count_apps()
        .await
        .unwrap_err();
    assert!(matches!(error, AscError::NotAuthorized { .. }), "{error:?}");
    assert_eq!(client.tokens_minted(), 3);
}
