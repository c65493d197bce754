//! Validation on write: ask the store about a key and turn the answer into its status.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shipwatch_shared::clock::Clock;

use super::{
    MESSAGE_AGREEMENTS_REQUIRED, MESSAGE_ASC_UNAVAILABLE, MESSAGE_INSUFFICIENT_ROLE,
    MESSAGE_NOT_AUTHORIZED, ValidationTrigger,
};
pub use crate::accounts::Verdict;
use crate::accounts::{StoreAccounts, verdict_for};
use crate::model::{ApiKeyRecord, KeyRecordId, KeyStatus, KeyStatusCode};
use crate::ports::{KEY_LIST_PAGE_SIZE, StoreError, Stores};

/// The status, code and message a key gets for a verdict that blocks it, or `None` for a verdict
/// that does not (valid, or the store could not answer). Validation and sweep both use it.
pub fn blocked_status(verdict: &Verdict) -> Option<(KeyStatus, KeyStatusCode, &'static str)> {
    match verdict {
        Verdict::Invalid(code) => Some((KeyStatus::Invalid, *code, message_for(*code))),
        Verdict::ActionRequired(code) => {
            Some((KeyStatus::ActionRequired, *code, message_for(*code)))
        }
        Verdict::Valid { .. } | Verdict::Unavailable { .. } => None,
    }
}

/// What the user reads for a status code.
pub fn message_for(code: KeyStatusCode) -> &'static str {
    match code {
        KeyStatusCode::NotAuthorized => MESSAGE_NOT_AUTHORIZED,
        KeyStatusCode::InsufficientRole => MESSAGE_INSUFFICIENT_ROLE,
        KeyStatusCode::AgreementsRequired => MESSAGE_AGREEMENTS_REQUIRED,
        KeyStatusCode::AscUnavailable => MESSAGE_ASC_UNAVAILABLE,
        KeyStatusCode::InsufficientPermission => {
            super::google_play::MESSAGE_INSUFFICIENT_PERMISSION
        }
        KeyStatusCode::PackageNotFound => super::google_play::MESSAGE_PACKAGE_NOT_FOUND,
        KeyStatusCode::StoreUnavailable => super::google_play::MESSAGE_STORE_UNAVAILABLE,
    }
}

/// What the user reads for a status code of a key of `platform` (Google Play words its refused
/// grant in Google's terms).
pub fn message_for_platform(platform: crate::model::Platform, code: KeyStatusCode) -> &'static str {
    match (platform, code) {
        (crate::model::Platform::GooglePlay, KeyStatusCode::NotAuthorized) => {
            super::google_play::MESSAGE_NOT_AUTHORIZED_PLAY
        }
        _ => message_for(code),
    }
}

/// Delay before the `attempt`-th retry (1-based) of a key App Store Connect could not check:
/// 1, 2, 4 … minutes, at most an hour, never sooner than Apple's Retry-After.
pub fn retry_delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exponential =
        Duration::from_secs(60u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)));
    exponential
        .min(Duration::from_secs(3600))
        .max(retry_after.unwrap_or_default())
}

/// Applies a verdict to a key record (pure).
pub fn apply_verdict(key: &ApiKeyRecord, verdict: &Verdict, now: DateTime<Utc>) -> ApiKeyRecord {
    let mut next = key.clone();
    next.updated_at = now;
    next.revision = key.revision + 1;
    match verdict {
        Verdict::Valid { apps_count } => {
            next.status = KeyStatus::Valid;
            next.status_code = None;
            next.status_message = None;
            next.apps_count = Some(*apps_count);
            next.validated_at = Some(now);
            next.validation_attempts = 0;
            next.next_validation_at = None;
        }
        Verdict::Invalid(_) | Verdict::ActionRequired(_) => {
            if let Some((status, code, _)) = blocked_status(verdict) {
                next.status = status;
                next.status_code = Some(code);
                next.status_message =
                    Some(message_for_platform(key.account.platform(), code).to_owned());
            }
            next.validated_at = Some(now);
            next.validation_attempts = 0;
            next.next_validation_at = None;
        }
        Verdict::Unavailable { retry_after, .. } => {
            next.status = KeyStatus::Validating;
            // Each store names its own outage (the contract keeps `asc_unavailable` for Apple).
            let code = match key.account.platform() {
                crate::model::Platform::AppStoreConnect => KeyStatusCode::AscUnavailable,
                crate::model::Platform::GooglePlay => KeyStatusCode::StoreUnavailable,
            };
            next.status_code = Some(code);
            next.status_message = Some(message_for(code).to_owned());
            next.validation_attempts = key.validation_attempts.saturating_add(1);
            let delay = retry_delay(next.validation_attempts, *retry_after);
            next.next_validation_at =
                Some(now + chrono::Duration::from_std(delay).unwrap_or_default());
        }
    }
    next
}

#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the key's private key is missing from the secret store")]
    SecretMissing,
    #[error("the stored private key cannot be read: {0}")]
    StoredKeyUnreadable(String),
}

/// Whether a validation wrote a new status or found nothing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidationOutcome {
    Updated(Box<ApiKeyRecord>),
    /// The key is gone, or it changed while App Store Connect was asked (a newer request wins).
    Skipped,
}

/// Asks the key's store whether the key works (through the account port).
#[derive(Clone)]
pub struct KeyValidator {
    stores: Stores,
    accounts: Arc<dyn StoreAccounts>,
    clock: Arc<dyn Clock>,
    /// Provisions and checks push webhooks after a validation that found the key valid.
    push: Option<crate::push::PushService>,
}

impl KeyValidator {
    pub fn new(stores: Stores, accounts: Arc<dyn StoreAccounts>, clock: Arc<dyn Clock>) -> Self {
        Self {
            stores,
            accounts,
            clock,
            push: None,
        }
    }

    /// After each validation that finds the key valid, provisions (or checks and repairs) its
    /// push webhooks; a failure there is logged and leaves the key valid (polling goes on).
    pub fn with_push(mut self, push: crate::push::PushService) -> Self {
        self.push = Some(push);
        self
    }

    pub async fn validate(&self, id: &KeyRecordId) -> Result<ValidationOutcome, ValidationError> {
        let Some(key) = self.stores.keys.get_key_by_id(id).await? else {
            return Ok(ValidationOutcome::Skipped);
        };
        let Some(secret) = self.stores.secrets.get_secret(&key.secret_name()).await? else {
            // Deleted meanwhile: deletion removes the secret before the record.
            if self.stores.keys.get_key_by_id(id).await?.is_none() {
                return Ok(ValidationOutcome::Skipped);
            }
            return Err(ValidationError::SecretMissing);
        };
        let credentials = self
            .accounts
            .credentials(&key.account, &secret)
            .map_err(|e| ValidationError::StoredKeyUnreadable(e.0))?;
        let session = self.accounts.session(&credentials);
        let verdict = verdict_for(session.validate().await.as_ref().copied());
        let next = apply_verdict(&key, &verdict, self.clock.now());
        match self.stores.keys.update_key(&next, key.revision).await {
            Ok(()) => {
                tracing::info!(key = %key.id, status = next.status.as_str(),
                    code = next.status_code.map(|c| c.as_str()), "key validated");
                if let (Some(push), KeyStatus::Valid) = (&self.push, next.status) {
                    match push.reconcile(&next.id).await {
                        Ok(Some(_)) => {
                            if let Some(fresh) = self.stores.keys.get_key_by_id(&next.id).await? {
                                return Ok(ValidationOutcome::Updated(Box::new(fresh)));
                            }
                        }
                        Ok(None) => {}
                        Err(err) => {
                            tracing::warn!(key = %key.id, error = %err, "push provisioning failed; polling goes on");
                        }
                    }
                }
                Ok(ValidationOutcome::Updated(Box::new(next)))
            }
            Err(StoreError::Conflict(_)) => {
                tracing::info!(key = %key.id, "key changed during validation; the newer request wins");
                Ok(ValidationOutcome::Skipped)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Keys waiting for validation whose time has come: never validated yet (a lost trigger) or
    /// left in `validating` by an App Store Connect outage. Returns how many were validated.
    pub async fn validate_due(&self) -> Result<usize, ValidationError> {
        let mut done = 0;
        let mut cursor = None;
        loop {
            let page = self
                .stores
                .keys
                .list_keys_page(cursor.as_deref(), KEY_LIST_PAGE_SIZE)
                .await?;
            done += self.validate_due_among(&page.items).await;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(done),
            }
        }
    }

    /// As [`validate_due`](Self::validate_due), among keys the caller has already listed (the
    /// sweep lists every key once and uses the list for both).
    pub async fn validate_due_among(&self, keys: &[ApiKeyRecord]) -> usize {
        let now = self.clock.now();
        let mut done = 0;
        for key in keys.iter().filter(|k| is_validation_due(k, now)) {
            match self.validate(&key.id).await {
                Ok(_) => done += 1,
                Err(err) => tracing::warn!(key = %key.id, error = %err, "re-validation failed"),
            }
        }
        done
    }
}

/// A key in `validating` is due when its retry time has passed, or when it has waited over a minute
/// for its first validation (the trigger was lost, e.g. a crash right after the upload).
pub fn is_validation_due(key: &ApiKeyRecord, now: DateTime<Utc>) -> bool {
    key.status == KeyStatus::Validating
        && match key.next_validation_at {
            Some(at) => at <= now,
            None => now - key.updated_at >= chrono::Duration::seconds(60),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_verdicts_carry_their_message() {
        assert_eq!(
            blocked_status(&Verdict::Invalid(KeyStatusCode::InsufficientRole)),
            Some((
                KeyStatus::Invalid,
                KeyStatusCode::InsufficientRole,
                MESSAGE_INSUFFICIENT_ROLE
            ))
        );
        assert_eq!(
            blocked_status(&Verdict::ActionRequired(KeyStatusCode::AgreementsRequired)),
            Some((
                KeyStatus::ActionRequired,
                KeyStatusCode::AgreementsRequired,
                MESSAGE_AGREEMENTS_REQUIRED
            ))
        );
        assert_eq!(blocked_status(&Verdict::Valid { apps_count: 1 }), None);
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        assert_eq!(retry_delay(1, None), Duration::from_secs(60));
        assert_eq!(retry_delay(2, None), Duration::from_secs(120));
        assert_eq!(retry_delay(30, None), Duration::from_secs(3600));
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(600))),
            Duration::from_secs(600)
        );
    }
}

/// Validates in a background task of this process (`shipwatch-local`, tests).
#[derive(Clone)]
pub struct InProcessValidation {
    validator: KeyValidator,
}

impl InProcessValidation {
    pub fn new(validator: KeyValidator) -> Self {
        Self { validator }
    }
}

#[async_trait]
impl ValidationTrigger for InProcessValidation {
    async fn key_needs_validation(&self, id: &KeyRecordId) {
        let validator = self.validator.clone();
        let id = id.clone();
        tokio::spawn(async move {
            if let Err(err) = validator.validate(&id).await {
                // The sweep's `validate_due` picks the key up again later.
                tracing::warn!(key = %id, error = %err, "validation failed; it will be retried");
            }
        });
    }
}
