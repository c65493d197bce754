//! The store-account port: what the validator and the sweep need from a store (App Store Connect
//! today, Google Play next), whatever the store. One adapter per store implements it
//! (`shipwatch-adapters`, module `app_store_connect`), and one mapping,
//! [`verdict_for`], turns its errors into a key's status for validation and sweep alike.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shipwatch_shared::asc::RateLimit;
use shipwatch_shared::credentials::ApiCredentials;

use crate::domain::observation::Observation;
use crate::domain::snapshot::KeySnapshot;
use crate::model::{AccountRef, KeyStatusCode, SecretValue};

/// The secret half of a key, parsed: what a session signs with. `Debug` shows no key material.
#[derive(Clone, Debug)]
pub enum Credentials {
    AppStoreConnect(Arc<ApiCredentials>),
    GooglePlay(Arc<PlayCredentials>),
}

/// A Google Play key's credentials: the service account and the packages it watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayCredentials {
    pub key: shipwatch_shared::google_play::ServiceAccountKey,
    pub package_names: Vec<String>,
}

impl Credentials {
    pub fn platform(&self) -> crate::model::Platform {
        match self {
            Self::AppStoreConnect(_) => crate::model::Platform::AppStoreConnect,
            Self::GooglePlay(_) => crate::model::Platform::GooglePlay,
        }
    }

    /// Whether these credentials belong to the account a key record names (a cached copy must
    /// not outlive a change of the record).
    pub fn is_for(&self, account: &AccountRef) -> bool {
        match (self, account) {
            (
                Self::AppStoreConnect(credentials),
                AccountRef::AppStoreConnect { key_id, issuer_id },
            ) => credentials.key_id == *key_id && credentials.issuer_id == *issuer_id,
            (
                Self::GooglePlay(play),
                AccountRef::GooglePlay {
                    client_email,
                    private_key_id,
                    package_names,
                },
            ) => {
                play.key.client_email() == client_email
                    && play.key.private_key_id() == private_key_id
                    && play.package_names == *package_names
            }
            _ => false,
        }
    }
}

/// The stored secret does not make credentials for the account (never shows the secret).
#[derive(Debug, thiserror::Error)]
#[error("the stored private key cannot be read: {0}")]
pub struct CredentialError(pub String);

/// Why a store could not be read, in store-neutral terms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The store refused the credentials (revoked, deleted, wrong ids).
    #[error("the store refused the credentials")]
    NotAuthorized,
    /// The credentials work but may not read what shipwatch needs (role or permission too low).
    #[error("the credentials may not read what shipwatch needs")]
    Forbidden,
    /// The account holder must act in the store first (e.g. accept agreements).
    #[error("the store asks the account holder to act first")]
    ActionRequired(KeyStatusCode),
    /// The store refused this read for a reason a user must fix (Google Play: no permission on
    /// the app, or no such package): the key is invalid with `code`.
    #[error("the store refused the read ({})", .0.as_str())]
    Refused(KeyStatusCode),
    #[error("the store rate-limited the key")]
    RateLimited { retry_after: Option<Duration> },
    /// Outage, timeout, transport error or an answer that could not be read: try again later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl AccountError {
    /// A failure worth another try soon (not one about the credentials or a rate limit).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// What validating a key's account found out when it worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSummary {
    pub apps_count: u32,
}

/// What a session spent of the key's store allowance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountUsage {
    pub requests: u64,
    /// The store's own last report of the key's allowance, when it sends one.
    pub rate_limit: Option<RateLimit>,
}

/// The verdict on a key: its status after asking the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid {
        apps_count: u32,
    },
    Invalid(KeyStatusCode),
    ActionRequired(KeyStatusCode),
    /// The store could not answer; try again after `retry_after` at the earliest.
    Unavailable {
        retry_after: Option<Duration>,
        rate_limited: bool,
    },
}

/// The one mapping from a store's answer to a key's verdict, for validation and sweep.
pub fn verdict_for(result: Result<AccountSummary, &AccountError>) -> Verdict {
    match result {
        Ok(summary) => Verdict::Valid {
            apps_count: summary.apps_count,
        },
        Err(AccountError::NotAuthorized) => Verdict::Invalid(KeyStatusCode::NotAuthorized),
        Err(AccountError::Forbidden) => Verdict::Invalid(KeyStatusCode::InsufficientRole),
        Err(AccountError::ActionRequired(code)) => Verdict::ActionRequired(*code),
        Err(AccountError::Refused(code)) => Verdict::Invalid(*code),
        Err(AccountError::RateLimited { retry_after }) => Verdict::Unavailable {
            retry_after: *retry_after,
            rate_limited: true,
        },
        Err(AccountError::Unavailable(_)) => Verdict::Unavailable {
            retry_after: None,
            rate_limited: false,
        },
    }
}

/// Opens sessions on store accounts.
pub trait StoreAccounts: Send + Sync {
    /// Parses a key's stored secret (CPU only; the sweep caches the result).
    fn credentials(
        &self,
        account: &AccountRef,
        secret: &SecretValue,
    ) -> Result<Credentials, CredentialError>;

    /// A session acting as `credentials`; it counts what it spends.
    fn session(&self, credentials: &Credentials) -> Box<dyn AccountSession>;
}

/// Requests made as one key, for one validation or one sweep of it.
#[async_trait]
pub trait AccountSession: Send + Sync {
    /// Checks that the credentials work and may read what the sweep reads.
    async fn validate(&self) -> Result<AccountSummary, AccountError>;

    /// Reads the account: apps, versions, builds, and the phased releases that `prev` says are
    /// worth reading (see [`crate::domain::snapshot::phased_release_checks`]).
    async fn observe(&self, prev: Option<&KeySnapshot>) -> Result<Observation, AccountError>;

    /// What this session has spent so far.
    fn usage(&self) -> AccountUsage;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_error_has_its_verdict() {
        assert_eq!(
            verdict_for(Ok(AccountSummary { apps_count: 3 })),
            Verdict::Valid { apps_count: 3 }
        );
        assert_eq!(
            verdict_for(Err(&AccountError::NotAuthorized)),
            Verdict::Invalid(KeyStatusCode::NotAuthorized)
        );
        assert_eq!(
            verdict_for(Err(&AccountError::Forbidden)),
            Verdict::Invalid(KeyStatusCode::InsufficientRole)
        );
        assert_eq!(
            verdict_for(Err(&AccountError::ActionRequired(
                KeyStatusCode::AgreementsRequired
            ))),
            Verdict::ActionRequired(KeyStatusCode::AgreementsRequired)
        );
        assert_eq!(
            verdict_for(Err(&AccountError::RateLimited {
                retry_after: Some(Duration::from_secs(90))
            })),
            Verdict::Unavailable {
                retry_after: Some(Duration::from_secs(90)),
                rate_limited: true
            }
        );
        assert_eq!(
            verdict_for(Err(&AccountError::Unavailable("timeout".into()))),
            Verdict::Unavailable {
                retry_after: None,
                rate_limited: false
            }
        );
    }
}
