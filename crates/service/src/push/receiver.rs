//! The push receiver's logic: find the webhook's secret (cached; no store write before the
//! signature holds), verify `x-apple-signature: hmacsha256=<hex>` over the raw body in constant
//! time, rate-limit per webhook, skip a `data.id` seen recently, and ask through
//! [`KeySweepTrigger`] (in process locally, a one-key shard on AWS) for a one-key sweep (state
//! notifications: events, history and exactly-once are those of the sweep) or for a read of the
//! feedback submission named (`push::feedback`), without waiting for either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use shipwatch_shared::clock::Clock;

use super::feedback::{FeedbackRef, FeedbackService};
use crate::domain::event_data::FeedbackKind;
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

/// Asks for one key to be read now, or one feedback submission of it (not waiting for the read).
#[async_trait]
pub trait KeySweepTrigger: Send + Sync {
    async fn sweep_key(&self, key: &KeyRecordId) -> Result<(), String>;
    async fn read_feedback(&self, key: &KeyRecordId, feedback: &FeedbackRef) -> Result<(), String>;
}

/// What a notification led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A state notification: the key's sweep was asked for.
    SweepRequested { event_type: String },
    /// A feedback notification: reading the submission was asked for.
    FeedbackRequested { kind: FeedbackKind },
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

/// What a notification's `data.type` says. App Store Connect posts the event type in camelCase
/// there (`appStoreVersionAppVersionStateUpdated` for a webhook subscribed to
/// `APP_STORE_VERSION_APP_VERSION_STATE_UPDATED`), and `webhookPingCreated` for a ping.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NotificationKind {
    /// A state notification: the key is read at once (contract section 7).
    State(&'static str),
    Feedback(FeedbackKind),
    Ping,
    Unknown(String),
}

fn classify(kind: &str) -> NotificationKind {
    match kind {
        "appStoreVersionAppVersionStateUpdated" => {
            NotificationKind::State("APP_STORE_VERSION_APP_VERSION_STATE_UPDATED")
        }
        "buildUploadStateUpdated" => NotificationKind::State("BUILD_UPLOAD_STATE_UPDATED"),
        "buildBetaDetailExternalBuildStateUpdated" => {
            NotificationKind::State("BUILD_BETA_DETAIL_EXTERNAL_BUILD_STATE_UPDATED")
        }
        "betaFeedbackCrashSubmissionCreated" => NotificationKind::Feedback(FeedbackKind::Crash),
        "betaFeedbackScreenshotSubmissionCreated" => {
            NotificationKind::Feedback(FeedbackKind::Screenshot)
        }
        "webhookPingCreated" => NotificationKind::Ping,
        other => NotificationKind::Unknown(other.to_owned()),
    }
}

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
    relationships: Option<NotificationRelationships>,
}

#[derive(Deserialize)]
struct NotificationRelationships {
    instance: Option<InstanceLink>,
}

#[derive(Deserialize)]
struct InstanceLink {
    data: Option<Instance>,
}

/// The resource a notification is about (`relationships.instance.data`).
#[derive(Deserialize)]
struct Instance {
    id: String,
}

impl NotificationData {
    fn instance_id(&self) -> Option<&str> {
        let instance = self
            .relationships
            .as_ref()?
            .instance
            .as_ref()?
            .data
            .as_ref()?;
        Some(instance.id.as_str()).filter(|id| !id.is_empty())
    }
}

struct CachedSecret {
    value: SecretValue,
    /// The app the webhook is for.
    app_id: String,
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

    /// The secret of webhook `reference` of `key` and the app it is for, or `None` when no such
    /// webhook of ours exists.
    async fn secret(
        &self,
        key: &KeyRecordId,
        reference: &str,
    ) -> Result<Option<(SecretValue, String)>, ReceiveError> {
        let now = self.clock.now();
        let cache_key = (key.clone(), reference.to_owned());
        if let Some(cached) = self.memory().secrets.get(&cache_key)
            && (now - cached.read_at).to_std().unwrap_or_default() < SECRET_CACHE_TTL
        {
            return Ok(Some((cached.value.clone(), cached.app_id.clone())));
        }
        let Some(record) = self.stores.keys.get_key_by_id(key).await? else {
            return Ok(None);
        };
        let Some(app_id) = record.push.as_ref().and_then(|p| {
            p.webhooks
                .iter()
                .find(|w| w.reference == reference)
                .map(|w| w.app_id.clone())
        }) else {
            return Ok(None);
        };
        let name = SecretName::for_webhook(&record.team_id, reference);
        let Some(value) = self.stores.secrets.get_secret(&name).await? else {
            return Ok(None);
        };
        self.memory().secrets.insert(
            cache_key,
            CachedSecret {
                value: value.clone(),
                app_id: app_id.clone(),
                read_at: now,
            },
        );
        Ok(Some((value, app_id)))
    }

    /// Handles one delivery. Nothing is written and nothing is asked for unless the signature holds.
    pub async fn receive(
        &self,
        key: &KeyRecordId,
        reference: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Received, ReceiveError> {
        let Some((secret, app_id)) = self.secret(key, reference).await? else {
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
        let kind = classify(&data.kind);
        let asked = match &kind {
            NotificationKind::Ping => {
                tracing::info!(key = %key, webhook = reference, notification = %data.id, "App Store Connect webhook ping received");
                return Ok(Received::Ping);
            }
            NotificationKind::Unknown(event_type) => {
                if self
                    .memory()
                    .unknown_types_logged
                    .insert(event_type.clone())
                {
                    tracing::info!(key = %key, event_type = %event_type, "App Store Connect notification of a type shipwatch does not act on; ignored");
                }
                return Ok(Received::Ignored {
                    event_type: event_type.clone(),
                });
            }
            NotificationKind::State(_) => self.trigger.sweep_key(key).await,
            NotificationKind::Feedback(feedback_kind) => match data.instance_id() {
                Some(submission_id) => {
                    let feedback = FeedbackRef {
                        app_id,
                        kind: *feedback_kind,
                        submission_id: submission_id.to_owned(),
                    };
                    self.trigger.read_feedback(key, &feedback).await
                }
                None => {
                    // Nothing to read; answering 4xx would only make Apple redeliver it.
                    tracing::warn!(key = %key, notification = %data.id, "feedback notification without `relationships.instance`; ignored");
                    return Ok(Received::Ignored {
                        event_type: data.kind.clone(),
                    });
                }
            },
        };
        if let Err(err) = asked {
            // Let Apple redeliver: forget the id so the retry is processed.
            self.memory().seen.remove(&data.id);
            if let Err(forget) = self
                .stores
                .push
                .forget_notification(reference, &data.id)
                .await
            {
                tracing::warn!(key = %key, notification = %data.id, error = %forget, "could not forget a notification whose work was not asked for");
            }
            return Err(ReceiveError::Trigger(err));
        }
        Ok(match kind {
            NotificationKind::Feedback(feedback_kind) => {
                tracing::info!(key = %key, kind = feedback_kind.as_str(), notification = %data.id, "push: feedback read requested");
                Received::FeedbackRequested {
                    kind: feedback_kind,
                }
            }
            NotificationKind::State(event_type) => {
                tracing::info!(key = %key, event_type, notification = %data.id, "push: one-key sweep requested");
                Received::SweepRequested {
                    event_type: event_type.to_owned(),
                }
            }
            NotificationKind::Ping | NotificationKind::Unknown(_) => unreachable!("answered above"),
        })
    }
}

/// Locally: the key's sweep (or the feedback read) runs in this process, then the delivery pass.
pub struct InProcessKeySweep {
    sweeper: crate::sweep::SweepService,
    feedback: FeedbackService,
}

/// Waits before each further try of a feedback read that failed (App Store Connect or the store
/// down), about 53 minutes in all: Apple was answered already and will not send it again, so the
/// process keeps it (lost only if the process stops meanwhile); after the last try it is logged
/// and given up.
const FEEDBACK_RETRY_WAITS: [Duration; 6] = [
    Duration::from_secs(2),
    Duration::from_secs(15),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(1800),
];

impl InProcessKeySweep {
    pub fn new(sweeper: crate::sweep::SweepService, feedback: FeedbackService) -> Self {
        Self { sweeper, feedback }
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

    async fn read_feedback(&self, key: &KeyRecordId, feedback: &FeedbackRef) -> Result<(), String> {
        let (sweeper, service) = (self.sweeper.clone(), self.feedback.clone());
        let (key, feedback) = (key.clone(), feedback.clone());
        tokio::spawn(async move {
            let mut waits = FEEDBACK_RETRY_WAITS.iter();
            loop {
                match service.record(&key, &feedback).await {
                    Ok(_) => break,
                    Err(err) => match waits.next() {
                        Some(wait) => {
                            tracing::warn!(key = %key, error = %err, "feedback read failed; trying again");
                            tokio::time::sleep(*wait).await;
                        }
                        None => {
                            tracing::error!(key = %key, submission = %feedback.submission_id, error = %err, "feedback read kept failing for an hour; given up");
                            return;
                        }
                    },
                }
            }
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
            feedback: None,
        };
        self.queue
            .enqueue(&[shard])
            .await
            .map_err(|e| e.to_string())
    }

    async fn read_feedback(&self, key: &KeyRecordId, feedback: &FeedbackRef) -> Result<(), String> {
        let shard = crate::fanout::SweepShard {
            sweep_id: format!("push-feedback-{}", uuid::Uuid::new_v4()),
            shard: 1,
            planned_at: self.clock.now(),
            key_ids: vec![key.clone()],
            feedback: Some(feedback.clone()),
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
    fn notifications_are_classified_by_their_camel_case_type() {
        assert_eq!(
            classify("appStoreVersionAppVersionStateUpdated"),
            NotificationKind::State("APP_STORE_VERSION_APP_VERSION_STATE_UPDATED")
        );
        assert_eq!(
            classify("buildUploadStateUpdated"),
            NotificationKind::State("BUILD_UPLOAD_STATE_UPDATED")
        );
        assert_eq!(
            classify("buildBetaDetailExternalBuildStateUpdated"),
            NotificationKind::State("BUILD_BETA_DETAIL_EXTERNAL_BUILD_STATE_UPDATED")
        );
        assert_eq!(
            classify("betaFeedbackCrashSubmissionCreated"),
            NotificationKind::Feedback(FeedbackKind::Crash)
        );
        assert_eq!(
            classify("betaFeedbackScreenshotSubmissionCreated"),
            NotificationKind::Feedback(FeedbackKind::Screenshot)
        );
        assert_eq!(classify("webhookPingCreated"), NotificationKind::Ping);
        assert_eq!(
            classify("backgroundAssetVersionStateUpdated"),
            NotificationKind::Unknown("backgroundAssetVersionStateUpdated".into())
        );
        // The subscription spelling is not what Apple posts.
        assert!(matches!(
            classify("BUILD_UPLOAD_STATE_UPDATED"),
            NotificationKind::Unknown(_)
        ));
    }

    #[test]
    fn the_instance_id_is_read_from_the_relationships() {
        let feedback: Notification = serde_json::from_str(
            r#"{"data":{"type":"betaFeedbackScreenshotSubmissionCreated","id":"n1","version":1,
                "attributes":{"timestamp":"2026-12-03T09:00:00.000Z"},
                "relationships":{"instance":{"data":{"type":"betaFeedbackScreenshotSubmissions","id":"s1"}}}}}"#,
        )
        .unwrap();
        assert_eq!(feedback.data.instance_id(), Some("s1"));
        let bare: Notification =
            serde_json::from_str(r#"{"data":{"type":"webhookPingCreated","id":"p1"}}"#).unwrap();
        assert_eq!(bare.data.instance_id(), None);
    }
}
