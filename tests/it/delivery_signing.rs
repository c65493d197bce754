//! Standard Webhooks signing: the published test vector, and round trips through the independent
//! verifier in `shipwatch_tests::standard_webhooks`.

use shipwatch_service::domain::signing::{SigningError, generate_signing_secret, sign};
use shipwatch_tests::standard_webhooks::{TIMESTAMP_TOLERANCE_SECONDS, VerifyError, verify};

/// The vector the Standard Webhooks reference libraries test against (svix/standard-webhooks:
/// `testSignFunctionWorks`); also re-derived here with Python's hmac module.
const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const VECTOR_TIMESTAMP: i64 = 1_614_265_330;
const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

#[test]
fn sign_reproduces_the_published_test_vector() {
    assert_eq!(
        sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
        Ok(VECTOR_SIGNATURE.to_owned())
    );
    // The reference libraries also accept the secret without its prefix.
    assert_eq!(
        sign(
            &VECTOR_SECRET["whsec_".len()..],
            VECTOR_ID,
            VECTOR_TIMESTAMP,
            VECTOR_BODY
        ),
        Ok(VECTOR_SIGNATURE.to_owned())
    );
}

#[test]
fn the_independent_verifier_accepts_the_published_test_vector() {
    assert_eq!(
        verify(
            VECTOR_SECRET,
            VECTOR_ID,
            &VECTOR_TIMESTAMP.to_string(),
            VECTOR_SIGNATURE,
            VECTOR_BODY,
            VECTOR_TIMESTAMP
        ),
        Ok(())
    );
}

#[test]
fn generated_secrets_sign_messages_the_verifier_accepts() {
    let secret = generate_signing_secret();
    assert!(secret.starts_with("whsec_"));
    let body = br#"{"specversion":"1.0","id":"evt-1"}"#;
    let now = 1_800_000_000;
    let signature = sign(&secret, "evt-1", now, body).expect("signs");
    assert_eq!(
        verify(&secret, "evt-1", &now.to_string(), &signature, body, now),
        Ok(())
    );
    // Among several signatures (key rotation), any valid v1 one is enough.
    let several = format!("v1,bm9wZQ== v1a,ignored {signature}");
    assert_eq!(
        verify(&secret, "evt-1", &now.to_string(), &several, body, now + 10),
        Ok(())
    );
}

#[test]
fn the_verifier_rejects_tampering_wrong_secrets_and_stale_timestamps() {
    let secret = generate_signing_secret();
    let other_secret = generate_signing_secret();
    let body = br#"{"a":1}"#;
    let now = 1_800_000_000;
    let stamp = now.to_string();
    let signature = sign(&secret, "evt-1", now, body).expect("signs");
    let no_match = Err(VerifyError::NoMatchingSignature);
    assert_eq!(
        verify(&secret, "evt-1", &stamp, &signature, br#"{"a":2}"#, now),
        no_match
    );
    assert_eq!(
        verify(&secret, "evt-2", &stamp, &signature, body, now),
        no_match
    );
    assert_eq!(
        verify(&other_secret, "evt-1", &stamp, &signature, body, now),
        no_match
    );
    let later = now + 1;
    let resigned_other_time = sign(&secret, "evt-1", later, body).expect("signs");
    assert_eq!(
        verify(&secret, "evt-1", &stamp, &resigned_other_time, body, now),
        no_match
    );
    assert_eq!(
        verify(
            &secret,
            "evt-1",
            &stamp,
            &signature,
            body,
            now + TIMESTAMP_TOLERANCE_SECONDS + 1
        ),
        Err(VerifyError::TimestampTooOld)
    );
    assert_eq!(
        verify(
            &secret,
            "evt-1",
            &stamp,
            &signature,
            body,
            now - TIMESTAMP_TOLERANCE_SECONDS - 1
        ),
        Err(VerifyError::TimestampInTheFuture)
    );
}

#[test]
fn broken_secrets_are_errors_that_do_not_repeat_the_secret() {
    let error = sign("whsec_%%%%secret%%%%", "evt", 1, b"{}").expect_err("not base64");
    assert_eq!(error, SigningError::SecretNotBase64);
    assert!(!error.to_string().contains("secret%%"));
    assert!(!format!("{error:?}").contains("secret%%"));
}
