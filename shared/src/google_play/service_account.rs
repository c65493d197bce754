//! Google service-account JSON keys, as downloaded from Google Cloud (IAM > Service accounts >
//! Keys > Add key > JSON), and Android package names.
//!
//! The whole file is a secret (it holds the RSA private key): it is kept zeroized, and `Debug`
//! and `Display` show only the account's email, the key id and the public-key fingerprint.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Largest service-account file accepted. Google's files are about 2.3 KiB (2048-bit key);
/// 16 KiB leaves room for 4096-bit keys and future fields.
pub const MAX_SERVICE_ACCOUNT_BYTES: usize = 16 * 1024;

/// The `algorithm` OID of an RSA key in PKCS#8 (rsaEncryption, RFC 8017).
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

const DOWNLOAD_HINT: &str = "upload the JSON key file of a service account exactly as downloaded from Google Cloud (IAM & Admin > Service accounts > Keys > Add key > Create new key > JSON)";

/// Why an upload is not a usable service-account key. Messages never quote the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAccountError {
    #[error(
        "the service-account file is larger than {MAX_SERVICE_ACCOUNT_BYTES} bytes; {DOWNLOAD_HINT}"
    )]
    TooLarge,
    #[error("the service-account file is not JSON; {DOWNLOAD_HINT}")]
    NotJson,
    #[error("this is an OAuth client file (\"{0}\"), not a service-account key; {DOWNLOAD_HINT}")]
    OAuthClient(&'static str),
    #[error("the file's \"type\" is {found}, not \"service_account\"; {DOWNLOAD_HINT}")]
    WrongType { found: String },
    #[error("the service-account file has no \"{0}\"; {DOWNLOAD_HINT}")]
    MissingField(&'static str),
    #[error("\"client_email\" is not an email address; {DOWNLOAD_HINT}")]
    InvalidClientEmail,
    #[error(
        "\"private_key\" is not a PEM private key (-----BEGIN PRIVATE KEY-----); {DOWNLOAD_HINT}"
    )]
    NotPem,
    #[error(
        "\"private_key\" is a PKCS#1 RSA key (BEGIN RSA PRIVATE KEY); Google's files hold PKCS#8 (BEGIN PRIVATE KEY): {DOWNLOAD_HINT}"
    )]
    Pkcs1,
    #[error(
        "\"private_key\" is encrypted; Google's files hold an unencrypted key: {DOWNLOAD_HINT}"
    )]
    Encrypted,
    #[error(
        "\"private_key\" is not an RSA key (Google signs service-account tokens with RS256); {DOWNLOAD_HINT}"
    )]
    NotRsa,
    #[error("\"private_key\" is not a valid RSA private key; {DOWNLOAD_HINT}")]
    MalformedRsa,
}

/// The fields of the file shipwatch reads. `token_uri` is deliberately not read: the token URL
/// is shipwatch's setting, so an upload cannot point it at another host.
#[derive(Deserialize)]
struct RawFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    installed: Option<serde::de::IgnoredAny>,
    web: Option<serde::de::IgnoredAny>,
}

/// A parsed service-account key. Cloning shares nothing mutable; the secret parts are zeroized
/// on drop.
#[derive(Clone)]
pub struct ServiceAccountKey {
    client_email: String,
    private_key_id: String,
    fingerprint: String,
    pkcs8_der: Zeroizing<Vec<u8>>,
    json: Zeroizing<String>,
}

impl ServiceAccountKey {
    /// Parses the file's bytes, checking everything shipwatch relies on.
    pub fn from_json(input: &[u8]) -> Result<Self, ServiceAccountError> {
        if input.len() > MAX_SERVICE_ACCOUNT_BYTES {
            return Err(ServiceAccountError::TooLarge);
        }
        let text = std::str::from_utf8(input).map_err(|_| ServiceAccountError::NotJson)?;
        let raw: RawFile = serde_json::from_str(text).map_err(|_| ServiceAccountError::NotJson)?;
        if raw.installed.is_some() {
            return Err(ServiceAccountError::OAuthClient("installed"));
        }
        if raw.web.is_some() {
            return Err(ServiceAccountError::OAuthClient("web"));
        }
        match raw.kind.as_deref() {
            Some("service_account") => {}
            Some(other) => {
                return Err(ServiceAccountError::WrongType {
                    // Only a short, printable rendering of the wrong value is echoed.
                    found: format!("{:?}", other.chars().take(40).collect::<String>()),
                });
            }
            None => return Err(ServiceAccountError::MissingField("type")),
        }
        let client_email = non_empty(raw.client_email, "client_email")?;
        if !is_email(&client_email) {
            return Err(ServiceAccountError::InvalidClientEmail);
        }
        let private_key_id = non_empty(raw.private_key_id, "private_key_id")?;
        let private_key = Zeroizing::new(non_empty(raw.private_key, "private_key")?);
        let pkcs8_der = pkcs8_der_of(&private_key)?;
        let fingerprint = rsa_fingerprint(&pkcs8_der)?;
        Ok(Self {
            client_email,
            private_key_id,
            fingerprint,
            pkcs8_der,
            json: Zeroizing::new(text.to_owned()),
        })
    }

    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    pub fn private_key_id(&self) -> &str {
        &self.private_key_id
    }

    /// SHA-256 of the public key's DER SubjectPublicKeyInfo, formatted like OpenSSH (the same
    /// form as App Store Connect keys' fingerprints).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The PKCS#8 DER of the private key, for signing only.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }

    /// The uploaded file, for the secret store only.
    pub fn to_json(&self) -> Zeroizing<String> {
        self.json.clone()
    }
}

impl PartialEq for ServiceAccountKey {
    fn eq(&self, other: &Self) -> bool {
        // Same public key and same ids: the same key, without comparing secrets.
        self.fingerprint == other.fingerprint
            && self.client_email == other.client_email
            && self.private_key_id == other.private_key_id
    }
}
impl Eq for ServiceAccountKey {}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("fingerprint", &self.fingerprint)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service account {} <redacted> ({})",
            self.client_email, self.fingerprint
        )
    }
}

fn non_empty(value: Option<String>, field: &'static str) -> Result<String, ServiceAccountError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ServiceAccountError::MissingField(field)),
    }
}

/// A plausible address: one `@`, both sides non-empty, a dot in the domain, printable ASCII
/// without spaces (service accounts are `NAME@PROJECT.iam.gserviceaccount.com`).
fn is_email(value: &str) -> bool {
    value.len() <= 254
        && value.bytes().all(|b| b.is_ascii_graphic())
        && matches!(value.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'))
}

fn pkcs8_der_of(pem: &str) -> Result<Zeroizing<Vec<u8>>, ServiceAccountError> {
    let (label, der) = pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|_| ServiceAccountError::NotPem)?;
    let der = Zeroizing::new(der);
    match label {
        "PRIVATE KEY" => {}
        "RSA PRIVATE KEY" => return Err(ServiceAccountError::Pkcs1),
        "ENCRYPTED PRIVATE KEY" => return Err(ServiceAccountError::Encrypted),
        _ => return Err(ServiceAccountError::NotPem),
    }
    let info =
        pkcs8::PrivateKeyInfo::try_from(der.as_slice()).map_err(|_| ServiceAccountError::NotPem)?;
    if info.algorithm.oid.to_string() != RSA_ENCRYPTION_OID {
        return Err(ServiceAccountError::NotRsa);
    }
    Ok(der)
}

fn rsa_fingerprint(pkcs8_der: &[u8]) -> Result<String, ServiceAccountError> {
    let pair = RsaKeyPair::from_pkcs8(pkcs8_der).map_err(|_| ServiceAccountError::MalformedRsa)?;
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|_| ServiceAccountError::MalformedRsa)?;
    Ok(format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(spki.as_ref()))
    ))
}

/// An Android package name (application ID) as Google Play names apps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName(String);

/// Why a package name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{shown} is not an Android package name: two or more segments separated by dots, each starting with a letter and made of letters, digits and underscores (like com.example.app)"
)]
pub struct PackageNameError {
    shown: String,
}

/// Longest package name accepted (Google Play's application IDs stay well below it).
pub const MAX_PACKAGE_NAME_CHARS: usize = 150;

impl PackageName {
    /// Checks Android's rule for application IDs: at least two segments, each starting with an
    /// ASCII letter, made of ASCII letters, digits and underscores.
    pub fn parse(raw: &str) -> Result<Self, PackageNameError> {
        let raw = raw.trim();
        let ok = raw.len() <= MAX_PACKAGE_NAME_CHARS
            && raw.split('.').count() >= 2
            && raw.split('.').all(|segment| {
                segment.starts_with(|c: char| c.is_ascii_alphabetic())
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PackageNameError {
                shown: format!("{:?}", raw.chars().take(60).collect::<String>()),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_A: &str = include_str!("../../../tests/fixtures/google_play/rsa_a.pem");
    const RSA_A_PKCS1: &str = include_str!("../../../tests/fixtures/google_play/rsa_a_pkcs1.pem");
    const EC: &str = include_str!("../../../tests/fixtures/google_play/ec_p256.pem");

    fn file(private_key: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "shipwatch-test",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": private_key,
            "client_email": "watcher@shipwatch-test.iam.gserviceaccount.com",
            "client_id": "123456789012345678901",
            "token_uri": "https://evil.example/token",
        })
        .to_string()
    }

    #[test]
    fn a_google_file_parses_with_its_ids_and_fingerprint() {
        let key = ServiceAccountKey::from_json(file(RSA_A).as_bytes()).unwrap();
        assert_eq!(
            key.client_email(),
            "watcher@shipwatch-test.iam.gserviceaccount.com"
        );
        assert_eq!(
            key.private_key_id(),
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert!(key.fingerprint().starts_with("SHA256:"));
        assert_eq!(key.to_json().as_str(), file(RSA_A));
    }

    #[test]
    fn debug_and_display_show_no_key_material() {
        let key = ServiceAccountKey::from_json(file(RSA_A).as_bytes()).unwrap();
        let body_line = RSA_A.lines().nth(1).unwrap();
        for shown in [format!("{key:?}"), format!("{key}")] {
            assert!(!shown.contains(body_line), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            assert!(shown.contains("watcher@shipwatch-test"), "{shown}");
        }
    }

    #[test]
    fn each_wrong_file_names_its_reason() {
        let cases: Vec<(String, ServiceAccountError)> = vec![
            (
                "x".repeat(MAX_SERVICE_ACCOUNT_BYTES + 1),
                ServiceAccountError::TooLarge,
            ),
            ("not json".into(), ServiceAccountError::NotJson),
            (
                r#"{"installed":{"client_id":"x.apps.googleusercontent.com","client_secret":"s"}}"#
                    .into(),
                ServiceAccountError::OAuthClient("installed"),
            ),
            (
                r#"{"web":{"client_id":"x.apps.googleusercontent.com"}}"#.into(),
                ServiceAccountError::OAuthClient("web"),
            ),
            (
                file(RSA_A).replace("\"service_account\"", "\"authorized_user\""),
                ServiceAccountError::WrongType {
                    found: "\"authorized_user\"".into(),
                },
            ),
            (
                file(RSA_A).replace("\"type\"", "\"kind\""),
                ServiceAccountError::MissingField("type"),
            ),
            (
                file(RSA_A).replace("\"client_email\"", "\"email\""),
                ServiceAccountError::MissingField("client_email"),
            ),
            (
                file(RSA_A).replace("\"private_key_id\"", "\"key_id\""),
                ServiceAccountError::MissingField("private_key_id"),
            ),
            (
                file(RSA_A).replace("\"private_key\"", "\"secret\""),
                ServiceAccountError::MissingField("private_key"),
            ),
            (
                file(RSA_A).replace("watcher@shipwatch-test.iam.gserviceaccount.com", "watcher"),
                ServiceAccountError::InvalidClientEmail,
            ),
            (file("garbage"), ServiceAccountError::NotPem),
            (file(RSA_A_PKCS1), ServiceAccountError::Pkcs1),
            (file(EC), ServiceAccountError::NotRsa),
            (
                file(
                    &RSA_A
                        .replace("BEGIN PRIVATE KEY", "BEGIN ENCRYPTED PRIVATE KEY")
                        .replace("END PRIVATE KEY", "END ENCRYPTED PRIVATE KEY"),
                ),
                ServiceAccountError::Encrypted,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                ServiceAccountKey::from_json(input.as_bytes()).unwrap_err(),
                expected
            );
        }
    }

    #[test]
    fn package_names_follow_androids_rule() {
        for ok in [
            "com.example.app",
            "a.b",
            "com.Example_1.app2",
            " com.example.app ",
        ] {
            assert!(PackageName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "app",
            "com..app",
            ".com.app",
            "com.app.",
            "com.1app",
            "com._app",
            "com.ex-ample",
            "com.exämple",
            "com.example app",
        ] {
            assert!(PackageName::parse(bad).is_err(), "{bad}");
        }
        assert!(PackageName::parse(&format!("com.{}", "a".repeat(200))).is_err());
    }
}
