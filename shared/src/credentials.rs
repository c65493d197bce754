//! Identifiers and private keys of App Store Connect team API keys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("the Key ID must be 10 characters of A-Z and 0-9, as shown in App Store Connect (Users and Access > Integrations)")]
    InvalidKeyId,
    #[error("the Issuer ID must be a UUID such as 57246542-96fe-1a63-e053-0824d011072a, as shown above the key list in App Store Connect")]
    InvalidIssuerId,
}

/// An App Store Connect API Key ID: exactly 10 characters of `A-Z0-9`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let raw = raw.trim();
        if raw.len() == 10 && raw.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
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
