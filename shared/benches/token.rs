//! ES256 token cost: signing a fresh App Store Connect token, reusing the client's cached one, and
//! reading a `.p8` (the sweep parses each key's private key once per sweep).

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use p256::pkcs8::EncodePrivateKey as _;
use shipwatch_shared::asc::{AscClient, AscConfig, mint_token};
use shipwatch_shared::credentials::{ApiCredentials, IssuerId, KeyId, PrivateKey};

/// A fixed benchmark key (never a real one): the scalar 0x4242...42.
fn credentials() -> ApiCredentials {
    let secret = p256::SecretKey::from_slice(&[0x42; 32]).expect("0x42.. is a valid P-256 scalar");
    let der = secret
        .to_pkcs8_der()
        .expect("a P-256 key encodes as PKCS#8");
    ApiCredentials::new(
        KeyId::parse("BENCH00001").expect("valid Key ID"),
        IssuerId::parse("57246542-96fe-1a63-e053-0824d011072a").expect("valid Issuer ID"),
        PrivateKey::from_pkcs8_der(der.as_bytes()).expect("the key reads back"),
    )
}

fn tokens(c: &mut Criterion) {
    let credentials = credentials();
    let mut group = c.benchmark_group("token");
    group.bench_function("sign (ES256, new token)", |b| {
        b.iter(|| mint_token(black_box(&credentials), Utc::now()).expect("signs"))
    });
    let client = AscClient::new(AscConfig::default()).expect("client");
    client.token_for(&credentials).expect("first token");
    group.bench_function("reuse (AscClient cache hit)", |b| {
        b.iter(|| client.token_for(black_box(&credentials)).expect("cached"))
    });
    group.finish();
    assert_eq!(
        client.tokens_minted(),
        1,
        "the cache hit benchmark must never sign"
    );

    let pem = credentials.private_key.to_pem();
    c.bench_function("credentials/parse .p8 (PKCS#8 PEM)", |b| {
        b.iter(|| PrivateKey::from_pem(black_box(pem.as_bytes())).expect("parses"))
    });
}

criterion_group!(benches, tokens);
criterion_main!(benches);
