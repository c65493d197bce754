//! Key lifecycle: upload (secret first, record second, nothing left behind on failure), re-validation
//! requests and deletion. Validation itself is in [`validation`].

mod google_play;
mod validation;

pub use google_play::*;

pub use validation::*;

use std::sync::Arc;

use async_trait::async_trait;
use shipwatch_shared::clock::Clock;
use shipwatch_shared::credentials::{IssuerId, KeyId, PrivateKey};
use zeroize::Zeroizing;

use crate::model::{AccountRef, ApiKeyRecord, KeyRecordId, KeyStatus, SecretValue, Team};
use crate::ports::{StoreError, Stores};

/// Longest key name accepted.
pub const MAX_KEY_NAME_CHARS: usize = 100;

/// Why a key operation was refused. The messages say what to do; they never hold key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    InvalidPrivateKey(String),
    #[error("{0}")]
    InvalidKeyId(String),
    #[error("{0}")]
    InvalidIssuerId(String),
    #[error(
        "the file is named for key {file} but key_id says {field}; upload the matching .p8 or fix key_id"
    )]
    KeyIdMismatch { file: String, field: String },
    #[error("name must be at most {MAX_KEY_NAME_CHARS} printable characters")]
    InvalidName,
    #[error("your team already has key {key_id}; delete it first to upload it again")]
    KeyExists { key_id: KeyId },
    #[error("no such key in your team")]
    NotFound,
    #[error(
        "this key was validated several times in the last minutes; try again in {retry_after_seconds} s (each validation spends App Store Connect requests of the key's hourly allowance)"
    )]
    TooManyValidations { retry_after_seconds: u64 },
    /// Google Play: the upload is not a usable service-account key.
    #[error("{0}")]
    InvalidServiceAccount(String),
    /// Google Play: a package name breaks Android's rule, or none was given.
    #[error("{0}")]
    InvalidPackageName(String),
    #[error(
        "your team already has the service account {client_email}; delete its key first to upload it again"
    )]
    ServiceAccountExists { client_email: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
    /// Deletes the key's push webhooks with the key.
    push: Option<crate::push::PushService>,
}

impl KeyService {
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, trigger: Arc<dyn ValidationTrigger>) -> Self {
        Self {
            stores,
            clock,
            trigger,
            push: None,
        }
    }

    /// Deletes each key's App Store Connect webhooks when the key is deleted.
    pub fn with_push(mut self, push: crate::push::PushService) -> Self {
        self.push = Some(push);
        self
    }

    /// Checks everything, then writes the secret, then the record. On any failure after the secret
    /// was written, the secret is deleted again, so nothing is left behind and a retry succeeds.
    pub async fn upload(&self, team: &Team, new: NewKey) -> Result<ApiKeyRecord, KeyError> {
        let checked = check_new_key(new)?;
        let existing = self.stores.keys.list_keys(&team.id).await?;
        if existing
            .iter()
            .any(|k| k.account.identity() == checked.key_id.as_str())
        {
            return Err(KeyError::KeyExists {
                key_id: checked.key_id,
            });
        }

        let now = self.clock.now();
        let record = ApiKeyRecord {
            id: KeyRecordId::generate(),
            team_id: team.id.clone(),
            name: checked.name,
            account: AccountRef::AppStoreConnect {
                key_id: checked.key_id.clone(),
                issuer_id: checked.issuer_id,
            },
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
            revalidation_requests: Vec::new(),
            push: None,
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
                StoreError::Conflict(_) => KeyError::KeyExists {
                    key_id: checked.key_id.clone(),
                },
                other => other.into(),
            });
        }
        tracing::info!(key = %record.id, team = %team.id, key_id = record.account.identity(), "key uploaded");
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

    pub async fn get(&self, team: &Team, id: &KeyRecordId) -> Result<ApiKeyRecord, KeyError> {
        self.stores
            .keys
            .get_key(&team.id, id)
            .await?
            .ok_or(KeyError::NotFound)
    }

    pub async fn list(&self, team: &Team) -> Result<Vec<ApiKeyRecord>, KeyError> {
        Ok(self.stores.keys.list_keys(&team.id).await?)
    }

    /// Puts the key back to `validating` (attempt 0), which triggers a validation.
    pub async fn request_validation(
        &self,
        team: &Team,
        id: &KeyRecordId,
    ) -> Result<ApiKeyRecord, KeyError> {
        // A validation or sweep may write the key meanwhile: its write wins, and the request is
        // applied again to the fresh record.
        const TRIES: usize = 3;
        for try_number in 1..=TRIES {
            let current = self.get(team, id).await?;
            let now = self.clock.now();
            let mut next = current.clone();
            crate::throttle::admit(
                &mut next.revalidation_requests,
                crate::throttle::REVALIDATIONS_PER_KEY,
                now,
            )
            .map_err(|wait| KeyError::TooManyValidations {
                retry_after_seconds: crate::throttle::retry_after_seconds(wait),
            })?;
            next.status = KeyStatus::Validating;
            next.status_code = None;
            next.status_message = Some(MESSAGE_VALIDATING.to_owned());
            next.validation_attempts = 0;
            next.next_validation_at = None;
            next.updated_at = now;
            next.revision = current.revision + 1;
            match self.stores.keys.update_key(&next, current.revision).await {
                Ok(()) => {
                    self.trigger.key_needs_validation(&next.id).await;
                    return Ok(next);
                }
                Err(StoreError::Conflict(_)) if try_number < TRIES => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(KeyError::Store(StoreError::Conflict(
            "the key kept changing".into(),
        )))
    }

    /// Deletes the secret first, then the record: if the second step fails, a retry finishes the job
    /// and no secret is ever left without its record.
    pub async fn delete(&self, team: &Team, id: &KeyRecordId) -> Result<(), KeyError> {
        let record = self.get(team, id).await?;
        if let Some(push) = &self.push {
            // Needs the key's private key, so before the secret goes. A webhook Apple would not
            // delete now is logged; its URL names a key that no longer exists, so the receiver
            // refuses what it sends.
            if let Err(err) = push.remove(&record).await {
                tracing::warn!(key = %record.id, error = %err, "could not delete the key's App Store Connect webhooks");
            }
        }
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

/// Key ID named by an `AuthKey_<KEYID>.p8` file name, as App Store Connect names downloads.
pub fn key_id_from_file_name(file_name: &str) -> Option<&str> {
    let base = file_name.rsplit(['/', '\\']).next()?;
    base.strip_prefix("AuthKey_")?.strip_suffix(".p8")
}

fn check_new_key(new: NewKey) -> Result<CheckedKey, KeyError> {
    let from_file = new.file_name.as_deref().and_then(key_id_from_file_name);
    let key_id_raw = match (new.key_id.as_deref().map(str::trim), from_file) {
        (Some(field), Some(file)) if !field.is_empty() => {
            if field != file {
                return Err(KeyError::KeyIdMismatch {
                    file: file.to_owned(),
                    field: field.to_owned(),
                });
            }
            field.to_owned()
        }
        (Some(field), _) if !field.is_empty() => field.to_owned(),
        (_, Some(file)) => file.to_owned(),
        _ => {
            return Err(KeyError::InvalidKeyId(
                "key_id is required (10 characters of A-Z and 0-9, the Key ID column in App Store Connect > Users and Access > Integrations), unless the file is named AuthKey_<KEYID>.p8".to_owned(),
            ));
        }
    };
    let key_id = KeyId::parse(&key_id_raw).map_err(|e| KeyError::InvalidKeyId(e.to_string()))?;
    let issuer_id = IssuerId::parse(new.issuer_id.as_deref().unwrap_or_default())
        .map_err(|e| KeyError::InvalidIssuerId(e.to_string()))?;
    let private_key = PrivateKey::from_pem(&new.private_key)
        .map_err(|e| KeyError::InvalidPrivateKey(e.to_string()))?;
    let name = match new.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => {
            if !crate::names::is_printable(name, MAX_KEY_NAME_CHARS) {
                return Err(KeyError::InvalidName);
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

#[cfg(test)]
mod tests {
    use super::*;

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
