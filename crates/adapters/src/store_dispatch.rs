//! One [`StoreAccounts`] over every store: each key goes to the adapter of its platform.

use std::sync::Arc;

use async_trait::async_trait;
use shipwatch_service::accounts::{
    AccountError, AccountSession, AccountSummary, AccountUsage, CredentialError, Credentials,
    StoreAccounts,
};
use shipwatch_service::domain::observation::Observation;
use shipwatch_service::domain::snapshot::KeySnapshot;
use shipwatch_service::model::{AccountRef, Platform, SecretValue};

/// Dispatches on [`AccountRef::platform`] (credentials) and [`Credentials::platform`] (sessions).
pub struct StoreAccountsByPlatform {
    pub app_store_connect: Arc<dyn StoreAccounts>,
    pub google_play: Arc<dyn StoreAccounts>,
}

impl StoreAccountsByPlatform {
    fn for_platform(&self, platform: Platform) -> &dyn StoreAccounts {
        match platform {
            Platform::AppStoreConnect => self.app_store_connect.as_ref(),
            Platform::GooglePlay => self.google_play.as_ref(),
        }
    }
}

impl StoreAccounts for StoreAccountsByPlatform {
    fn credentials(
        &self,
        account: &AccountRef,
        secret: &SecretValue,
    ) -> Result<Credentials, CredentialError> {
        self.for_platform(account.platform())
            .credentials(account, secret)
    }

    fn session(&self, credentials: &Credentials) -> Box<dyn AccountSession> {
        self.for_platform(credentials.platform())
            .session(credentials)
    }
}

/// A session an adapter hands out for another store's credentials (a wiring mistake): every
/// request fails as unavailable instead of panicking.
pub struct WrongStore(pub Platform);

#[async_trait]
impl AccountSession for WrongStore {
    async fn validate(&self) -> Result<AccountSummary, AccountError> {
        Err(self.error())
    }

    async fn observe(&self, _prev: Option<&KeySnapshot>) -> Result<Observation, AccountError> {
        Err(self.error())
    }

    fn usage(&self) -> AccountUsage {
        AccountUsage::default()
    }
}

impl WrongStore {
    fn error(&self) -> AccountError {
        AccountError::Unavailable(format!(
            "credentials of {} reached another store's adapter",
            self.0.as_str()
        ))
    }
}
