//! The push receiver's logic: find the webhook's secret (cached; no store write before the
//! signature holds), verify `x-apple-signature: hmacsha256=<hex>` over the raw body in constant
//! time, rate-limit per webhook, skip a `data.id` seen recently, and ask for a one-key sweep
//! through [`KeySweepTrigger`] (in process locally, a one-key shard on AWS) without waiting for
//! it, so events, history and exactly-once are those of the sweep.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use shipwatch_shared::clock::Clock;

use crate::model::{KeyRecordId, SecretName, SecretValue};
use crate::ports::{StoreError, Stores};

/// Notifications accepted per webhook per minute; more get 429 (Apple retries).
pub const NOTIFICATIONS_PER_WEBHOOK_PER_MINUTE: usize = 60;
/// How long a `data.id` is remembered (in the store, so across processes): Apple redelivers a
/// failed notification over several days.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long this process keeps a `data.id` in memory, in front of the store's record.
const SEEN_IN_PROCESS_SECONDS: i64 = 3600;
/// How long a webhook secret read from the secret store is reused.
const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// Verifies `x-apple-signature: hmacsha256=<hex>` over `body`, in constant time.
pub fn signature_is_valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_part) = header.and_then(|h| h.trim().strip_prefix("hmacsha256=")) else {
        return false;
    };
    let Ok(given) = hex::decode(hex_part.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Asks for one key to be read now (not waiting for the read).
#[async_trait]
pub trait KeySweepTrigger: Send + Sync {
    async fn sweep_key(&self, key: &KeyRecordId) -> Result<(), String>;
}

/// What a notification led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A state notification: the key's sweep was asked for.
    SweepRequested { event_type: String },
    /// A ping: its `data.id` recorded in the store (like every notification) and logged.
    Ping,
    /// This `data.id` was handled before.
    Duplicate,
    /// Signed correctly, but of a type shipwatch does not act on.
    Ignored { event_type: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// Unknown webhook, missing or wrong signature: the same answer for all, so nothing leaks.
    #[error("the signature is missing or does not match")]
    BadSignature,
    #[error("the notification is not the JSON App Store Connect sends: {0}")]
    Malformed(String),
    #[error("too many notifications for this webhook; retry later")]
    RateLimited,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the key's sweep could not be asked for: {0}")]
    Trigger(String),
}

/// The state notifications that make shipwatch read the key (contract section 7).
const STATE_TYPES: [&str; 3] = [
    "APP_STORE_VERSION_APP_VERSION_STATE_UPDATED",
    "BUILD_UPLOAD_STATE_UPDATED",
    "BUILD_BETA_DETAIL_EXTERNAL_BUILD_STATE_UPDATED",
];

#[derive(Deserialize)]
struct Notification {
    data: NotificationData,
}

#[derive(Deserialize)]
struct NotificationData {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default)]
    attributes: Option<serde_json::Value>,
}

/// The classified notification (pure).
fn event_type_of(data: &NotificationData) -> String {
    // The event type may be the resource type itself or an `eventType` attribute
    // (`webhookEvents` in the spec carry `eventType` and `ping`).
    data.attributes
        .as_ref()
        .and_then(|a| a.get("eventType"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| upper_snake(&data.kind))
}

/// `appStoreVersionAppVersionStateUpdated` -> `APP_STORE_VERSION_APP_VERSION_STATE_UPDATED`
/// (a type already in upper snake case stays as it is).
fn upper_snake(kind: &str) -> String {
    let mut out = String::with_capacity(kind.len() + 8);
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !kind.contains('_') {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn is_ping(data: &NotificationData) -> bool {
    data.attributes
        .as_ref()
        .and_then(|a| a.get("ping"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
        || data.kind.eq_ignore_ascii_case("webhookPingCreated")
        || data.kind.eq_ignore_ascii_case("WEBHOOK_PING")
}

struct CachedSecret {
    value: SecretValue,
    read_at: DateTime<Utc>,
}

#[derive(Default)]
struct ReceiverMemory {
    secrets: HashMap<(KeyRecordId, String), CachedSecret>,
    seen: HashMap<String, DateTime<Utc>>,
    recent: HashMap<String, Vec<DateTime<Utc>>>,
    unknown_types_logged: std::collections::HashSet<String>,
}

/// The receiver. Handled `data.id`s are recorded in the store ([`crate::ports::PushStore`]) for
/// [`DEDUPE_WINDOW`], so a redelivery is handled once across processes and cold starts; the
/// per-process caches (secrets, recent ids, rate windows) only save store reads.
#[derive(Clone)]
pub struct PushReceiver {
    stores: Stores,
    clock: Arc<dyn Clock>,
    trigger: Arc<dyn KeySweepTrigger>,
    memory: Arc<Mutex<ReceiverMemory>>,
}

impl PushReceiver {
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, trigger: Arc<dyn KeySweepTrigger>) -> Self {
        Self {
            stores,
            clock,
            trigger,
            memory: Arc::new(Mutex::new(ReceiverMemory::default())),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, ReceiverMemory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The secret of webhook `reference` of `key`, or `None` when no such webhook of ours exists.
    async fn secret(
        &self,
        key: &KeyRecordId,
        reference: &str,
    ) -> Result<Option<SecretValue>, ReceiveError> {
        let now = self.clock.now();
        let cache_key = (key.clone(), reference.to_owned());
        if let Some(cached) = self.memory().secrets.get(&cache_key)
            && (now - cached.read_at).to_std().unwrap_or_default() < SECRET_CACHE_TTL
        {
            return Ok(Some(cached.value.clone()));
        }
        let Some(record) = self.stores.keys.get_key_by_id(key).await? else {
            return Ok(None);
        };
        let ours = record
            .push
            .as_ref()
            .is_some_and(|p| p.webhooks.iter().any(|w| w.reference == reference));
        if !ours {
            return Ok(None);
        }
        let name = SecretName::for_webhook(&record.team_id, reference);
        let Some(value) = self.stores.secrets.get_secret(&name).await? else {
            return Ok(None);
        };
        self.memory().secrets.insert(
            cache_key,
            CachedSecret {
                value: value.clone(),
                read_at: now,
            },
        );
        Ok(Some(value))
    }

    /// Handles one delivery. Nothing is written and nothing is asked for unless the signature holds.
    pub async fn receive(
        &self,
        key: &KeyRecordId,
        reference: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Received, ReceiveError> {
        let Some(secret) = self.secret(key, reference).await? else {
            return Err(ReceiveError::BadSignature);
        };
        if !signature_is_valid(secret.expose().as_bytes(), body, signature) {
            return Err(ReceiveError::BadSignature);
        }
        let now = self.clock.now();
        {
            let mut memory = self.memory();
            let window = chrono::Duration::seconds(60);
            let recent = memory.recent.entry(reference.to_owned()).or_default();
            recent.retain(|at| now - *at < window);
            if recent.len() >= NOTIFICATIONS_PER_WEBHOOK_PER_MINUTE {
                return Err(ReceiveError::RateLimited);
            }
            recent.push(now);
        }
        let notification: Notification =
            serde_json::from_slice(body).map_err(|e| ReceiveError::Malformed(e.to_string()))?;
        let data = notification.data;
        let dedupe = chrono::Duration::from_std(DEDUPE_WINDOW).unwrap_or_default();
        {
            // A cheap first filter for redeliveries to this process; the store decides.
            let mut memory = self.memory();
            memory
                .seen
                .retain(|_, at| now - *at < chrono::Duration::seconds(SEEN_IN_PROCESS_SECONDS));
            if memory.seen.contains_key(&data.id) {
                return Ok(Received::Duplicate);
            }
        }
        // The first store write, only now that the signature held.
        let first = self
            .stores
            .push
            .remember_notification(reference, &data.id, now, now + dedupe)
            .await?;
        self.memory().seen.insert(data.id.clone(), now);
        if !first {
            return Ok(Received::Duplicate);
        }
        if is_ping(&data) {
            tracing::info!(key = %key, webhook = reference, notification = %data.id, "App Store Connect webhook ping received");
            return Ok(Received::Ping);
        }
        let event_type = event_type_of(&data);
        if !STATE_TYPES.contains(&event_type.as_str()) {
            if self
                .memory()
                .unknown_types_logged
                .insert(event_type.clone())
            {
                tracing::info!(key = %key, event_type = %event_type, "App Store Connect notification of a type shipwatch does not act on; ignored");
            }
            return Ok(Received::Ignored { event_type });
        }
        if let Err(err) = self.trigger.sweep_key(key).await {
            // Let Apple redeliver: forget the id so the retry is processed.
            self.memory().seen.remove(&data.id);
            if let Err(forget) = self
                .stores
                .push
                .forget_notification(reference, &data.id)
                .await
            {
                tracing::warn!(key = %key, notification = %data.id, error = %forget, "could not forget a notification whose sweep was not asked for");
            }
            return Err(ReceiveError::Trigger(err));
        }
        tracing::info!(key = %key, event_type = %event_type, notification = %data.id, "push: one-key sweep requested");
        Ok(Received::SweepRequested { event_type })
    }
}

/// Locally: the key's sweep runs in this process, then the delivery pass.
pub struct InProcessKeySweep {
    sweeper: crate::sweep::SweepService,
}

impl InProcessKeySweep {
    pub fn new(sweeper: crate::sweep::SweepService) -> Self {
        Self { sweeper }
    }
}

#[async_trait]
impl KeySweepTrigger for InProcessKeySweep {
    async fn sweep_key(&self, key: &KeyRecordId) -> Result<(), String> {
        let sweeper = self.sweeper.clone();
        let ids = vec![key.clone()];
        // Not awaited: the receiver answers Apple at once.
        tokio::spawn(async move {
            sweeper.run_for_keys(&ids).await;
            sweeper.deliver_due().await;
        });
        Ok(())
    }
}

/// On AWS: a one-key shard on the sweep queue, consumed by `status-sweep`.
pub struct QueuedKeySweep {
    queue: Arc<dyn crate::fanout::ShardQueue>,
    clock: Arc<dyn Clock>,
}

impl QueuedKeySweep {
    pub fn new(queue: Arc<dyn crate::fanout::ShardQueue>, clock: Arc<dyn Clock>) -> Self {
        Self { queue, clock }
    }
}

#[async_trait]
impl KeySweepTrigger for QueuedKeySweep {
    async fn sweep_key(&self, key: &KeyRecordId) -> Result<(), String> {
        let shard = crate::fanout::SweepShard {
            sweep_id: format!("push-{}", uuid::Uuid::new_v4()),
            shard: 1,
            planned_at: self.clock.now(),
            key_ids: vec![key.clone()],
        };
        self.queue
            .enqueue(&[shard])
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("hmacsha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let body = br#"{"data":{"type":"x","id":"1"}}"#;
        let good = sign(b"secret", body);
        assert!(signature_is_valid(b"secret", body, Some(&good)));
        assert!(!signature_is_valid(b"other", body, Some(&good)));
        assert!(!signature_is_valid(b"secret", b"{}", Some(&good)));
        assert!(!signature_is_valid(b"secret", body, None));
        assert!(!signature_is_valid(b"secret", body, Some("hmacsha256=zz")));
        assert!(!signature_is_valid(
            b"secret",
            body,
            Some(&good.replace("hmacsha256=", "sha1="))
        ));
        let truncated = &good[..good.len() - 2];
        assert!(!signature_is_valid(b"secret", body, Some(truncated)));
    }

    #[test]
    fn event_types_come_from_the_attribute_or_the_type() {
        let with_attribute: Notification = serde_json::from_str(
            r#"{"data":{"type":"webhookEvents","id":"1","attributes":{"eventType":"BUILD_UPLOAD_STATE_UPDATED"}}}"#,
        )
        .unwrap();
        assert_eq!(
            event_type_of(&with_attribute.data),
            "BUILD_UPLOAD_STATE_UPDATED"
        );
        let bare: Notification =
            serde_json::from_str(r#"{"data":{"type":"SOMETHING_NEW","id":"2"}}"#).unwrap();
        assert_eq!(event_type_of(&bare.data), "SOMETHING_NEW");
        let camel: Notification = serde_json::from_str(
            r#"{"data":{"type":"appStoreVersionAppVersionStateUpdated","id":"4"}}"#,
        )
        .unwrap();
        assert_eq!(
            event_type_of(&camel.data),
            "APP_STORE_VERSION_APP_VERSION_STATE_UPDATED"
        );
        let ping: Notification = serde_json::from_str(
            r#"{"data":{"type":"webhookEvents","id":"3","attributes":{"ping":true}}}"#,
        )
        .unwrap();
        assert!(is_ping(&ping.data));
    }
}
