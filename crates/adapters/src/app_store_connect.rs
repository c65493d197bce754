//! App Store Connect behind the store-account port ([`shipwatch_service::accounts`]): signs as the
//! key (through `shipwatch-shared`), reads apps, versions, builds and phased releases, retries
//! outages, and maps Apple's models and errors into the store-neutral ones.
//!
//! Per account read: `GET /v1/apps` with versions included (all pages), one page of
//! `GET /v1/builds` (newest uploads), and one phased-release read per version in flight
//! ([`phased_release_checks`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shipwatch_service::accounts::{
    AccountError, AccountSession, AccountSummary, AccountUsage, CredentialError, Credentials,
    StoreAccounts,
};
use shipwatch_service::domain::observation::{
    Observation, ObservedApp, ObservedBuild, ObservedPhasedRelease, ObservedVersion,
};
use shipwatch_service::domain::snapshot::{KeySnapshot, phased_release_checks};
use shipwatch_service::model::{AccountRef, KeyStatusCode, SecretValue};
use shipwatch_shared::asc::{
    AppWithVersions, AscClient, AscError, AscSession, BuildWithDetails, PhasedRelease,
};
use shipwatch_shared::credentials::{ApiCredentials, PrivateKey};

/// How App Store Connect is read.
#[derive(Clone, Debug)]
pub struct AscReadPolicy {
    /// Newest builds read per key (one page; Apple allows at most 200).
    pub recent_builds: u32,
    /// Extra tries of a call that failed with 5xx, a timeout or a transport error.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl Default for AscReadPolicy {
    fn default() -> Self {
        Self {
            recent_builds: 200,
            retries: 2,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// App Store Connect accounts, through one pooled client.
#[derive(Clone)]
pub struct AppStoreConnectAccounts {
    client: AscClient,
    policy: AscReadPolicy,
}

impl AppStoreConnectAccounts {
    pub fn new(client: AscClient, policy: AscReadPolicy) -> Self {
        Self { client, policy }
    }

    /// The port over `client`, read as production reads it.
    pub fn port(client: AscClient) -> Arc<dyn StoreAccounts> {
        Arc::new(Self::new(client, AscReadPolicy::default()))
    }
}

impl StoreAccounts for AppStoreConnectAccounts {
    fn credentials(
        &self,
        account: &AccountRef,
        secret: &SecretValue,
    ) -> Result<Credentials, CredentialError> {
        let AccountRef::AppStoreConnect { key_id, issuer_id } = account else {
            return Err(CredentialError("not an App Store Connect key".into()));
        };
        let private_key = PrivateKey::from_pem(secret.expose().as_bytes())
            .map_err(|e| CredentialError(e.to_string()))?;
        Ok(Credentials::AppStoreConnect(Arc::new(ApiCredentials {
            key_id: key_id.clone(),
            issuer_id: issuer_id.clone(),
            private_key,
        })))
    }

    fn session(&self, credentials: &Credentials) -> Box<dyn AccountSession> {
        let Credentials::AppStoreConnect(credentials) = credentials else {
            return Box::new(crate::store_dispatch::WrongStore(credentials.platform()));
        };
        Box::new(AscAccountSession {
            session: self.client.session(credentials.clone()),
            policy: self.policy.clone(),
        })
    }
}

struct AscAccountSession {
    session: AscSession,
    policy: AscReadPolicy,
}

#[async_trait]
impl AccountSession for AscAccountSession {
    /// `GET /v1/apps?limit=1` (its total is the apps count), then `GET /v1/builds?limit=1`: a
    /// key whose role cannot read builds is refused there.
    async fn validate(&self) -> Result<AccountSummary, AccountError> {
        let apps_count = self.session.count_apps().await.map_err(account_error)?;
        self.session.probe_builds().await.map_err(account_error)?;
        Ok(AccountSummary { apps_count })
    }

    async fn observe(&self, prev: Option<&KeySnapshot>) -> Result<Observation, AccountError> {
        let apps: Vec<ObservedApp> = self
            .with_retries(|| self.session.list_apps_with_versions())
            .await?
            .iter()
            .map(observed_app)
            .collect();
        let builds = self
            .with_retries(|| self.session.list_recent_builds(self.policy.recent_builds))
            .await?
            .iter()
            .map(observed_build)
            .collect();
        let mut phased_releases = std::collections::BTreeMap::new();
        for version_id in phased_release_checks(prev, &apps) {
            let read = self
                .with_retries(|| self.session.get_phased_release(&version_id))
                .await?;
            phased_releases.insert(version_id, read.as_ref().map(observed_phased_release));
        }
        Ok(Observation {
            apps,
            builds,
            phased_releases,
            play_apps: Vec::new(),
        })
    }

    fn usage(&self) -> AccountUsage {
        AccountUsage {
            requests: self.session.requests_sent(),
            rate_limit: self.session.last_rate_limit(),
        }
    }
}

impl AscAccountSession {
    /// Runs `call`, trying again after 5xx, timeouts and transport errors (not after 429: a rate
    /// limit is honoured by skipping the key).
    async fn with_retries<T, F, Fut>(&self, call: F) -> Result<T, AccountError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, AscError>>,
    {
        let mut wait = self.policy.retry_backoff;
        let mut retries_left = self.policy.retries;
        loop {
            match call().await {
                Err(err)
                    if retries_left > 0
                        && err.is_retryable()
                        && !matches!(err, AscError::RateLimited { .. }) =>
                {
                    retries_left -= 1;
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                other => return other.map_err(account_error),
            }
        }
    }
}

/// Apple's error classes in store-neutral terms.
pub fn account_error(err: AscError) -> AccountError {
    match err {
        AscError::NotAuthorized { .. } => AccountError::NotAuthorized,
        AscError::Forbidden { .. } => AccountError::Forbidden,
        AscError::AgreementsRequired { .. } => {
            AccountError::ActionRequired(KeyStatusCode::AgreementsRequired)
        }
        AscError::RateLimited { retry_after, .. } => AccountError::RateLimited { retry_after },
        other => AccountError::Unavailable(other.to_string()),
    }
}

fn observed_app(listed: &AppWithVersions) -> ObservedApp {
    ObservedApp {
        id: listed.app.id.clone(),
        name: listed.app.name.clone(),
        bundle_id: listed.app.bundle_id.clone(),
        versions: listed
            .versions
            .iter()
            .map(|version| ObservedVersion {
                id: version.id.clone(),
                version_string: version.version_string.clone(),
                platform: version.platform.as_str().to_owned(),
                state: version.state.as_str().to_owned(),
                release_type: version
                    .release_type
                    .as_ref()
                    .map(|release| release.as_str().to_owned()),
            })
            .collect(),
    }
}

fn observed_build(build: &BuildWithDetails) -> ObservedBuild {
    let pre_release = build.pre_release_version.as_ref();
    ObservedBuild {
        id: build.id.clone(),
        app_id: build.app_id.clone(),
        version: build.version.clone(),
        short_version: pre_release.map(|pre| pre.version.clone()),
        platform: pre_release.map(|pre| pre.platform.as_str().to_owned()),
        processing_state: build.processing_state.as_str().to_owned(),
        external_build_state: build
            .external_build_state
            .as_ref()
            .map(|state| state.as_str().to_owned()),
        internal_build_state: build
            .internal_build_state
            .as_ref()
            .map(|state| state.as_str().to_owned()),
        beta_review_state: build
            .beta_review_state
            .as_ref()
            .map(|state| state.as_str().to_owned()),
        uploaded_date: build.uploaded_date,
    }
}

fn observed_phased_release(read: &PhasedRelease) -> ObservedPhasedRelease {
    ObservedPhasedRelease {
        state: read.state.as_str().to_owned(),
        current_day_number: read.current_day_number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_errors_map_to_store_neutral_ones() {
        let not_authorized = AscError::NotAuthorized {
            code: "NOT_AUTHORIZED".into(),
            detail: None,
        };
        assert_eq!(account_error(not_authorized), AccountError::NotAuthorized);
        let forbidden = AscError::Forbidden {
            code: "FORBIDDEN_ERROR".into(),
            detail: None,
        };
        assert_eq!(account_error(forbidden), AccountError::Forbidden);
        assert_eq!(
            account_error(AscError::AgreementsRequired { detail: None }),
            AccountError::ActionRequired(KeyStatusCode::AgreementsRequired)
        );
        assert_eq!(
            account_error(AscError::RateLimited {
                retry_after: Some(Duration::from_secs(90)),
                rate_limit: None,
            }),
            AccountError::RateLimited {
                retry_after: Some(Duration::from_secs(90))
            }
        );
        assert!(account_error(AscError::Timeout).is_transient());
        assert!(
            account_error(AscError::Server {
                status: 503,
                code: None
            })
            .is_transient()
        );
    }
}
