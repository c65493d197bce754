//! Keys' credentials read from the secret store, reused for a while (per process).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

use crate::accounts::Credentials;
use crate::model::{ApiKeyRecord, KeyRecordId};

/// Most credentials kept; beyond it the cache starts over.
const MAX_CACHED_CREDENTIALS: usize = 100_000;

pub(crate) struct CredentialCache {
    ttl: TimeDelta,
    entries: Mutex<HashMap<KeyRecordId, (Credentials, DateTime<Utc>)>>,
}

impl CredentialCache {
    pub(crate) fn new(ttl: TimeDelta) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key's credentials as read within the TTL, if they still match the record.
    pub(crate) fn get(&self, key: &ApiKeyRecord, now: DateTime<Utc>) -> Option<Credentials> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (credentials, read_at) = entries.get(&key.id)?;
        let fresh = now - *read_at < self.ttl;
        (fresh && credentials.is_for(&key.account)).then(|| credentials.clone())
    }

    pub(crate) fn put(&self, key: &KeyRecordId, credentials: Credentials, now: DateTime<Utc>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_CACHED_CREDENTIALS {
            entries.clear();
        }
        entries.insert(key.clone(), (credentials, now));
    }
}
