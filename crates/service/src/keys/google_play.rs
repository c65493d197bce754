//! Google Play keys: upload of a service-account JSON key with the package names it watches.
//! The same discipline as App Store Connect keys: every check before any write, the secret
//! first, the record second, and the secret removed again when the record cannot be written.

use shipwatch_shared::google_play::{PackageName, ServiceAccountKey};
use zeroize::Zeroizing;

use super::{KeyError, KeyService, MAX_KEY_NAME_CHARS};
use crate::model::{AccountRef, ApiKeyRecord, KeyRecordId, KeyStatus, SecretValue, Team};
use crate::ports::StoreError;

/// Most package names one key watches (each costs 3 requests per sweep).
pub const MAX_PACKAGE_NAMES: usize = 50;

/// What a user uploads for Google Play, before any check.
pub struct NewPlayKey {
    pub name: Option<String>,
    /// The service-account JSON file, as uploaded.
    pub service_account: Zeroizing<Vec<u8>>,
    /// Package names as given (each entry may hold several, comma-separated).
    pub package_names: Vec<String>,
}

impl std::fmt::Debug for NewPlayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPlayKey")
            .field("name", &self.name)
            .field("service_account", &"<redacted>")
            .field("package_names", &self.package_names)
            .finish()
    }
}

/// Splits, trims, checks and de-duplicates package names (first occurrence order kept).
pub fn parse_package_names(raw: &[String]) -> Result<Vec<PackageName>, KeyError> {
    let mut names: Vec<PackageName> = Vec::new();
    for entry in raw {
        for part in entry.split(',') {
            if part.trim().is_empty() {
                continue;
            }
            let name = PackageName::parse(part)
                .map_err(|e| KeyError::InvalidPackageName(e.to_string()))?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    if names.is_empty() {
        return Err(KeyError::InvalidPackageName(
            "package_names is required: one or more Android package names (like com.example.app), as shown under each app in Google Play Console".to_owned(),
        ));
    }
    if names.len() > MAX_PACKAGE_NAMES {
        return Err(KeyError::InvalidPackageName(format!(
            "at most {MAX_PACKAGE_NAMES} package names per key; upload the service account again with the rest"
        )));
    }
    Ok(names)
}

impl KeyService {
    /// Uploads a Google Play service-account key (see the module's rules).
    pub async fn upload_google_play(
        &self,
        team: &Team,
        new: NewPlayKey,
    ) -> Result<ApiKeyRecord, KeyError> {
        let key = ServiceAccountKey::from_json(&new.service_account)
            .map_err(|e| KeyError::InvalidServiceAccount(e.to_string()))?;
        let package_names = parse_package_names(&new.package_names)?;
        let name = match new.name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => {
                if !crate::names::is_printable(name, MAX_KEY_NAME_CHARS) {
                    return Err(KeyError::InvalidName);
                }
                name.to_owned()
            }
            _ => format!("Google Play {}", key.client_email()),
        };
        let exists = || KeyError::ServiceAccountExists {
            client_email: key.client_email().to_owned(),
        };
        let existing = self.stores.keys.list_keys(&team.id).await?;
        if existing
            .iter()
            .any(|k| k.account.identity() == key.client_email())
        {
            return Err(exists());
        }

        let now = self.clock.now();
        let record = ApiKeyRecord {
            id: KeyRecordId::generate(),
            team_id: team.id.clone(),
            name,
            account: AccountRef::GooglePlay {
                client_email: key.client_email().to_owned(),
                private_key_id: key.private_key_id().to_owned(),
                package_names: package_names
                    .iter()
                    .map(|p| p.as_str().to_owned())
                    .collect(),
            },
            public_key_fingerprint: key.fingerprint().to_owned(),
            status: KeyStatus::Validating,
            status_code: None,
            status_message: Some(MESSAGE_VALIDATING_PLAY.to_owned()),
            apps_count: None,
            validated_at: None,
            last_swept_at: None,
            created_at: now,
            updated_at: now,
            validation_attempts: 0,
            next_validation_at: None,
            // Push is App Store Connect webhooks only; Play keys are polled.
            push: None,
            revision: 1,
            asc_usage: None,
            revalidation_requests: Vec::new(),
        };
        // The whole file is the secret: it is what `StoreAccounts::credentials` parses again.
        let secret = SecretValue::new(key.to_json().as_str().to_owned());
        if let Err(err) = self
            .stores
            .secrets
            .put_secret(&record.secret_name(), &secret)
            .await
        {
            self.remove_secret_after_failure(&record).await;
            return Err(err.into());
        }
        if let Err(err) = self.stores.keys.insert_key(&record).await {
            self.remove_secret_after_failure(&record).await;
            return Err(match err {
                StoreError::Conflict(_) => exists(),
                other => other.into(),
            });
        }
        tracing::info!(key = %record.id, team = %team.id, client_email = key.client_email(),
            packages = package_names.len(), "Google Play key uploaded");
        self.trigger.key_needs_validation(&record.id).await;
        Ok(record)
    }
}

pub const MESSAGE_VALIDATING_PLAY: &str =
    "shipwatch is checking the service account with Google Play; this takes a few seconds";
pub const MESSAGE_NOT_AUTHORIZED_PLAY: &str = "Google refused the service account's key (invalid_grant): the key or the service account was deleted or disabled in Google Cloud (IAM & Admin > Service accounts). Create a new JSON key, upload it, and delete this one.";
pub const MESSAGE_INSUFFICIENT_PERMISSION: &str = "The service account may not read this app (403). In Google Play Console, open Users and permissions, invite the service account's email with at least \"View app information (read-only)\" for the app (or the account), wait a few minutes for it to take effect (it can take up to a day), then validate the key again.";
pub const MESSAGE_PACKAGE_NOT_FOUND: &str = "Google Play has no app with this package name that the service account can see (404). Check the package name in Google Play Console (under the app's name), or delete the key and upload it with the right package names.";
pub const MESSAGE_STORE_UNAVAILABLE: &str = "Google Play is not answering right now (rate limit, outage or timeout). shipwatch retries automatically; nothing to do on your side.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_split_checked_and_deduplicated() {
        let names = parse_package_names(&[
            "com.example.app, com.example.other".to_owned(),
            "com.example.app".to_owned(),
        ])
        .unwrap();
        let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["com.example.app", "com.example.other"]);
        assert!(matches!(
            parse_package_names(&[" , ".to_owned()]),
            Err(KeyError::InvalidPackageName(_))
        ));
        assert!(matches!(
            parse_package_names(&["com.example.app,1bad.name".to_owned()]),
            Err(KeyError::InvalidPackageName(m)) if m.contains("1bad.name")
        ));
        let many: Vec<String> = (0..=MAX_PACKAGE_NAMES)
            .map(|i| format!("com.example.a{i}"))
            .collect();
        assert!(matches!(
            parse_package_names(&many),
            Err(KeyError::InvalidPackageName(_))
        ));
    }
}
