//! Fresh App Store Connect-style API keys made at test time (no private key lives in the repo),
//! plus every kind of wrong upload the `.p8` parser must reject.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::der::asn1::{AnyRef, ObjectIdentifier};
use p256::pkcs8::der::{Encode as _, Tag};
use p256::pkcs8::spki::AlgorithmIdentifierRef;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding, PrivateKeyInfo};
use rand::RngCore as _;
use shipwatch_shared::credentials::{ApiCredentials, IssuerId, KeyId, PrivateKey};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A team API key as App Store Connect issues it: Key ID, Issuer ID and a PKCS#8 P-256 `.p8`.
#[derive(Clone)]
pub struct TestKey {
    pub key_id: KeyId,
    pub issuer_id: IssuerId,
    /// The `.p8` contents exactly as Apple ships them (PKCS#8 PEM).
    pub pem: String,
    pub verifying_key: VerifyingKey,
    secret: p256::SecretKey,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("key_id", &self.key_id)
            .field("issuer_id", &self.issuer_id)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// A new key with a random Key ID in a new account (random Issuer ID).
    pub fn generate() -> Self {
        Self::generate_for(random_issuer_id())
    }

    /// A new key in an existing account.
    pub fn generate_for(issuer_id: IssuerId) -> Self {
        let secret = random_p256_secret();
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .expect("a fresh P-256 key encodes as PKCS#8")
            .to_string();
        let verifying_key = VerifyingKey::from(secret.public_key());
        Self {
            key_id: random_key_id(),
            issuer_id,
            pem,
            verifying_key,
            secret,
        }
    }

    pub fn private_key(&self) -> PrivateKey {
        PrivateKey::from_pem(self.pem.as_bytes()).expect("generated keys are valid .p8 keys")
    }

    pub fn credentials(&self) -> ApiCredentials {
        ApiCredentials::new(
            self.key_id.clone(),
            self.issuer_id.clone(),
            self.private_key(),
        )
    }

    /// `SHA256:` fingerprint computed here independently of the parser: SHA-256 over the SPKI DER.
    pub fn expected_fingerprint(&self) -> String {
        use sha2::Digest as _;
        let spki = self
            .secret
            .public_key()
            .to_public_key_der()
            .expect("public key encodes");
        let digest = sha2::Sha256::digest(spki.as_bytes());
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )
    }

    /// The base64 body lines of the PEM: none may ever appear in logs or errors.
    pub fn pem_body_lines(&self) -> Vec<String> {
        self.pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .map(str::to_owned)
            .collect()
    }

    /// Textual encodings of the raw private scalar (base64, base64url, hex) that must never leak.
    pub fn scalar_encodings(&self) -> Vec<String> {
        let scalar = self.secret.to_bytes();
        vec![
            STANDARD.encode(scalar),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(scalar),
            hex::encode(scalar),
        ]
    }

    /// Signs an arbitrary JWT with this key (ES256, raw r||s), for crafting tokens a correct
    /// client would never send.
    pub fn sign_jwt(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use p256::ecdsa::signature::Signer as _;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signing_key = p256::ecdsa::SigningKey::from(&self.secret);
        let signature: p256::ecdsa::Signature = signing_key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    /// The same key as a SEC1 PEM (`BEGIN EC PRIVATE KEY`), as `openssl ecparam -genkey` writes it.
    pub fn sec1_pem(&self) -> String {
        let der = self.secret.to_sec1_der().expect("SEC1 encoding");
        pem("EC PRIVATE KEY", &der)
    }
}

/// A random valid Key ID (10 of A-Z0-9).
pub fn random_key_id() -> KeyId {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let raw: String = (0..10)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect();
    KeyId::parse(&raw).expect("alphabet is valid")
}

pub fn random_issuer_id() -> IssuerId {
    IssuerId::parse(&uuid::Uuid::new_v4().to_string()).expect("a v4 UUID is an Issuer ID")
}

/// p256 0.13 uses rand_core 0.6 while the workspace has rand 0.9, so draw bytes and retry the
/// (astronomically rare) out-of-range scalar.
fn random_p256_secret() -> p256::SecretKey {
    let mut rng = rand::rng();
    loop {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            return secret;
        }
    }
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Wraps DER in a PEM block with the given label.
pub fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A PKCS#8 EC key on P-384: the algorithm identifier names secp384r1 and the body is a
/// SEC1 ECPrivateKey with a 48-byte scalar, as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384` makes.
pub fn p384_pkcs8_pem() -> String {
    let scalar = random_bytes(48);
    // ECPrivateKey ::= SEQUENCE { version INTEGER 1, privateKey OCTET STRING }
    let mut ec_private_key = vec![0x30, 0x35, 0x02, 0x01, 0x01, 0x04, 0x30];
    ec_private_key.extend_from_slice(&scalar);
    let curve =
        AnyRef::new(Tag::ObjectIdentifier, OID_SECP384R1.as_bytes()).expect("OID is a valid ANY");
    let info = PrivateKeyInfo::new(
        AlgorithmIdentifierRef {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(curve),
        },
        &ec_private_key,
    );
    pem("PRIVATE KEY", &info.to_der().expect("PKCS#8 encodes"))
}

/// A PKCS#8 `PRIVATE KEY` whose algorithm is rsaEncryption (body: random bytes; the classifier
/// decides on the algorithm identifier, like `openssl genpkey -algorithm RSA` output would be).
pub fn rsa_pkcs8_pem() -> String {
    let body = random_bytes(64);
    let info = PrivateKeyInfo::new(
        AlgorithmIdentifierRef {
            oid: OID_RSA_ENCRYPTION,
            parameters: Some(AnyRef::NULL),
        },
        &body,
    );
    pem("PRIVATE KEY", &info.to_der().expect("PKCS#8 encodes"))
}

/// A PKCS#1 `BEGIN RSA PRIVATE KEY` block.
pub fn rsa_pkcs1_pem() -> String {
    pem("RSA PRIVATE KEY", &random_bytes(600))
}

/// An encrypted PKCS#8 file (`openssl pkcs8 -topk8` with a passphrase).
pub fn encrypted_pkcs8_pem() -> String {
    pem("ENCRYPTED PRIVATE KEY", &random_bytes(200))
}

/// A certificate PEM, as someone may upload a distribution certificate by mistake.
pub fn certificate_pem() -> String {
    pem("CERTIFICATE", &random_bytes(400))
}

/// Random binary bytes (not text, not PEM).
pub fn binary_garbage() -> Vec<u8> {
    let mut bytes = random_bytes(300);
    bytes[0] = 0xff; // never valid UTF-8 at the start
    bytes
}

impl TestKey {
    /// Stores this key as an already validated key of `team` (record and secret), as if it had been
    /// uploaded and checked: for tests that start from a working key without the HTTP API.
    pub async fn seed_valid(
        &self,
        stores: &shipwatch_service::ports::Stores,
        team: &shipwatch_service::model::TeamId,
        name: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> shipwatch_service::model::ApiKeyRecord {
        use shipwatch_service::model::{ApiKeyRecord, KeyRecordId, KeyStatus, SecretValue};
        let record = ApiKeyRecord {
            id: KeyRecordId::generate(),
            team_id: team.clone(),
            name: name.to_owned(),
            account: shipwatch_service::model::AccountRef::AppStoreConnect {
                key_id: self.key_id.clone(),
                issuer_id: self.issuer_id.clone(),
            },
            public_key_fingerprint: self.expected_fingerprint(),
            status: KeyStatus::Valid,
            status_code: None,
            status_message: None,
            apps_count: Some(1),
            validated_at: Some(now),
            last_swept_at: None,
            created_at: now,
            updated_at: now,
            validation_attempts: 1,
            next_validation_at: None,
            revision: 1,
            asc_usage: None,
            revalidation_requests: Vec::new(),
            push: None,
        };
        stores
            .keys
            .insert_key(&record)
            .await
            .expect("key record stored");
        stores
            .secrets
            .put_secret(&record.secret_name(), &SecretValue::new(self.pem.clone()))
            .await
            .expect("key secret stored");
        record
    }
}
