//! Fault injection at the store boundary: wraps real adapters and fails chosen calls on demand, to
//! prove that a failure half-way loses nothing and leaves no orphan secret.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use shipwatch_service::model::{
    ApiKeyRecord, Destination, DestinationId, KeyRecordId, Page, SecretName, SecretValue, TeamId,
};
use shipwatch_service::ports::{
    DestinationStore, KeyStore, SecretStore, StoreError, StoreResult, Stores,
};

/// Switches that make the wrapped stores fail.
#[derive(Default)]
pub struct Faults {
    pub secret_put: AtomicBool,
    pub secret_delete: AtomicBool,
    pub key_insert: AtomicBool,
    pub key_delete: AtomicBool,
    pub destination_delete: AtomicBool,
}

impl Faults {
    pub fn set(flag: &AtomicBool, on: bool) {
        flag.store(on, Ordering::SeqCst);
    }
}

fn fail_if(flag: &AtomicBool, what: &str) -> StoreResult<()> {
    if flag.load(Ordering::SeqCst) {
        Err(StoreError::Unavailable(format!("injected fault: {what}")))
    } else {
        Ok(())
    }
}

struct FaultySecrets {
    inner: Arc<dyn SecretStore>,
    faults: Arc<Faults>,
}

#[async_trait]
impl SecretStore for FaultySecrets {
    async fn put_secret(&self, name: &SecretName, value: &SecretValue) -> StoreResult<()> {
        fail_if(&self.faults.secret_put, "put_secret")?;
        self.inner.put_secret(name, value).await
    }
    async fn get_secret(&self, name: &SecretName) -> StoreResult<Option<SecretValue>> {
        self.inner.get_secret(name).await
    }
    async fn delete_secret(&self, name: &SecretName) -> StoreResult<()> {
        fail_if(&self.faults.secret_delete, "delete_secret")?;
        self.inner.delete_secret(name).await
    }
}

struct FaultyKeys {
    inner: Arc<dyn KeyStore>,
    faults: Arc<Faults>,
}

#[async_trait]
impl KeyStore for FaultyKeys {
    async fn insert_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        fail_if(&self.faults.key_insert, "insert_key")?;
        self.inner.insert_key(key).await
    }
    async fn get_key(&self, team: &TeamId, id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.get_key(team, id).await
    }
    async fn get_key_by_id(&self, id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.get_key_by_id(id).await
    }
    async fn list_keys(&self, team: &TeamId) -> StoreResult<Vec<ApiKeyRecord>> {
        self.inner.list_keys(team).await
    }
    async fn list_keys_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ApiKeyRecord>> {
        self.inner.list_keys_page(cursor, limit).await
    }
    async fn update_key(&self, key: &ApiKeyRecord, expected_revision: u64) -> StoreResult<()> {
        self.inner.update_key(key, expected_revision).await
    }
    async fn update_key_announcing(
        &self,
        key: &ApiKeyRecord,
        expected_revision: u64,
        events: &[shipwatch_service::model::EventRecord],
        deliveries: &[shipwatch_service::model::DeliveryRecord],
    ) -> StoreResult<()> {
        self.inner
            .update_key_announcing(key, expected_revision, events, deliveries)
            .await
    }
    async fn delete_key(&self, team: &TeamId, id: &KeyRecordId) -> StoreResult<bool> {
        fail_if(&self.faults.key_delete, "delete_key")?;
        self.inner.delete_key(team, id).await
    }
}

struct FaultyDestinations {
    inner: Arc<dyn DestinationStore>,
    faults: Arc<Faults>,
}

#[async_trait]
impl DestinationStore for FaultyDestinations {
    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()> {
        self.inner.insert_destination(destination).await
    }
    async fn get_destination(
        &self,
        team: &TeamId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>> {
        self.inner.get_destination(team, id).await
    }
    async fn list_destinations(&self, team: &TeamId) -> StoreResult<Vec<Destination>> {
        self.inner.list_destinations(team).await
    }
    async fn delete_destination(&self, team: &TeamId, id: &DestinationId) -> StoreResult<bool> {
        fail_if(&self.faults.destination_delete, "delete_destination")?;
        self.inner.delete_destination(team, id).await
    }
    async fn record_destination_outcome(
        &self,
        team: &TeamId,
        id: &DestinationId,
        outcome: &shipwatch_service::model::LastOutcome,
    ) -> StoreResult<bool> {
        self.inner
            .record_destination_outcome(team, id, outcome)
            .await
    }
}

/// `stores` with its key, secret and destination stores wrapped; the other stores are untouched.
pub fn with_faults(stores: Stores) -> (Stores, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let wrapped = Stores {
        keys: Arc::new(FaultyKeys {
            inner: stores.keys.clone(),
            faults: faults.clone(),
        }),
        secrets: Arc::new(FaultySecrets {
            inner: stores.secrets.clone(),
            faults: faults.clone(),
        }),
        destinations: Arc::new(FaultyDestinations {
            inner: stores.destinations.clone(),
            faults: faults.clone(),
        }),
        ..stores
    };
    (wrapped, faults)
}
