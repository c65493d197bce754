//! Push from App Store Connect webhooks: provisioning and health of the webhooks shipwatch makes
//! for a key's apps (contract section 7). One webhook per app, with the contract's event types, a
//! random secret per webhook (secret store only, written before the webhook exists) and a URL
//! `{SHIPWATCH_PUBLIC_URL}/v1/push/apple/{key}/{reference}` (no secret in it). The key's
//! `push` state says what came of it: `off`, `unavailable` (role), `active`, `degraded`.

pub mod feedback;
pub mod plan;
pub mod receiver;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::RngCore;
use shipwatch_shared::clock::Clock;

use crate::accounts::{AccountError, Credentials, StoreAccounts};
use crate::domain::events::key_push_degraded;
use crate::model::{
    ApiKeyRecord, KeyRecordId, KeyStatus, PushState, PushStatus, PushWebhook, SecretName,
    SecretValue,
};
use crate::ports::{StoreError, Stores};
pub use plan::{AppAction, EVENT_TYPES, RECEIVER_PATH, RemoteWebhook, key_prefix, plan_app};

/// How often each key's webhooks are checked (exist, enabled, pointing at us) and repaired.
pub const HEALTH_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

pub const MESSAGE_OFF: &str =
    "Push is off: SHIPWATCH_PUBLIC_URL is not set, so shipwatch polls App Store Connect only.";
pub const MESSAGE_UNAVAILABLE: &str = "This key's App Store Connect role may not manage webhooks, so shipwatch polls it only (changes arrive within a sweep interval). A key with the Admin or App Manager role enables push.";

/// A webhook to create. `Debug` hides the secret.
#[derive(Clone)]
pub struct WebhookSpec {
    pub app_id: String,
    pub url: String,
    pub secret: SecretValue,
}

impl std::fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("app_id", &self.app_id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A repair of one of our webhooks: always enabled with our event types; a new URL and secret
/// when it is rekeyed.
#[derive(Clone, Debug)]
pub struct WebhookRepair {
    pub rekey: Option<(String, SecretValue)>,
}

/// The store-account side of push: webhooks of a key's apps (App Store Connect today).
#[async_trait]
pub trait WebhookAdmin: Send + Sync {
    /// The ids of every app the key sees.
    async fn app_ids(&self, credentials: &Credentials) -> Result<Vec<String>, AccountError>;
    async fn list(
        &self,
        credentials: &Credentials,
        app_id: &str,
    ) -> Result<Vec<RemoteWebhook>, AccountError>;
    async fn create(
        &self,
        credentials: &Credentials,
        spec: &WebhookSpec,
    ) -> Result<RemoteWebhook, AccountError>;
    async fn repair(
        &self,
        credentials: &Credentials,
        webhook_id: &str,
        repair: &WebhookRepair,
    ) -> Result<RemoteWebhook, AccountError>;
    /// Deletes; a webhook already gone counts as deleted.
    async fn delete(&self, credentials: &Credentials, webhook_id: &str)
    -> Result<(), AccountError>;
    /// Asks the store to send the webhook a ping (it arrives at the receiver like a notification).
    async fn ping(&self, credentials: &Credentials, webhook_id: &str) -> Result<(), AccountError>;
    /// The webhook's deliveries created at or after `since`.
    async fn deliveries(
        &self,
        credentials: &Credentials,
        webhook_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, AccountError>;
    /// Asks the store to send a failed delivery's notification again.
    async fn redeliver(
        &self,
        credentials: &Credentials,
        delivery_id: &str,
    ) -> Result<(), AccountError>;
}

/// One delivery of a webhook's notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    /// The notification delivered: a delivery and its redeliveries share it.
    pub event_id: Option<String>,
    pub state: DeliveryState,
    /// What went wrong, in the store's words (an HTTP status or a connection error).
    pub detail: Option<String>,
    /// It was a ping (nothing to recover by sending it again).
    pub ping: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Succeeded,
    Failed,
    /// Not sent yet (or a state this version does not know).
    Pending,
}

/// The notifications that never got through: events (not pings) with a failed delivery and no
/// delivery that succeeded or is still pending. One delivery per event, the last failed one, as
/// the template of the redelivery.
pub fn lost_deliveries(deliveries: &[Delivery]) -> Vec<&Delivery> {
    let mut lost: Vec<&Delivery> = Vec::new();
    for delivery in deliveries
        .iter()
        .filter(|d| d.state == DeliveryState::Failed && !d.ping)
    {
        let event = delivery.event_id.as_deref();
        let got_through = event.is_some()
            && deliveries
                .iter()
                .any(|d| d.event_id.as_deref() == event && d.state != DeliveryState::Failed);
        if got_through {
            continue;
        }
        match lost
            .iter_mut()
            .find(|l| event.is_some() && l.event_id.as_deref() == event)
        {
            Some(earlier) => *earlier = delivery,
            None => lost.push(delivery),
        }
    }
    lost
}

/// How far before the previous check the failed deliveries are read, so a delivery that failed
/// while that check ran is not missed (asking twice is harmless: the receiver deduplicates).
const FAILED_DELIVERY_OVERLAP_MINUTES: i64 = 5;
/// Most redeliveries asked for per webhook and check (a long outage: the rest next time, and
/// polling covers state changes meanwhile).
const MAX_REDELIVERIES_PER_CHECK: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the key's private key cannot be read")]
    Credentials,
    #[error("App Store Connect could not be asked: {0}")]
    Account(AccountError),
}

/// Provisions, checks and removes a key's webhooks.
#[derive(Clone)]
pub struct PushService {
    stores: Stores,
    accounts: Arc<dyn StoreAccounts>,
    admin: Arc<dyn WebhookAdmin>,
    clock: Arc<dyn Clock>,
    public_url: Option<String>,
}

/// A key's credentials, parsed from its secret; `Ok(None)` when the secret is missing or cannot be
/// read as credentials.
pub(crate) async fn key_credentials(
    stores: &Stores,
    accounts: &dyn StoreAccounts,
    key: &ApiKeyRecord,
) -> Result<Option<Credentials>, StoreError> {
    let Some(secret) = stores.secrets.get_secret(&key.secret_name()).await? else {
        return Ok(None);
    };
    Ok(accounts.credentials(&key.account, &secret).ok())
}

/// Whether any of `app_ids` (the apps a sweep saw) has no webhook in `state`.
fn has_app_without_webhook<'a>(
    state: &PushState,
    mut app_ids: impl Iterator<Item = &'a String>,
) -> bool {
    app_ids.any(|app| !state.webhooks.iter().any(|w| &w.app_id == app))
}

/// A fresh random reference (URL segment) or secret: 32 random bytes, hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl PushService {
    pub fn new(
        stores: Stores,
        accounts: Arc<dyn StoreAccounts>,
        admin: Arc<dyn WebhookAdmin>,
        clock: Arc<dyn Clock>,
        public_url: Option<String>,
    ) -> Self {
        Self {
            stores,
            accounts,
            admin,
            clock,
            public_url,
        }
    }

    async fn credentials(&self, key: &ApiKeyRecord) -> Result<Credentials, PushError> {
        key_credentials(&self.stores, self.accounts.as_ref(), key)
            .await?
            .ok_or(PushError::Credentials)
    }

    /// Brings a valid key's webhooks to what they should be (creating, repairing, re-enabling,
    /// removing duplicates and webhooks of apps the key no longer sees) and records the outcome
    /// on the key. Keys that are not `valid` are left alone (`Ok(None)`).
    pub async fn reconcile(&self, id: &KeyRecordId) -> Result<Option<PushState>, PushError> {
        let Some(key) = self.stores.keys.get_key_by_id(id).await? else {
            return Ok(None);
        };
        // Push is App Store Connect webhooks; other stores' keys are polled only.
        if key.status != KeyStatus::Valid || !is_app_store_connect(&key) {
            return Ok(None);
        }
        let now = self.clock.now();
        let previous = key.push.clone().unwrap_or(PushState {
            status: PushStatus::Off,
            message: None,
            webhooks: Vec::new(),
            checked_at: now,
        });
        let state = match &self.public_url {
            None => PushState {
                status: PushStatus::Off,
                message: Some(MESSAGE_OFF.to_owned()),
                webhooks: previous.webhooks.clone(),
                checked_at: now,
            },
            Some(public_url) => {
                let credentials = self.credentials(&key).await?;
                self.reconcile_webhooks(&key, &credentials, public_url, &previous)
                    .await?
            }
        };
        self.record(&key, state.clone()).await?;
        Ok(Some(state))
    }

    async fn reconcile_webhooks(
        &self,
        key: &ApiKeyRecord,
        credentials: &Credentials,
        public_url: &str,
        previous: &PushState,
    ) -> Result<PushState, PushError> {
        let now = self.clock.now();
        let unavailable = |webhooks: Vec<PushWebhook>| PushState {
            status: PushStatus::Unavailable,
            message: Some(MESSAGE_UNAVAILABLE.to_owned()),
            webhooks,
            checked_at: now,
        };
        let app_ids = self
            .admin
            .app_ids(credentials)
            .await
            .map_err(PushError::Account)?;
        let prefix = key_prefix(public_url, key.id.as_str());
        let mut kept: Vec<PushWebhook> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        for app_id in &app_ids {
            let known = previous.webhooks.iter().find(|w| &w.app_id == app_id);
            let remote = match self.admin.list(credentials, app_id).await {
                Ok(remote) => remote,
                Err(AccountError::Forbidden) => return Ok(unavailable(previous.webhooks.clone())),
                Err(err) => return Err(PushError::Account(err)),
            };
            let (action, extras) = plan_app(&prefix, known, &remote);
            for extra in extras {
                if let Err(err) = self.admin.delete(credentials, &extra).await {
                    tracing::warn!(key = %key.id, app = %app_id, error = %err, "could not delete a duplicate webhook");
                }
            }
            let outcome = match action {
                AppAction::Keep(webhook) => Ok(webhook),
                AppAction::Restore(webhook) => self
                    .admin
                    .repair(
                        credentials,
                        &webhook.webhook_id,
                        &WebhookRepair { rekey: None },
                    )
                    .await
                    .map(|_| webhook),
                AppAction::Rekey { webhook_id } => {
                    self.rekey(key, credentials, &prefix, app_id, &webhook_id, known)
                        .await?
                }
                AppAction::Create => {
                    self.create(key, credentials, &prefix, app_id, known)
                        .await?
                }
                AppAction::Full => Err(AccountError::Unavailable(format!(
                    "app {app_id} already has Apple's maximum of ten webhooks"
                ))),
            };
            match outcome {
                Ok(webhook) => kept.push(webhook),
                Err(AccountError::Forbidden) => return Ok(unavailable(previous.webhooks.clone())),
                Err(err) => {
                    problems.push(format!("app {app_id}: {err}"));
                    if let Some(known) = known {
                        kept.push(known.clone());
                    }
                }
            }
        }
        // Webhooks of apps the key no longer sees.
        for gone in previous
            .webhooks
            .iter()
            .filter(|w| !app_ids.contains(&w.app_id))
        {
            match self.admin.delete(credentials, &gone.webhook_id).await {
                Ok(()) => self.delete_secret(key, &gone.reference).await,
                Err(_) => kept.push(gone.clone()),
            }
        }
        let recovered = self
            .recover_failed_deliveries(key, credentials, &kept, previous)
            .await;
        Ok(if problems.is_empty() {
            PushState {
                status: PushStatus::Active,
                message: recovered,
                webhooks: kept,
                checked_at: now,
            }
        } else {
            PushState {
                status: PushStatus::Degraded,
                message: Some(format!(
                    "shipwatch could not repair its App Store Connect webhooks ({}); changes of those apps arrive by polling only until it can.",
                    problems.join("; ")
                )),
                webhooks: kept,
                checked_at: now,
            }
        })
    }

    /// Asks the store to send again what it failed to deliver to our webhooks since the previous
    /// check ([`lost_deliveries`]): push is the only source of TestFlight feedback, so a
    /// notification lost while shipwatch was unreachable would otherwise be lost for good (state
    /// changes are also caught by polling). Says what it did, for `push_message`; a failure to
    /// read or ask is logged, never fatal to the check.
    async fn recover_failed_deliveries(
        &self,
        key: &ApiKeyRecord,
        credentials: &Credentials,
        kept: &[PushWebhook],
        previous: &PushState,
    ) -> Option<String> {
        let since =
            previous.checked_at - chrono::Duration::minutes(FAILED_DELIVERY_OVERLAP_MINUTES);
        let mut lost_count = 0usize;
        let mut asked = 0usize;
        let mut last_detail = None;
        // Only webhooks that were already ours at the previous check have a window to look at.
        for webhook in kept.iter().filter(|w| {
            previous
                .webhooks
                .iter()
                .any(|p| p.webhook_id == w.webhook_id)
        }) {
            let deliveries = match self
                .admin
                .deliveries(credentials, &webhook.webhook_id, since)
                .await
            {
                Ok(deliveries) => deliveries,
                Err(err) => {
                    tracing::warn!(key = %key.id, webhook = %webhook.webhook_id, error = %err, "could not read the webhook's deliveries");
                    continue;
                }
            };
            let lost = lost_deliveries(&deliveries);
            lost_count += lost.len();
            if let Some(delivery) = lost.last() {
                last_detail.clone_from(&delivery.detail);
            }
            for delivery in lost.into_iter().take(MAX_REDELIVERIES_PER_CHECK) {
                match self.admin.redeliver(credentials, &delivery.id).await {
                    Ok(()) => asked += 1,
                    Err(err) => {
                        tracing::warn!(key = %key.id, delivery = %delivery.id, error = %err, "could not ask for a redelivery")
                    }
                }
            }
        }
        if lost_count == 0 {
            return None;
        }
        tracing::warn!(key = %key.id, lost = lost_count, redeliveries = asked, "App Store Connect could not deliver some notifications; redeliveries asked for");
        Some(format!(
            "App Store Connect could not deliver {lost_count} notification(s) to shipwatch since {} (last: {}); shipwatch asked it to send {asked} of them again.",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            last_detail.unwrap_or_else(|| "no detail".to_owned())
        ))
    }

    /// A ping right after a webhook is made or repointed exercises the whole path (Apple, the
    /// public URL, the receiver); its delivery shows in App Store Connect and in the next check.
    async fn ping(&self, key: &ApiKeyRecord, credentials: &Credentials, webhook_id: &str) {
        if let Err(err) = self.admin.ping(credentials, webhook_id).await {
            tracing::warn!(key = %key.id, webhook = webhook_id, error = %err, "could not ask App Store Connect to ping the webhook");
        }
    }

    /// Secret first, then the webhook; on failure the new secret is removed again.
    async fn create(
        &self,
        key: &ApiKeyRecord,
        credentials: &Credentials,
        prefix: &str,
        app_id: &str,
        known: Option<&PushWebhook>,
    ) -> Result<Result<PushWebhook, AccountError>, PushError> {
        let reference = random_hex();
        let secret = SecretValue::new(random_hex());
        let name = SecretName::for_webhook(&key.team_id, &reference);
        self.stores.secrets.put_secret(&name, &secret).await?;
        let spec = WebhookSpec {
            app_id: app_id.to_owned(),
            url: format!("{prefix}{reference}"),
            secret,
        };
        match self.admin.create(credentials, &spec).await {
            Ok(created) => {
                if let Some(old) = known {
                    self.delete_secret(key, &old.reference).await;
                }
                tracing::info!(key = %key.id, app = %app_id, webhook = %created.id, "App Store Connect webhook created");
                self.ping(key, credentials, &created.id).await;
                Ok(Ok(PushWebhook {
                    reference,
                    app_id: app_id.to_owned(),
                    webhook_id: created.id,
                }))
            }
            Err(err) => {
                self.delete_secret(key, &reference).await;
                Ok(Err(err))
            }
        }
    }

    async fn rekey(
        &self,
        key: &ApiKeyRecord,
        credentials: &Credentials,
        prefix: &str,
        app_id: &str,
        webhook_id: &str,
        known: Option<&PushWebhook>,
    ) -> Result<Result<PushWebhook, AccountError>, PushError> {
        let reference = random_hex();
        let secret = SecretValue::new(random_hex());
        let name = SecretName::for_webhook(&key.team_id, &reference);
        self.stores.secrets.put_secret(&name, &secret).await?;
        let repair = WebhookRepair {
            rekey: Some((format!("{prefix}{reference}"), secret)),
        };
        match self.admin.repair(credentials, webhook_id, &repair).await {
            Ok(_) => {
                if let Some(old) = known {
                    self.delete_secret(key, &old.reference).await;
                }
                self.ping(key, credentials, webhook_id).await;
                Ok(Ok(PushWebhook {
                    reference,
                    app_id: app_id.to_owned(),
                    webhook_id: webhook_id.to_owned(),
                }))
            }
            Err(err) => {
                self.delete_secret(key, &reference).await;
                Ok(Err(err))
            }
        }
    }

    async fn delete_secret(&self, key: &ApiKeyRecord, reference: &str) {
        let name = SecretName::for_webhook(&key.team_id, reference);
        if let Err(err) = self.stores.secrets.delete_secret(&name).await {
            tracing::error!(secret = %name, error = %err, "could not delete a webhook secret");
        }
    }

    /// Writes the push state on the key (conditional; applied again to a fresher record). The
    /// write that turns push `degraded` from anything else carries its announcement
    /// (`shipwatch.key.push_degraded`, routed by the team's workflows) in the same transaction,
    /// so concurrent checks announce it once and a crash cannot separate the two.
    async fn record(&self, key: &ApiKeyRecord, state: PushState) -> Result<(), PushError> {
        let mut current = key.clone();
        for _ in 0..3 {
            let mut next = current.clone();
            next.push = Some(state.clone());
            next.revision = current.revision + 1;
            let old = current.push.as_ref().map_or(PushStatus::Off, |p| p.status);
            let announce = state.status == PushStatus::Degraded && old != PushStatus::Degraded;
            let written = if announce {
                let now = self.clock.now();
                let message = state.message.as_deref().unwrap_or("push is degraded");
                let events = [key_push_degraded(&current, old, message, now)];
                let deliveries =
                    crate::outbox::route(&self.stores, &current.team_id, &events, now).await?;
                self.stores
                    .keys
                    .update_key_announcing(&next, current.revision, &events, &deliveries)
                    .await
                    .map(|()| {
                        tracing::warn!(key = %key.id, event = %events[0].id, "push degraded; announced");
                    })
            } else {
                self.stores.keys.update_key(&next, current.revision).await
            };
            match written {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(_)) => {
                    match self.stores.keys.get_key_by_id(&key.id).await? {
                        Some(fresh) => current = fresh,
                        None => return Ok(()),
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Conflict("the key kept changing".into()).into())
    }

    /// The health check: reconciles every valid key whose webhooks were last checked over
    /// [`HEALTH_CHECK_INTERVAL`] ago (or never), which also gives new apps their webhook and
    /// re-enables webhooks Apple disabled. Does nothing with push off. Returns the keys checked.
    pub async fn check_due(&self) -> usize {
        if self.public_url.is_none() {
            return 0;
        }
        let now = self.clock.now();
        let interval = chrono::Duration::from_std(HEALTH_CHECK_INTERVAL).unwrap_or_default();
        let mut checked = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page = match self
                .stores
                .keys
                .list_keys_page(cursor.as_deref(), crate::ports::KEY_LIST_PAGE_SIZE)
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(error = %err, "push health check could not list keys");
                    return checked;
                }
            };
            let mut due: Vec<&ApiKeyRecord> = page
                .items
                .iter()
                .filter(|k| {
                    k.status == KeyStatus::Valid
                        && is_app_store_connect(k)
                        && k.push
                            .as_ref()
                            .is_none_or(|p| now - p.checked_at >= interval)
                })
                .collect();
            due.extend(self.keys_with_new_apps(&page.items, &due).await);
            for key in due {
                match self.reconcile(&key.id).await {
                    Ok(_) => checked += 1,
                    Err(err) => {
                        tracing::warn!(key = %key.id, error = %err, "push health check failed")
                    }
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return checked,
            }
        }
    }

    /// Valid keys with push `active` (not yet `due`) whose last sweep saw an app they have no
    /// webhook for: a new app gets its webhook after the sweep that found it, not an hour later.
    /// One snapshot read for the page; nothing is asked of App Store Connect for keys without
    /// new apps. `degraded` keys wait for the hourly check (their missing webhook is the problem
    /// already known, and retrying it every sweep would spend requests).
    async fn keys_with_new_apps<'a>(
        &self,
        keys: &'a [ApiKeyRecord],
        due: &[&ApiKeyRecord],
    ) -> Vec<&'a ApiKeyRecord> {
        let candidates: Vec<&ApiKeyRecord> = keys
            .iter()
            .filter(|k| {
                k.status == KeyStatus::Valid
                    && k.push
                        .as_ref()
                        .is_some_and(|p| p.status == PushStatus::Active)
                    && !due.iter().any(|d| d.id == k.id)
            })
            .collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        let ids: Vec<KeyRecordId> = candidates.iter().map(|k| k.id.clone()).collect();
        let snapshots = match self.stores.sweeps.get_snapshots(&ids).await {
            Ok(snapshots) => snapshots,
            Err(err) => {
                tracing::warn!(error = %err, "push check could not read snapshots for new apps");
                return Vec::new();
            }
        };
        candidates
            .into_iter()
            .filter(|key| {
                let Some(stored) = snapshots.iter().find(|s| s.key_record_id == key.id) else {
                    return false;
                };
                let Ok(snapshot) = crate::domain::snapshot::KeySnapshot::from_json(&stored.state)
                else {
                    return false;
                };
                key.push
                    .as_ref()
                    .is_some_and(|p| has_app_without_webhook(p, snapshot.apps.keys()))
            })
            .collect()
    }

    /// Deletes the key's webhooks and their secrets (before the key itself is deleted). A
    /// webhook Apple will not delete keeps its secret, so a retry can finish the job.
    pub async fn remove(&self, key: &ApiKeyRecord) -> Result<(), PushError> {
        let Some(state) = &key.push else {
            return Ok(());
        };
        if state.webhooks.is_empty() {
            return Ok(());
        }
        let credentials = self.credentials(key).await?;
        let mut failure = None;
        for webhook in &state.webhooks {
            match self.admin.delete(&credentials, &webhook.webhook_id).await {
                Ok(()) => self.delete_secret(key, &webhook.reference).await,
                Err(err) => failure = Some(err),
            }
        }
        match failure {
            None => Ok(()),
            Some(err) => Err(PushError::Account(err)),
        }
    }
}

fn is_app_store_connect(key: &ApiKeyRecord) -> bool {
    matches!(
        key.account,
        crate::model::AccountRef::AppStoreConnect { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str, event: &str, state: DeliveryState) -> Delivery {
        Delivery {
            id: id.into(),
            event_id: Some(event.into()),
            state,
            detail: Some(format!("detail of {id}")),
            ping: false,
        }
    }

    #[test]
    fn only_notifications_that_never_got_through_are_lost() {
        use DeliveryState::*;
        let mut ping = delivery("p", "e-ping", Failed);
        ping.ping = true;
        let deliveries = vec![
            delivery("d1", "e1", Failed),
            delivery("d2", "e1", Failed),
            delivery("d3", "e2", Failed),
            delivery("d4", "e2", Succeeded),
            delivery("d5", "e3", Succeeded),
            delivery("d6", "e4", Failed),
            delivery("d7", "e4", Pending),
            ping,
        ];
        let lost: Vec<&str> = lost_deliveries(&deliveries)
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        // e1 twice failed (the last failure is the template); e2 got through on a redelivery;
        // e4 is still being sent; pings are not recovered.
        assert_eq!(lost, vec!["d2"]);
        assert!(lost_deliveries(&[]).is_empty());
    }

    #[test]
    fn an_app_without_a_webhook_is_found() {
        let state = PushState {
            status: PushStatus::Active,
            message: None,
            webhooks: vec![PushWebhook {
                reference: "r".into(),
                app_id: "a1".into(),
                webhook_id: "w".into(),
            }],
            checked_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        };
        let seen = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!has_app_without_webhook(&state, seen(&["a1"]).iter()));
        assert!(!has_app_without_webhook(&state, seen(&[]).iter()));
        assert!(has_app_without_webhook(&state, seen(&["a1", "a2"]).iter()));
    }
}
