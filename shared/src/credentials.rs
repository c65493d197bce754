//! Identifiers and private keys of App Store Connect team API keys.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use p256::pkcs8::der::Decode as _;
use p256::pkcs8::{
    DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding,
    ObjectIdentifier, PrivateKeyInfo,
};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "the Key ID must be 10 characters of A-Z and 0-9, as shown in App Store Connect (Users and Access > Integrations)"
    )]
    InvalidKeyId,
    #[error(
        "the Issuer ID must be a UUID such as 57246542-96fe-1a63-e053-0824d011072a, as shown above the key list in App Store Connect"
    )]
    InvalidIssuerId,
}

/// An App Store Connect API Key ID: exactly 10 characters of `A-Z0-9`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let raw = raw.trim();
        if raw.len() == 10
            && raw
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::InvalidKeyId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An App Store Connect Issuer ID: a UUID, kept in lowercase canonical form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct IssuerId(String);

impl IssuerId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let raw = raw.trim();
        let bytes = raw.as_bytes();
        let well_formed = bytes.len() == 36
            && bytes.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if well_formed {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(IdError::InvalidIssuerId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! id_boilerplate {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.0)
            }
        }
        impl FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
id_boilerplate!(KeyId);
id_boilerplate!(IssuerId);

/// The largest `.p8` upload accepted; Apple's files are about 250 bytes.
pub const MAX_PRIVATE_KEY_BYTES: usize = 64 * 1024;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

const UPLOAD_HINT: &str = "upload the .p8 file exactly as downloaded from App Store Connect (Users and Access > Integrations)";

/// Why an uploaded private key was rejected. Every message says what to do instead and never
/// contains any part of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("the private key is empty; {UPLOAD_HINT}")]
    Empty,
    #[error("the private key is larger than {max} bytes, so it cannot be an App Store Connect .p8 key; {UPLOAD_HINT}", max = MAX_PRIVATE_KEY_BYTES)]
    TooLarge { size: usize },
    #[error(
        "the private key is not PEM text (no `-----BEGIN PRIVATE KEY-----` line); {UPLOAD_HINT}"
    )]
    NotPem,
    #[error(
        "this is a SEC1 EC key; upload the .p8 file exactly as downloaded from App Store Connect, or convert with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    Sec1,
    #[error("this is an RSA key, but App Store Connect API keys are EC P-256 keys; {UPLOAD_HINT}")]
    Rsa,
    #[error(
        "this is an EC key on the {curve} curve, but App Store Connect API keys use P-256 (prime256v1); {UPLOAD_HINT}"
    )]
    UnsupportedCurve { curve: String },
    #[error(
        "this is a {algorithm} key, but App Store Connect API keys are EC P-256 keys; {UPLOAD_HINT}"
    )]
    UnsupportedAlgorithm { algorithm: String },
    #[error(
        "this private key is encrypted with a passphrase; decrypt it with `openssl pkcs8 -in key.p8 -out AuthKey.p8` and upload the result, or {UPLOAD_HINT}"
    )]
    Encrypted,
    #[error("this is a certificate, not a private key; {UPLOAD_HINT}")]
    Certificate,
    #[error("this is a public key; shipwatch needs the private key: {UPLOAD_HINT}")]
    PublicKey,
    #[error("this PEM block is labelled `{label}`, not `PRIVATE KEY`; {UPLOAD_HINT}")]
    UnexpectedPemLabel { label: String },
    #[error("the private key PEM is damaged ({reason}); {UPLOAD_HINT}")]
    Malformed { reason: &'static str },
}

/// An App Store Connect API private key: PKCS#8, EC P-256.
///
/// The scalar is zeroized on drop (by `p256::SecretKey`) and never formatted: `Debug` and
/// `Display` show only the public-key fingerprint.
#[derive(Clone)]
pub struct PrivateKey {
    secret: p256::SecretKey,
    fingerprint: String,
}

impl PrivateKey {
    /// Parses an uploaded `.p8` file, classifying every kind of wrong upload separately.
    pub fn from_pem(input: &[u8]) -> Result<Self, KeyParseError> {
        if input.len() > MAX_PRIVATE_KEY_BYTES {
            return Err(KeyParseError::TooLarge { size: input.len() });
        }
        let text = std::str::from_utf8(input).map_err(|_| {
            if input.iter().all(u8::is_ascii_whitespace) {
                KeyParseError::Empty
            } else {
                KeyParseError::NotPem
            }
        })?;
        let text = text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            return Err(KeyParseError::Empty);
        }
        let block = PemBlock::find(text)?;
        match block.label {
            "PRIVATE KEY" => {}
            "EC PRIVATE KEY" => return Err(KeyParseError::Sec1),
            "RSA PRIVATE KEY" => return Err(KeyParseError::Rsa),
            "ENCRYPTED PRIVATE KEY" => return Err(KeyParseError::Encrypted),
            "CERTIFICATE"
            | "TRUSTED CERTIFICATE"
            | "X509 CERTIFICATE"
            | "CERTIFICATE REQUEST"
            | "NEW CERTIFICATE REQUEST" => return Err(KeyParseError::Certificate),
            "PUBLIC KEY" | "EC PUBLIC KEY" | "RSA PUBLIC KEY" => {
                return Err(KeyParseError::PublicKey);
            }
            other => {
                return Err(KeyParseError::UnexpectedPemLabel {
                    label: other.chars().take(40).collect(),
                });
            }
        }
        let der = block.decode_body()?;
        Self::from_pkcs8_der(&der)
    }

    /// Parses a DER `PrivateKeyInfo` (the body of a `.p8`).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyParseError> {
        let info = PrivateKeyInfo::from_der(der).map_err(|_| KeyParseError::Malformed {
            reason: "the content is not a PKCS#8 PrivateKeyInfo",
        })?;
        let algorithm = info.algorithm.oid;
        if algorithm == OID_RSA_ENCRYPTION {
            return Err(KeyParseError::Rsa);
        }
        if algorithm != OID_EC_PUBLIC_KEY {
            return Err(KeyParseError::UnsupportedAlgorithm {
                algorithm: algorithm_name(algorithm),
            });
        }
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| KeyParseError::Malformed {
                reason: "the EC key names no curve",
            })?;
        if curve != OID_PRIME256V1 {
            return Err(KeyParseError::UnsupportedCurve {
                curve: curve_name(curve),
            });
        }
        let secret =
            p256::SecretKey::from_pkcs8_der(der).map_err(|_| KeyParseError::Malformed {
                reason: "the P-256 private key is invalid",
            })?;
        Ok(Self::from_secret(secret))
    }

    fn from_secret(secret: p256::SecretKey) -> Self {
        let fingerprint = fingerprint_of(&secret.public_key());
        Self {
            secret,
            fingerprint,
        }
    }

    /// `SHA256:` + unpadded base64 of SHA-256 over the DER SubjectPublicKeyInfo, like OpenSSH.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The public half, for verifying tokens or showing the user.
    pub fn public_key(&self) -> p256::PublicKey {
        self.secret.public_key()
    }

    /// Canonical PKCS#8 PEM (`BEGIN PRIVATE KEY`, LF line endings), for the secret store.
    pub fn to_pem(&self) -> Zeroizing<String> {
        match self.secret.to_pkcs8_pem(LineEnding::LF) {
            Ok(pem) => pem,
            // Encoding a valid P-256 scalar cannot fail; fall back to the DER route to stay panic-free.
            Err(_) => Zeroizing::new(pem_wrap("PRIVATE KEY", &self.pkcs8_der())),
        }
    }

    /// PKCS#8 DER of the key, as ES256 signers expect.
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        match self.secret.to_pkcs8_der() {
            Ok(doc) => Zeroizing::new(doc.as_bytes().to_vec()),
            Err(_) => Zeroizing::new(Vec::new()),
        }
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        // Equal public keys imply equal private scalars; this avoids comparing secrets.
        self.fingerprint == other.fingerprint
    }
}
impl Eq for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("fingerprint", &self.fingerprint)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P-256 private key <redacted> ({})", self.fingerprint)
    }
}

/// SHA-256 fingerprint of a P-256 public key's DER SubjectPublicKeyInfo, formatted like OpenSSH.
pub fn fingerprint_of(public_key: &p256::PublicKey) -> String {
    let digest = match public_key.to_public_key_der() {
        Ok(spki) => Sha256::digest(spki.as_bytes()),
        // Encoding a valid point cannot fail; hashing nothing would still give a stable value.
        Err(_) => Sha256::digest([]),
    };
    format!("SHA256:{}", STANDARD_NO_PAD.encode(digest))
}

/// Everything needed to call App Store Connect as one team API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiCredentials {
    pub key_id: KeyId,
    pub issuer_id: IssuerId,
    pub private_key: PrivateKey,
}

impl ApiCredentials {
    pub fn new(key_id: KeyId, issuer_id: IssuerId, private_key: PrivateKey) -> Self {
        Self {
            key_id,
            issuer_id,
            private_key,
        }
    }
}

impl fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("key_id", &self.key_id)
            .field("issuer_id", &self.issuer_id)
            .field("private_key", &self.private_key)
            .finish()
    }
}

/// One `-----BEGIN X-----` ... `-----END X-----` block located in the input.
struct PemBlock<'a> {
    label: &'a str,
    body: &'a str,
}

impl<'a> PemBlock<'a> {
    fn find(text: &'a str) -> Result<Self, KeyParseError> {
        const BEGIN: &str = "-----BEGIN ";
        let start = text.find(BEGIN).ok_or(KeyParseError::NotPem)?;
        let after_begin = &text[start + BEGIN.len()..];
        let label_end = after_begin.find("-----").ok_or(KeyParseError::Malformed {
            reason: "the BEGIN line is not closed with -----",
        })?;
        let label = after_begin[..label_end].trim();
        let rest = &after_begin[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = rest.find(&end_marker).ok_or(KeyParseError::Malformed {
            reason: "the END line is missing or does not match the BEGIN line",
        })?;
        Ok(Self {
            label,
            body: &rest[..body_end],
        })
    }

    fn decode_body(&self) -> Result<Zeroizing<Vec<u8>>, KeyParseError> {
        let compact: Zeroizing<String> = Zeroizing::new(
            self.body
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect(),
        );
        if compact.is_empty() {
            return Err(KeyParseError::Malformed {
                reason: "the PEM block is empty",
            });
        }
        if compact.contains(':') {
            // RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` mark legacy encrypted PEM.
            return Err(KeyParseError::Encrypted);
        }
        STANDARD
            .decode(compact.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| KeyParseError::Malformed {
                reason: "the PEM body is not valid base64",
            })
    }
}

fn pem_wrap(label: &str, der: &[u8]) -> String {
    let encoded = Zeroizing::new(STANDARD.encode(der));
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn curve_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.132.0.34" => "P-384 (secp384r1)".to_owned(),
        "1.3.132.0.35" => "P-521 (secp521r1)".to_owned(),
        "1.3.132.0.10" => "secp256k1".to_owned(),
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)".to_owned(),
        "1.3.132.0.33" => "P-224 (secp224r1)".to_owned(),
        other => format!("OID {other}"),
    }
}

fn algorithm_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        "1.3.101.110" => "X25519".to_owned(),
        "1.2.840.10040.4.1" => "DSA".to_owned(),
        "1.2.840.113549.1.1.10" => "RSA-PSS".to_owned(),
        other => format!("OID {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key derived at test time, so no private key literal lives in the repository.
    fn derived_key() -> p256::SecretKey {
        let scalar = Sha256::digest(b"shipwatch credentials unit test");
        p256::SecretKey::from_slice(&scalar).unwrap()
    }

    #[test]
    fn round_trips_through_canonical_pem() {
        let pem = derived_key().to_pkcs8_pem(LineEnding::CRLF).unwrap();
        let key = PrivateKey::from_pem(pem.as_bytes()).unwrap();
        let again = PrivateKey::from_pem(key.to_pem().as_bytes()).unwrap();
        assert_eq!(key, again);
        assert!(key.fingerprint().starts_with("SHA256:"));
        assert_eq!(key.fingerprint().len(), "SHA256:".len() + 43);
        assert!(!format!("{key:?}{key}").contains(pem.lines().nth(1).unwrap()));
    }

    #[test]
    fn rejects_obvious_non_keys() {
        assert_eq!(PrivateKey::from_pem(b""), Err(KeyParseError::Empty));
        assert_eq!(PrivateKey::from_pem(b" \n\t"), Err(KeyParseError::Empty));
        assert_eq!(
            PrivateKey::from_pem(&[0xff, 0x00, 0x13]),
            Err(KeyParseError::NotPem)
        );
        assert_eq!(
            PrivateKey::from_pem(&vec![b'A'; MAX_PRIVATE_KEY_BYTES + 1]),
            Err(KeyParseError::TooLarge {
                size: MAX_PRIVATE_KEY_BYTES + 1
            })
        );
        assert_eq!(
            PrivateKey::from_pem(b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n"),
            Err(KeyParseError::Malformed {
                reason: "the PEM body is not valid base64"
            })
        );
    }
}
