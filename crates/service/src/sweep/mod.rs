//! The sweep: reads every active key's store account and records each transition once. One
//! public entry point sweeps a set of key records ([`SweepService::sweep_records`]); the per-key
//! pipeline is in [`key`] (observe -> diff -> events -> route -> commit), the key's status
//! bookkeeping in [`key_status`], and the sending in [`crate::outbox`].
//!
//! Each key's requests stay within shipwatch's share of its hourly App Store Connect allowance
//! ([`crate::rate_budget`]): a key that would go over is skipped until the next hour, one whose
//! allowance runs low is swept less often.

mod credentials;
mod key;
mod key_status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use shipwatch_shared::clock::Clock;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::accounts::StoreAccounts;
use crate::keys::KeyValidator;
use crate::model::{ApiKeyRecord, KeyRecordId, KeyStatus};
use crate::outbox::{Outbox, OutboxConfig};
use crate::ports::{Deliverer, KEY_LIST_PAGE_SIZE, Stores};
use crate::rate_budget::BudgetPolicy;
use credentials::CredentialCache;

/// Tuning of the sweep; [`Default`] is what production runs.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// Keys read from their store at the same time.
    pub max_concurrent_keys: usize,
    /// Longest one key's reads may take, retries included, before the key is skipped this time.
    /// Well inside the sweep interval, so one hanging key never stretches a sweep past the next.
    pub key_deadline: Duration,
    /// Wait after a 429 that did not say how long (`Retry-After`).
    pub rate_limit_pause: Duration,
    /// How often `last_swept_at` of an unchanged key is refreshed (a key write); other writes
    /// happen only when something changed.
    pub swept_at_refresh: TimeDelta,
    /// shipwatch's share of each key's hourly App Store Connect allowance (`ASC_BUDGET_SHARE`).
    pub budget: BudgetPolicy,
    /// How long a key's credentials read from the secret store are reused (a secret read per key
    /// and sweep would dominate the cost of large deployments; a key's secret never changes).
    pub credentials_ttl: TimeDelta,
    /// The delivery pass that follows each full sweep.
    pub outbox: OutboxConfig,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            max_concurrent_keys: 8,
            key_deadline: key_deadline_for(DEFAULT_SWEEP_INTERVAL),
            rate_limit_pause: Duration::from_secs(60),
            swept_at_refresh: TimeDelta::minutes(10),
            budget: BudgetPolicy::default(),
            credentials_ttl: TimeDelta::hours(1),
            outbox: OutboxConfig::default(),
        }
    }
}

/// What one sweep did (the `POST /v1/sweeps` answer; also logged).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Keys whose account was read.
    pub keys: usize,
    /// Apps those keys see.
    pub apps: usize,
    /// Requests sent to the stores (App Store Connect).
    pub asc_requests: u64,
    /// Events recorded (transitions and key status changes).
    pub events: usize,
    /// Deliveries queued for those events.
    pub deliveries: usize,
    /// Keys skipped this time (store unavailable or rate limited, over budget, store errors).
    pub keys_skipped: usize,
    /// Of the skipped keys, those whose App Store Connect budget is spent or paced (not failures).
    pub keys_over_budget: usize,
    /// Of the skipped keys, those the store failed for: worth sweeping again soon (a fanned-out
    /// shard with any is retried by the queue).
    pub keys_failed: usize,
    /// Keys re-validated because their retry time had come.
    pub keys_revalidated: usize,
    /// Delivery attempts made by this run's delivery pass.
    pub delivery_attempts: usize,
}

/// One page of the key listing, as the sweep uses it ([`SweepService::keys_page`]).
#[derive(Debug)]
pub struct KeysPage {
    /// Keys of the page re-validated because their retry time had come.
    pub revalidated: usize,
    /// The page's keys that sweeps read (`valid` and `action_required`).
    pub sweepable: Vec<ApiKeyRecord>,
    /// Where the next page starts; `None` after the last.
    pub next_cursor: Option<String>,
}

impl SweepReport {
    fn add(&mut self, key: &key::KeyOutcome) {
        self.keys += usize::from(key.read);
        self.keys_skipped += usize::from(key.skipped);
        self.keys_over_budget += usize::from(key.over_budget);
        self.keys_failed += usize::from(key.failed);
        self.apps += key.apps;
        self.asc_requests += key.asc_requests;
        self.events += key.events;
        self.deliveries += key.deliveries;
    }
}

/// The sweep service. Cheap to clone.
#[derive(Clone)]
pub struct SweepService {
    inner: Arc<Inner>,
    outbox: Outbox,
}

/// What every key's sweep shares.
pub(crate) struct Inner {
    pub(crate) stores: Stores,
    pub(crate) accounts: Arc<dyn StoreAccounts>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: SweepConfig,
    /// Set once, by [`SweepService::with_validator`].
    validator: std::sync::OnceLock<KeyValidator>,
    /// Keys their store rate-limited, with when they may be read again (per process).
    pub(crate) rate_limited_until: Mutex<HashMap<KeyRecordId, DateTime<Utc>>>,
    pub(crate) credentials: CredentialCache,
}

/// The sweep interval of a deployment that sets none (`SWEEP_INTERVAL_SECONDS`).
const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A key's deadline for a sweep every `interval`: at most 40 % of it (and 25 s), at least 5 s.
pub fn key_deadline_for(interval: Duration) -> Duration {
    interval
        .mul_f64(0.4)
        .clamp(Duration::from_secs(5), Duration::from_secs(25))
}

/// Key records read at the same time when a shard names its keys.
const KEY_READ_CONCURRENCY: usize = 32;

impl SweepService {
    pub fn new(
        stores: Stores,
        accounts: Arc<dyn StoreAccounts>,
        deliverer: Arc<dyn Deliverer>,
        clock: Arc<dyn Clock>,
        config: SweepConfig,
    ) -> Self {
        let outbox = Outbox::new(
            stores.clone(),
            deliverer,
            clock.clone(),
            config.outbox.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                stores,
                accounts,
                clock,
                credentials: CredentialCache::new(config.credentials_ttl),
                config,
                validator: std::sync::OnceLock::new(),
                rate_limited_until: Mutex::new(HashMap::new()),
            }),
            outbox,
        }
    }

    /// Also re-validates keys left in `validating` whose retry time has passed, at the start of
    /// each [`run`](Self::run).
    pub fn with_validator(self, validator: KeyValidator) -> Self {
        if self.inner.validator.set(validator).is_err() {
            tracing::warn!("sweep already has a key validator; the first one stays");
        }
        self
    }

    /// The outbox the delivery pass drains.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// One full sweep: due re-validations, every `valid` and `action_required` key (the latter to
    /// notice accepted agreements), a page of keys at a time, then the delivery pass.
    pub async fn run(&self) -> SweepReport {
        let span = tracing::info_span!("sweep", sweep = %uuid::Uuid::new_v4());
        async {
            // Pages feed one pool of key tasks, so a slow key does not hold up the next page.
            let mut sweeping = KeysInFlight::new(self.inner.clone());
            let mut revalidated = 0;
            let mut cursor = None;
            while let Some(page) = self.keys_page(cursor.as_deref()).await {
                revalidated += page.revalidated;
                sweeping.add(page.sweepable).await;
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            let mut report = sweeping.finish().await;
            report.keys_revalidated = revalidated;
            report.delivery_attempts = self.deliver_due().await;
            tracing::info!(?report, "sweep finished");
            report
        }
        .instrument(span)
        .await
    }

    /// One page of the listing of every key ([`KEY_LIST_PAGE_SIZE`] keys; `cursor` from the
    /// previous page): re-validates the due ones among them (with a validator), and returns how
    /// many, with the keys of the page this sweep reads (`valid` and `action_required`). A key
    /// validated now is swept from the next sweep on. `None` when the store cannot list keys: the
    /// keys not reached wait for the next sweep.
    pub async fn keys_page(&self, cursor: Option<&str>) -> Option<KeysPage> {
        let page = match self
            .inner
            .stores
            .keys
            .list_keys_page(cursor, KEY_LIST_PAGE_SIZE)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                tracing::error!(error = %err, "sweep could not list keys");
                return None;
            }
        };
        let revalidated = match self.inner.validator.get() {
            Some(validator) => validator.validate_due_among(&page.items).await,
            None => 0,
        };
        Some(KeysPage {
            revalidated,
            sweepable: page.items.into_iter().filter(is_swept).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Sweeps the given key records (those that are `valid` or `action_required`; others are
    /// passed over), at most `max_concurrent_keys` at a time, without the delivery pass.
    pub async fn sweep_records(&self, keys: Vec<ApiKeyRecord>) -> SweepReport {
        let mut sweeping = KeysInFlight::new(self.inner.clone());
        sweeping.add(keys).await;
        sweeping.finish().await
    }

    /// As [`sweep_records`](Self::sweep_records), for keys named by id (a fanned-out shard):
    /// each followed by [`deliver_due`](Self::deliver_due).
    pub async fn run_for_keys(&self, ids: &[KeyRecordId]) -> SweepReport {
        use futures_util::stream::{self, StreamExt};
        // A shard names up to thousands of keys: read them with a bounded concurrency, not one by one.
        let store = self.inner.stores.keys.clone();
        let reads: Vec<_> = stream::iter(ids.iter().cloned())
            .map(|id| {
                let store = store.clone();
                async move { (store.get_key_by_id(&id).await, id) }
            })
            .buffer_unordered(KEY_READ_CONCURRENCY)
            .collect()
            .await;
        let mut keys = Vec::with_capacity(ids.len());
        let mut unreadable = 0;
        for (read, id) in reads {
            match read {
                Ok(Some(key)) => keys.push(key),
                // Deleted since it was listed: nothing to sweep.
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(key = %id, error = %err, "could not read key to sweep");
                    unreadable += 1;
                }
            }
        }
        let mut report = self.sweep_records(keys).await;
        report.keys_skipped += unreadable;
        report.keys_failed += unreadable;
        report
    }

    /// The delivery pass ([`Outbox::deliver_due`]). Returns the number of attempts made.
    pub async fn deliver_due(&self) -> usize {
        self.outbox.deliver_due().await
    }

    /// The delivery pass and the retries due within `horizon` ([`Outbox::deliver_due_and_soon`]).
    pub async fn deliver_due_and_soon(&self, horizon: Duration) -> usize {
        self.outbox.deliver_due_and_soon(horizon).await
    }
}

/// A report as JSON (it is plain data; the fallback only guards against a serializer bug).
pub fn report_json(report: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(report).unwrap_or_else(|err| {
        tracing::error!(error = %err, "sweep report could not be serialized");
        serde_json::Value::Null
    })
}

/// Keys the sweep reads: working ones, and blocked ones (to notice the block was lifted).
/// Key sweeps under way, at most `max_concurrent_keys` at a time. A key's task is spawned only
/// once it has a slot, so memory holds the running keys, not every key given so far.
struct KeysInFlight {
    inner: Arc<Inner>,
    slots: Arc<Semaphore>,
    tasks: JoinSet<key::KeyOutcome>,
    report: SweepReport,
}

impl KeysInFlight {
    fn new(inner: Arc<Inner>) -> Self {
        let slots = Arc::new(Semaphore::new(inner.config.max_concurrent_keys.max(1)));
        Self {
            inner,
            slots,
            tasks: JoinSet::new(),
            report: SweepReport::default(),
        }
    }

    /// Starts the sweepable ones among `keys` (`valid` or `action_required`), waiting for free
    /// slots as needed.
    async fn add(&mut self, keys: Vec<ApiKeyRecord>) {
        for key in keys.into_iter().filter(is_swept) {
            // The semaphore is never closed, so acquiring only waits for a free slot.
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return;
            };
            while let Some(joined) = self.tasks.try_join_next() {
                self.record(joined);
            }
            let inner = self.inner.clone();
            let span = tracing::info_span!("key", key = %key.id, team = %key.team_id);
            self.tasks.spawn(
                async move {
                    let _permit = permit;
                    inner.sweep_key(key).await
                }
                .instrument(span),
            );
        }
    }

    async fn finish(mut self) -> SweepReport {
        while let Some(joined) = self.tasks.join_next().await {
            self.record(joined);
        }
        self.report
    }

    fn record(&mut self, joined: Result<key::KeyOutcome, tokio::task::JoinError>) {
        match joined {
            Ok(outcome) => self.report.add(&outcome),
            Err(err) => {
                // A panicking key must not take the others down; it is skipped this time.
                tracing::error!(error = %err, "a key's sweep task failed");
                self.report.keys_skipped += 1;
                self.report.keys_failed += 1;
            }
        }
    }
}

fn is_swept(key: &ApiKeyRecord) -> bool {
    matches!(key.status, KeyStatus::Valid | KeyStatus::ActionRequired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_deadline_stays_well_inside_the_sweep_interval() {
        assert!(SweepConfig::default().key_deadline <= DEFAULT_SWEEP_INTERVAL / 2);
        assert_eq!(
            key_deadline_for(Duration::from_secs(60)),
            Duration::from_secs(24)
        );
        assert_eq!(
            key_deadline_for(Duration::from_secs(600)),
            Duration::from_secs(25)
        );
        assert_eq!(
            key_deadline_for(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }
}
