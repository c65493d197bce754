//! Bench keys (deterministic, so the fake can compute each key's account from its Key ID) and
//! seeding a store with teams, keys and, optionally, a webhook per team.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use p256::pkcs8::EncodePrivateKey as _;
use sha2::{Digest as _, Sha256};
use shipwatch_adapters::wiring::{Services, stores_for};
use shipwatch_service::auth::hash_token;
use shipwatch_service::config::Settings;
use shipwatch_service::destinations::{DestinationService, NewDestination, NewWorkflow};
use shipwatch_service::model::{ApiKeyRecord, KeyRecordId, KeyStatus, SecretValue, Team, TeamId};
use shipwatch_service::ports::{Deliverer, Stores};
use shipwatch_shared::asc::AscConfig;
use shipwatch_shared::clock::{Clock, SystemClock};
use shipwatch_shared::credentials::{ApiCredentials, IssuerId, KeyId, PrivateKey};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::BenchError;

/// Key ID of bench key `number`: `B` and 9 digits (Apple's format: 10 of `A-Z0-9`).
pub fn bench_key_id(number: u64) -> String {
    format!("B{number:09}")
}

/// The bench key number in a Key ID made by [`bench_key_id`].
pub fn key_number_of(key_id: &str) -> Option<u64> {
    let digits = key_id.strip_prefix('B')?;
    if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A P-256 private key derived from the key number (SHA-256 of a label; a benchmark fixture,
/// never a real key).
pub fn bench_private_key(number: u64) -> Result<PrivateKey, BenchError> {
    // A hash is a valid scalar unless it is zero or above the curve order (odds about 2^-32).
    for attempt in 0u32..16 {
        let seed = Sha256::digest(format!("shipwatch-bench-key/{number}/{attempt}"));
        if let Ok(secret) = p256::SecretKey::from_slice(&seed) {
            let der = secret
                .to_pkcs8_der()
                .map_err(|err| BenchError::setup("encoding a bench key", err))?;
            return PrivateKey::from_pkcs8_der(der.as_bytes())
                .map_err(|err| BenchError::setup("reading a bench key", err));
        }
    }
    Err(BenchError::Setup(format!(
        "no bench key for number {number}"
    )))
}

/// Issuer ID of bench key `number` (one account per key).
pub fn bench_issuer_id(number: u64) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        number & 0xffff_ffff,
        number
    )
}

pub fn bench_credentials(number: u64) -> Result<ApiCredentials, BenchError> {
    let key_id = KeyId::parse(&bench_key_id(number))
        .map_err(|err| BenchError::setup("bench Key ID", err))?;
    let issuer_id = IssuerId::parse(&bench_issuer_id(number))
        .map_err(|err| BenchError::setup("bench Issuer ID", err))?;
    Ok(ApiCredentials::new(
        key_id,
        issuer_id,
        bench_private_key(number)?,
    ))
}

/// What [`seed`] writes besides the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOptions {
    pub keys: u64,
    /// One webhook destination (and a workflow sending it everything) per team, posting here.
    pub webhook_url: Option<String>,
    /// Stores written at the same time while seeding.
    pub parallelism: usize,
}

/// Writes one team per key, each key `valid` with its private key in the secret store (as a
/// validated upload leaves it), and the optional webhook. Returns the key record ids.
pub async fn seed(
    stores: &Stores,
    deliverer: Arc<dyn Deliverer>,
    clock: Arc<dyn Clock>,
    options: &SeedOptions,
) -> Result<Vec<KeyRecordId>, BenchError> {
    let destinations = Arc::new(DestinationService::new(
        stores.clone(),
        deliverer,
        clock.clone(),
        true,
    ));
    let gate = Arc::new(Semaphore::new(options.parallelism.max(1)));
    let mut tasks = JoinSet::new();
    for number in 0..options.keys {
        let stores = stores.clone();
        let destinations = destinations.clone();
        let gate = gate.clone();
        let webhook_url = options.webhook_url.clone();
        let now = clock.now();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            seed_one(&stores, &destinations, number, webhook_url.as_deref(), now).await
        });
    }
    let mut ids = Vec::with_capacity(options.keys as usize);
    while let Some(joined) = tasks.join_next().await {
        let id = joined.map_err(|err| BenchError::setup("seeding task", err))??;
        ids.push(id);
    }
    Ok(ids)
}

async fn seed_one(
    stores: &Stores,
    destinations: &DestinationService,
    number: u64,
    webhook_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<KeyRecordId, BenchError> {
    let store_failed = |step: &'static str| move |err| BenchError::setup(step, err);
    let team = Team {
        id: TeamId(format!("bench-team-{number}")),
        name: format!("Bench team {number}"),
        token_hash: hash_token(&format!("bench-team-token-{number}")),
        created_at: now,
    };
    stores
        .teams
        .insert_team(&team)
        .await
        .map_err(store_failed("inserting a team"))?;
    let credentials = bench_credentials(number)?;
    let key = ApiKeyRecord {
        id: KeyRecordId(format!("bench-key-{number}")),
        team_id: team.id.clone(),
        name: format!("Bench key {number}"),
        account: shipwatch_service::model::AccountRef::AppStoreConnect {
            key_id: credentials.key_id.clone(),
            issuer_id: credentials.issuer_id.clone(),
        },
        public_key_fingerprint: credentials.private_key.fingerprint().to_owned(),
        status: KeyStatus::Valid,
        status_code: None,
        status_message: None,
        apps_count: None,
        validated_at: Some(now),
        last_swept_at: None,
        created_at: now,
        updated_at: now,
        validation_attempts: 1,
        next_validation_at: None,
        revision: 1,
        asc_usage: None,
        revalidation_requests: Vec::new(),
        push: None,
    };
    let pem = credentials.private_key.to_pem();
    stores
        .secrets
        .put_secret(
            &key.secret_name(),
            &SecretValue::new(pem.as_str().to_owned()),
        )
        .await
        .map_err(store_failed("storing a private key"))?;
    stores
        .keys
        .insert_key(&key)
        .await
        .map_err(store_failed("inserting a key"))?;
    if let Some(url) = webhook_url {
        let created = destinations
            .create(
                &team,
                NewDestination {
                    kind: "webhook".into(),
                    name: "Bench receiver".into(),
                    url: url.to_owned(),
                },
            )
            .await
            .map_err(|err| BenchError::setup("creating a destination", err))?;
        destinations
            .create_workflow(
                &team,
                NewWorkflow {
                    name: "Everything".into(),
                    destination_id: created.destination.id.0.clone(),
                    app_ids: vec!["*".into()],
                    event_types: vec!["*".into()],
                },
            )
            .await
            .map_err(|err| BenchError::setup("creating a workflow", err))?;
    }
    Ok(key.id)
}

/// The production wiring on a fresh embedded store, reading App Store Connect at `asc_url`.
/// `settings` adds environment values (e.g. `SWEEP_CONCURRENCY`); `adjust` may swap a store of
/// the bundle before wiring. The store's folder lives as long as the returned value.
pub struct EmbeddedServices {
    pub services: Services,
    _data_dir: tempfile::TempDir,
}

pub async fn embedded_services(
    asc_url: &str,
    settings: &[(&str, String)],
    adjust: impl FnOnce(&mut Stores),
) -> Result<EmbeddedServices, BenchError> {
    let data_dir = tempfile::Builder::new()
        .prefix("shipwatch-bench-")
        .tempdir()
        .map_err(BenchError::io("creating a data folder"))?;
    let mut environment: HashMap<&str, String> = settings.iter().cloned().collect();
    environment.insert("SHIPWATCH_STORE", "embedded".to_owned());
    environment.insert("SHIPWATCH_DATA_DIR", data_dir.path().display().to_string());
    let settings = Settings::from_lookup(|name| environment.get(name).cloned())
        .map_err(|err| BenchError::setup("settings", err))?;
    let mut stores = stores_for(&settings)
        .await
        .map_err(|err| BenchError::setup("opening the embedded store", err))?;
    adjust(&mut stores);
    let asc = AscConfig::new(asc_url).map_err(|err| BenchError::setup("ASC url", err))?;
    let services = Services::assemble(settings, asc, stores, Arc::new(SystemClock))
        .map_err(|err| BenchError::setup("wiring", err))?;
    Ok(EmbeddedServices {
        services,
        _data_dir: data_dir,
    })
}

/// The production wiring over `stores` (e.g. DynamoDB on moto), reading App Store Connect at
/// `asc_url`, with the default settings otherwise.
pub fn services_on(asc_url: &str, stores: Stores) -> Result<Services, BenchError> {
    let settings =
        Settings::from_lookup(|_| None).map_err(|err| BenchError::setup("settings", err))?;
    let asc = AscConfig::new(asc_url).map_err(|err| BenchError::setup("ASC url", err))?;
    Services::assemble(settings, asc, stores, Arc::new(SystemClock))
        .map_err(|err| BenchError::setup("wiring", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_round_trip_and_are_apple_shaped() {
        assert_eq!(bench_key_id(42), "B000000042");
        assert!(KeyId::parse(&bench_key_id(999_999_999)).is_ok());
        assert_eq!(key_number_of("B000000042"), Some(42));
        assert_eq!(key_number_of("A000000042"), None);
        assert_eq!(key_number_of("B00000004"), None);
        assert!(IssuerId::parse(&bench_issuer_id(7)).is_ok());
    }

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let a = bench_private_key(1).unwrap();
        assert_eq!(a, bench_private_key(1).unwrap());
        assert_ne!(a, bench_private_key(2).unwrap());
    }
}
