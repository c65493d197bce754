//! `.p8` parsing: every rejected kind, the valid kind, fingerprints and redaction.

use shipwatch_shared::asc::{AscError, mint_token};
use shipwatch_shared::credentials::{KeyParseError, MAX_PRIVATE_KEY_BYTES, PrivateKey};
use shipwatch_tests::test_keys::{self, TestKey};

#[test]
fn apple_style_pkcs8_p256_key_is_accepted_with_independent_fingerprint() {
    let key = TestKey::generate();
    let parsed = PrivateKey::from_pem(key.pem.as_bytes()).expect("valid .p8");
    assert_eq!(parsed.fingerprint(), key.expected_fingerprint());
    assert_eq!(
        parsed.public_key(),
        p256::PublicKey::from(&key.verifying_key)
    );
    // Different keys, different fingerprints.
    assert_ne!(
        parsed.fingerprint(),
        TestKey::generate().private_key().fingerprint()
    );
}

#[test]
fn crlf_bom_and_surrounding_whitespace_are_tolerated() {
    let key = TestKey::generate();
    let windows = format!("\u{feff}\r\n  {}\r\n", key.pem.replace('\n', "\r\n"));
    let parsed = PrivateKey::from_pem(windows.as_bytes()).expect("CRLF .p8");
    assert_eq!(parsed.fingerprint(), key.expected_fingerprint());
}

#[test]
fn canonical_pem_round_trips() {
    let key = TestKey::generate();
    let parsed = key.private_key();
    let stored = parsed.to_pem();
    assert!(stored.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let reparsed = PrivateKey::from_pem(stored.as_bytes()).expect("stored PEM parses");
    assert_eq!(reparsed.fingerprint(), parsed.fingerprint());
}

#[test]
fn sec1_key_is_rejected_with_conversion_advice() {
    let key = TestKey::generate();
    let error = PrivateKey::from_pem(key.sec1_pem().as_bytes()).unwrap_err();
    assert_eq!(error, KeyParseError::Sec1);
    let message = error.to_string();
    assert!(message.contains("SEC1"), "{message}");
    assert!(
        message.contains("openssl pkcs8 -topk8 -nocrypt"),
        "{message}"
    );
}

#[test]
fn p384_key_is_rejected_as_wrong_curve() {
    let error = PrivateKey::from_pem(test_keys::p384_pkcs8_pem().as_bytes()).unwrap_err();
    assert!(
        matches!(&error, KeyParseError::UnsupportedCurve { curve } if curve.contains("P-384")),
        "{error:?}"
    );
    assert!(error.to_string().contains("P-256"));
}

#[test]
fn rsa_keys_are_rejected_in_both_encodings() {
    assert_eq!(
        PrivateKey::from_pem(test_keys::rsa_pkcs8_pem().as_bytes()).unwrap_err(),
        KeyParseError::Rsa
    );
    assert_eq!(
        PrivateKey::from_pem(test_keys::rsa_pkcs1_pem().as_bytes()).unwrap_err(),
        KeyParseError::Rsa
    );
    assert!(KeyParseError::Rsa.to_string().contains("RSA"));
}

#[test]
fn encrypted_pkcs8_is_rejected_with_decrypt_advice() {
    let error = PrivateKey::from_pem(test_keys::encrypted_pkcs8_pem().as_bytes()).unwrap_err();
    assert_eq!(error, KeyParseError::Encrypted);
    assert!(error.to_string().contains("encrypted"));
}

#[test]
fn certificate_is_rejected() {
    let error = PrivateKey::from_pem(test_keys::certificate_pem().as_bytes()).unwrap_err();
    assert_eq!(error, KeyParseError::Certificate);
    assert!(error.to_string().contains("certificate"));
}

#[test]
fn empty_garbage_and_oversize_inputs_are_rejected_distinctly() {
    assert_eq!(PrivateKey::from_pem(b"").unwrap_err(), KeyParseError::Empty);
    assert_eq!(
        PrivateKey::from_pem(b"\n\n  ").unwrap_err(),
        KeyParseError::Empty
    );
    assert_eq!(
        PrivateKey::from_pem(&test_keys::binary_garbage()).unwrap_err(),
        KeyParseError::NotPem
    );
    assert_eq!(
        PrivateKey::from_pem(b"just some text that is not a key").unwrap_err(),
        KeyParseError::NotPem
    );
    let mut oversize = TestKey::generate().pem.into_bytes();
    oversize.resize(MAX_PRIVATE_KEY_BYTES + 1, b'\n');
    assert_eq!(
        PrivateKey::from_pem(&oversize).unwrap_err(),
        KeyParseError::TooLarge {
            size: MAX_PRIVATE_KEY_BYTES + 1
        }
    );
    assert_eq!(MAX_PRIVATE_KEY_BYTES, 64 * 1024);
}

#[test]
fn damaged_pkcs8_is_malformed_not_accepted() {
    let key = TestKey::generate();
    let mut lines: Vec<String> = key.pem.lines().map(str::to_owned).collect();
    // Cut the body short: still base64, no longer a PrivateKeyInfo.
    lines[1].truncate(20);
    lines.truncate(2);
    lines.push("-----END PRIVATE KEY-----".into());
    let error = PrivateKey::from_pem(lines.join("\n").as_bytes()).unwrap_err();
    assert!(
        matches!(error, KeyParseError::Malformed { .. }),
        "{error:?}"
    );
}

#[test]
fn no_formatting_reveals_key_material() {
    let key = TestKey::generate();
    let credentials = key.credentials();
    let token = mint_token(&credentials, chrono::Utc::now()).expect("token");
    let error = AscError::NotAuthorized {
        code: "NOT_AUTHORIZED".into(),
        detail: None,
    };
    let rendered = [
        format!("{:?}", credentials.private_key),
        format!("{}", credentials.private_key),
        format!("{credentials:?}"),
        format!("{:#?}", credentials),
        format!("{token:?}"),
        format!("{token}"),
        format!("{error:?} {error}"),
        format!("{key:?}"),
    ]
    .join("\n");
    let mut secrets = key.pem_body_lines();
    secrets.extend(key.scalar_encodings());
    secrets.push(token.expose().to_owned());
    secrets.push(
        token
            .expose()
            .split('.')
            .nth(2)
            .unwrap_or_default()
            .to_owned(),
    );
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !rendered.contains(secret.as_str()),
            "leaked {secret} in:\n{rendered}"
        );
    }
    assert!(rendered.contains(&key.expected_fingerprint()));
    assert!(rendered.contains(key.key_id.as_str()));
}

#[test]
fn parse_errors_never_echo_input() {
    let key = TestKey::generate();
    let inputs = [
        key.sec1_pem(),
        test_keys::p384_pkcs8_pem(),
        test_keys::rsa_pkcs8_pem(),
        key.pem.replace("PRIVATE KEY", "WEIRD THING"),
    ];
    for input in inputs {
        let error = PrivateKey::from_pem(input.as_bytes()).unwrap_err();
        let rendered = format!("{error} {error:?}");
        for line in input.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!rendered.contains(line), "{rendered}");
        }
    }
}
