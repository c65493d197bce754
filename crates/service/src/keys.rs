//! Key lifecycle: upload (secret first, record second, nothing left behind on failure), validation on
//! write, re-validation, deletion.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shipwatch_shared::asc::{AscClient, AscError};
use shipwatch_shared::clock::Clock;
use shipwatch_shared::credentials::{ApiCredentials, IssuerId, KeyId, PrivateKey};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::model::{ApiKeyRecord, KeyRecordId, KeyStatus, KeyStatusCode, SecretValue, Team};
use crate::ports::{StoreError, Stores};

/// Longest key name accepted.
pub const MAX_KEY_NAME_CHARS: usize = 100;

/// What a user uploads, before any check.
pub struct NewKey {
    pub name: Option<String>,
    pub key_id: Option<String>,
    pub issuer_id: Option<String>,
    pub private_key: Zeroizing<Vec<u8>>,
    /// The uploaded file's name (`AuthKey_<KEYID>.p8`), when it came as a file.
    pub file_name: Option<String>,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .field("issuer_id", &self.issuer_id)
            .field("private_key", &"<redacted>")
            .field("file_name", &self.file_name)
            .finish()
    }
}

/// Asks for a key to be validated soon. Locally an in-process task; on AWS the table's stream already
/// does it, so the trigger does nothing there.
#[async_trait]
pub trait ValidationTrigger: Send + Sync {
    async fn key_needs_validation(&self, id: &KeyRecordId);
}

/// For deployments where the DynamoDB stream triggers the validator.
#[derive(Debug, Default)]
pub struct StreamTriggersValidation;

#[async_trait]
impl ValidationTrigger for StreamTriggersValidation {
    async fn key_needs_validation(&self, _id: &KeyRecordId) {}
}

/// Uploads, re-validation requests and deletion of keys.
#[derive(Clone)]
pub struct KeyService {
    stores: Stores,
    clock: Arc<dyn Clock>,
    trigger: Arc<dyn ValidationTrigger>,
}

impl KeyService {
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, trigger: Arc<dyn ValidationTrigger>) -> Self {
        Self {
            stores,
            clock,
            trigger,
        }
    }

    /// Checks everything, then writes the secret, then the record. On any failure after the secret
    /// was written, the secret is deleted again, so nothing is left behind and a retry succeeds.
    pub async fn upload(&self, team: &Team, new: NewKey) -> Result<ApiKeyRecord, ApiError> {
        let checked = check_new_key(new)?;
        let existing = self.stores.keys.list_keys(&team.id).await?;
        if existing.iter().any(|k| k.key_id == checked.key_id) {
            return Err(key_exists(&checked.key_id));
        }

        let now = self.clock.now();
        let record = ApiKeyRecord {
            id: KeyRecordId::generate(),
            team_id: team.id.clone(),
            name: checked.name,
            key_id: checked.key_id,
            issuer_id: checked.issuer_id,
            public_key_fingerprint: checked.private_key.fingerprint().to_owned(),
            status: KeyStatus::Validating,
            status_code: None,
            status_message: Some(MESSAGE_VALIDATING.to_owned()),
            apps_count: None,
            validated_at: None,
            last_swept_at: None,
            created_at: now,
            updated_at: now,
            validation_attempts: 0,
            next_validation_at: None,
            revision: 1,
            asc_usage: None,
        };
        let secret_name = record.secret_name();
        let pem = checked.private_key.to_pem();
        let secret = SecretValue::new(pem.as_str().to_owned());
        if let Err(err) = self.stores.secrets.put_secret(&secret_name, &secret).await {
            // A failed put may still have created the secret: remove whatever is there.
            self.remove_secret_after_failure(&record).await;
            return Err(err.into());
        }
        if let Err(err) = self.stores.keys.insert_key(&record).await {
            self.remove_secret_after_failure(&record).await;
            return Err(match err {
                StoreError::Conflict(_) => key_exists(&record.key_id),
                other => other.into(),
            });
        }
        tracing::info!(key = %record.id, team = %team.id, key_id = %record.key_id, "key uploaded");
        self.trigger.key_needs_validation(&record.id).await;
        Ok(record)
    }

    async fn remove_secret_after_failure(&self, record: &ApiKeyRecord) {
        if let Err(err) = self
            .stores
            .secrets
            .delete_secret(&record.secret_name())
            .await
        {
            // Logged with the secret's name only; an operator can delete it by hand.
            tracing::error!(secret = %record.secret_name(), error = %err,
                "could not remove the secret of a failed key upload");
        }
    }

    pub async fn get(&self, team: &Team, id: &KeyRecordId) -> Result<ApiKeyRecord, ApiError> {
        self.stores
            .keys
            .get_key(&team.id, id)
            .await?
            .ok_or_else(|| ApiError::not_found("key"))
    }

    pub async fn list(&self, team: &Team) -> Result<Vec<ApiKeyRecord>, ApiError> {
        Ok(self.stores.keys.list_keys(&team.id).await?)
    }

    /// Puts the key back to `validating` (attempt 0), which triggers a validation.
    pub async fn request_validation(
        &self,
        team: &Team,
        id: &KeyRecordId,
    ) -> Result<ApiKeyRecord, ApiError> {
        let current = self.get(team, id).await?;
        let mut next = current.clone();
        next.status = KeyStatus::Validating;
        next.status_code = None;
        next.status_message = Some(MESSAGE_VALIDATING.to_owned());
        next.validation_attempts = 0;
        next.next_validation_at = None;
        next.updated_at = self.clock.now();
        next.revision = current.revision + 1;
        self.stores.keys.update_key(&next, current.revision).await?;
        self.trigger.key_needs_validation(&next.id).await;
        Ok(next)
    }

    /// Deletes the secret first, then the record: if the second step fails, a retry finishes the job
    /// and no secret is ever left without its record.
    pub async fn delete(&self, team: &Team, id: &KeyRecordId) -> Result<(), ApiError> {
        let record = self.get(team, id).await?;
        self.stores
            .secrets
            .delete_secret(&record.secret_name())
            .await?;
        self.stores.keys.delete_key(&team.id, id).await?;
        tracing::info!(key = %record.id, team = %team.id, "key deleted");
        Ok(())
    }
}

struct CheckedKey {
    name: String,
    key_id: KeyId,
    issuer_id: IssuerId,
    private_key: PrivateKey,
}

fn key_exists(key_id: &KeyId) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "key_exists",
        format!("your team already has key {key_id}; delete it first to upload it again"),
    )
}

/// Key ID named by an `AuthKey_<KEYID>.p8` file name, as App Store Connect names downloads.
pub fn key_id_from_file_name(file_name: &str) -> Option<&str> {
    let base = file_name.rsplit(['/', '\\']).next()?;
    base.strip_prefix("AuthKey_")?.strip_suffix(".p8")
}

fn check_new_key(new: NewKey) -> Result<CheckedKey, ApiError> {
    let from_file = new.file_name.as_deref().and_then(key_id_from_file_name);
    let key_id_raw = match (new.key_id.as_deref().map(str::trim), from_file) {
        (Some(field), Some(file)) if !field.is_empty() => {
            if field != file {
                return Err(ApiError::bad_request(
                    "key_id_mismatch",
                    format!(
                        "the file is named for key {file} but key_id says {field}; upload the matching .p8 or fix key_id"
                    ),
                ));
            }
            field.to_owned()
        }
        (Some(field), _) if !field.is_empty() => field.to_owned(),
        (_, Some(file)) => file.to_owned(),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_key_id",
                "key_id is required (10 characters of A-Z and 0-9, the Key ID column in App Store Connect > Users and Access > Integrations), unless the file is named AuthKey_<KEYID>.p8",
            ));
        }
    };
    let key_id = KeyId::parse(&key_id_raw)
        .map_err(|e| ApiError::bad_request("invalid_key_id", e.to_string()))?;
    let issuer_id = IssuerId::parse(new.issuer_id.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::bad_request("invalid_issuer_id", e.to_string()))?;
    let private_key = PrivateKey::from_pem(&new.private_key)
        .map_err(|e| ApiError::bad_request("invalid_private_key", e.to_string()))?;
    let name = match new.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => {
            if name.chars().count() > MAX_KEY_NAME_CHARS || name.chars().any(char::is_control) {
                return Err(ApiError::invalid_request(format!(
                    "name must be at most {MAX_KEY_NAME_CHARS} printable characters"
                )));
            }
            name.to_owned()
        }
        _ => format!("Key {key_id}"),
    };
    Ok(CheckedKey {
        name,
        key_id,
        issuer_id,
        private_key,
    })
}

pub const MESSAGE_VALIDATING: &str =
    "shipwatch is checking the key with App Store Connect; this takes a few seconds";
pub const MESSAGE_NOT_AUTHORIZED: &str = "App Store Connect rejected the key (401). Check that the Key ID and Issuer ID match the .p8 file and that the key has not been revoked (Users and Access > Integrations > App Store Connect API), then upload it again or validate again.";
pub const MESSAGE_INSUFFICIENT_ROLE: &str = "This key cannot read builds. Create a team key with the Developer, App Manager or Admin role (Finance and Sales keys cannot read builds or TestFlight), upload it, and delete this one.";
pub const MESSAGE_AGREEMENTS_REQUIRED: &str = "App Store Connect requires the Account Holder to accept new or updated agreements (Business > Agreements). Accept them, then validate the key again.";
pub const MESSAGE_ASC_UNAVAILABLE: &str = "App Store Connect is not answering right now (rate limit, outage or timeout). shipwatch retries automatically; nothing to do on your side.";

/// The result of asking App Store Connect about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid {
        apps_count: u32,
    },
    Invalid(KeyStatusCode),
    AgreementsRequired,
    /// Apple could not answer; try again after `retry_after` at the earliest.
    Unavailable {
        retry_after: Option<Duration>,
    },
}

/// Maps App Store Connect's answers to a verdict (pure; the rules of contract section 2).
pub fn verdict(apps: Result<u32, AscError>, builds: Option<Result<(), AscError>>) -> Verdict {
    let apps_count = match apps {
        Ok(count) => count,
        Err(err) => return verdict_for_error(&err),
    };
    match builds {
        Some(Err(err)) => match verdict_for_error(&err) {
            // Reading apps worked but builds is forbidden: the role is too low.
            Verdict::Invalid(KeyStatusCode::NotAuthorized) => verdict_for_error(&err),
            other => other,
        },
        _ => Verdict::Valid { apps_count },
    }
}

fn verdict_for_error(err: &AscError) -> Verdict {
    match err {
        AscError::NotAuthorized { .. } => Verdict::Invalid(KeyStatusCode::NotAuthorized),
        AscError::AgreementsRequired { .. } => Verdict::AgreementsRequired,
        AscError::Forbidden { .. } => Verdict::Invalid(KeyStatusCode::InsufficientRole),
        AscError::RateLimited { retry_after, .. } => Verdict::Unavailable {
            retry_after: *retry_after,
        },
        _ => Verdict::Unavailable { retry_after: None },
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
        Verdict::Invalid(code) => {
            next.status = KeyStatus::Invalid;
            next.status_code = Some(*code);
            next.status_message = Some(
                match code {
                    KeyStatusCode::InsufficientRole => MESSAGE_INSUFFICIENT_ROLE,
                    _ => MESSAGE_NOT_AUTHORIZED,
                }
                .to_owned(),
            );
            next.validated_at = Some(now);
            next.validation_attempts = 0;
            next.next_validation_at = None;
        }
        Verdict::AgreementsRequired => {
            next.status = KeyStatus::ActionRequired;
            next.status_code = Some(KeyStatusCode::AgreementsRequired);
            next.status_message = Some(MESSAGE_AGREEMENTS_REQUIRED.to_owned());
            next.validated_at = Some(now);
            next.validation_attempts = 0;
            next.next_validation_at = None;
        }
        Verdict::Unavailable { retry_after } => {
            next.status = KeyStatus::Validating;
            next.status_code = Some(KeyStatusCode::AscUnavailable);
            next.status_message = Some(MESSAGE_ASC_UNAVAILABLE.to_owned());
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

/// Signs a token with the key and asks App Store Connect for apps and builds.
#[derive(Clone)]
pub struct KeyValidator {
    stores: Stores,
    asc: AscClient,
    clock: Arc<dyn Clock>,
}

impl KeyValidator {
    pub fn new(stores: Stores, asc: AscClient, clock: Arc<dyn Clock>) -> Self {
        Self { stores, asc, clock }
    }

    pub async fn validate(&self, id: &KeyRecordId) -> Result<ValidationOutcome, ValidationError> {
        let Some(key) = self.stores.keys.get_key_by_id(id).await? else {
            return Ok(ValidationOutcome::Skipped);
        };
        let Some(pem) = self.stores.secrets.get_secret(&key.secret_name()).await? else {
            // Deleted meanwhile: deletion removes the secret before the record.
            if self.stores.keys.get_key_by_id(id).await?.is_none() {
                return Ok(ValidationOutcome::Skipped);
            }
            return Err(ValidationError::SecretMissing);
        };
        let private_key = PrivateKey::from_pem(pem.expose().as_bytes())
            .map_err(|e| ValidationError::StoredKeyUnreadable(e.to_string()))?;
        let session = self.asc.session(Arc::new(ApiCredentials {
            key_id: key.key_id.clone(),
            issuer_id: key.issuer_id.clone(),
            private_key,
        }));
        let apps = session.count_apps().await;
        let builds = match &apps {
            Ok(_) => Some(session.probe_builds().await),
            Err(_) => None,
        };
        let verdict = verdict(apps, builds);
        let next = apply_verdict(&key, &verdict, self.clock.now());
        match self.stores.keys.update_key(&next, key.revision).await {
            Ok(()) => {
                tracing::info!(key = %key.id, status = next.status.as_str(),
                    code = next.status_code.map(|c| c.as_str()), "key validated");
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
        let keys = self.stores.keys.list_all_keys().await?;
        Ok(self.validate_due_among(&keys).await)
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

    fn http_err(kind: &str) -> AscError {
        match kind {
            "401" => AscError::NotAuthorized {
                code: "NOT_AUTHORIZED".into(),
                detail: None,
            },
            "403" => AscError::Forbidden {
                code: "FORBIDDEN_ERROR".into(),
                detail: None,
            },
            "agreements" => AscError::AgreementsRequired { detail: None },
            "429" => AscError::RateLimited {
                retry_after: Some(Duration::from_secs(90)),
                rate_limit: None,
            },
            _ => AscError::Timeout,
        }
    }

    #[test]
    fn verdicts_follow_the_contract() {
        assert_eq!(
            verdict(Ok(3), Some(Ok(()))),
            Verdict::Valid { apps_count: 3 }
        );
        assert_eq!(
            verdict(Err(http_err("401")), None),
            Verdict::Invalid(KeyStatusCode::NotAuthorized)
        );
        assert_eq!(
            verdict(Ok(3), Some(Err(http_err("403")))),
            Verdict::Invalid(KeyStatusCode::InsufficientRole)
        );
        assert_eq!(
            verdict(Err(http_err("agreements")), None),
            Verdict::AgreementsRequired
        );
        assert_eq!(
            verdict(Err(http_err("429")), None),
            Verdict::Unavailable {
                retry_after: Some(Duration::from_secs(90))
            }
        );
        assert_eq!(
            verdict(Ok(1), Some(Err(http_err("timeout")))),
            Verdict::Unavailable { retry_after: None }
        );
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

    #[test]
    fn file_names_name_the_key() {
        assert_eq!(
            key_id_from_file_name("AuthKey_ABCDE12345.p8"),
            Some("ABCDE12345")
        );
        assert_eq!(
            key_id_from_file_name("C:\\Downloads\\AuthKey_ABCDE12345.p8"),
            Some("ABCDE12345")
        );
        assert_eq!(key_id_from_file_name("key.p8"), None);
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
