//! The sweep: reads every active key's App Store Connect account, records each transition once,
//! and sends the resulting deliveries.
//!
//! Per key: one `GET /v1/apps` (with versions included, all pages), one `GET /v1/builds` page of the
//! newest uploads, and a phased-release read only for versions in flight
//! ([`phased_release_checks`]). The new snapshot, its events and their deliveries are committed
//! together, conditionally on the snapshot version read, so when two sweeps overlap only one of
//! them records a transition. Key status changes (revoked, role lowered, agreements, recovered)
//! are conditional writes of the key record, and only the writer that wins announces them.
//!
//! Each key's requests stay within shipwatch's share of its hourly App Store Connect allowance
//! ([`crate::rate_budget`]): a key that would go over is skipped until the next hour, one whose
//! allowance runs low is swept less often.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use shipwatch_shared::asc::{AscClient, AscError, AscSession, PhasedRelease, RateLimit};
use shipwatch_shared::clock::Clock;
use shipwatch_shared::credentials::{ApiCredentials, PrivateKey};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::domain::diff::diff;
use crate::domain::events::{
    EventContext, account_action_required, event_for_change, key_status_changed,
};
use crate::domain::routing::destinations_for;
use crate::domain::snapshot::{KeySnapshot, phased_release_checks};
use crate::keys::{
    KeyValidator, MESSAGE_AGREEMENTS_REQUIRED, MESSAGE_INSUFFICIENT_ROLE, MESSAGE_NOT_AUTHORIZED,
};
use crate::model::{
    ApiKeyRecord, AscUsage, DeliveryAttempt, DeliveryRecord, DeliveryStatus, DestinationSecrets,
    EventRecord, KeyRecordId, KeyStatus, KeyStatusCode, SecretName, StoredSnapshot, TeamId,
};
use crate::ports::{Deliverer, StoreError, Stores, SweepCommit};
use crate::rate_budget::{self, Admission, BudgetPolicy};

/// Tuning of the sweep; [`Default`] is what production runs.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// Keys read from App Store Connect at the same time.
    pub max_concurrent_keys: usize,
    /// Newest builds read per key (one page; Apple allows at most 200).
    pub recent_builds: u32,
    /// Extra tries of a call that failed with 5xx, a timeout or a transport error.
    pub asc_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub asc_retry_backoff: Duration,
    /// Longest one key's reads may take before the key is skipped this time.
    pub key_deadline: Duration,
    /// Wait after a 429 that did not say how long (`Retry-After`).
    pub rate_limit_pause: Duration,
    /// How often `last_swept_at` of an unchanged key is refreshed (a key write); other writes
    /// happen only when something changed.
    pub swept_at_refresh: TimeDelta,
    /// Due deliveries read per round of the delivery pass.
    pub delivery_batch: u32,
    /// Deliveries sent at the same time.
    pub max_concurrent_deliveries: usize,
    /// How long a sender holds a claimed delivery; a crashed sender's claim expires after it.
    pub delivery_lease: TimeDelta,
    /// Wait after the n-th failed attempt (the last entry repeats).
    pub delivery_backoff: Vec<TimeDelta>,
    /// Attempts before a delivery is given up as failed.
    pub max_delivery_attempts: usize,
    /// shipwatch's share of each key's hourly App Store Connect allowance (`ASC_BUDGET_SHARE`).
    pub budget: BudgetPolicy,
    /// How long a key's private key read from the secret store is reused (a secret read per key
    /// and sweep would dominate the cost of large deployments; a key's `.p8` never changes).
    pub credentials_ttl: TimeDelta,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            max_concurrent_keys: 8,
            recent_builds: 200,
            asc_retries: 2,
            asc_retry_backoff: Duration::from_millis(500),
            key_deadline: Duration::from_secs(120),
            rate_limit_pause: Duration::from_secs(60),
            swept_at_refresh: TimeDelta::minutes(10),
            delivery_batch: 100,
            max_concurrent_deliveries: 8,
            delivery_lease: TimeDelta::minutes(2),
            delivery_backoff: vec![
                TimeDelta::seconds(30),
                TimeDelta::minutes(2),
                TimeDelta::minutes(10),
                TimeDelta::hours(1),
            ],
            max_delivery_attempts: 6,
            budget: BudgetPolicy::default(),
            credentials_ttl: TimeDelta::hours(1),
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
    /// Requests sent to App Store Connect.
    pub asc_requests: u64,
    /// Events recorded (transitions and key status changes).
    pub events: usize,
    /// Deliveries queued for those events.
    pub deliveries: usize,
    /// Keys skipped this time (App Store Connect unavailable or rate limited, over budget, store
    /// errors).
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

impl SweepReport {
    fn add(&mut self, key: &KeyOutcome) {
        if key.read {
            self.keys += 1;
        }
        if key.skipped {
            self.keys_skipped += 1;
        }
        if key.over_budget {
            self.keys_over_budget += 1;
        }
        if key.failed {
            self.keys_failed += 1;
        }
        self.apps += key.apps;
        self.asc_requests += key.asc_requests;
        self.events += key.events;
        self.deliveries += key.deliveries;
    }
}

/// What sweeping one key did.
#[derive(Clone, Debug, Default)]
struct KeyOutcome {
    read: bool,
    skipped: bool,
    /// Skipped because of the key's App Store Connect budget.
    over_budget: bool,
    /// Skipped because of a store error.
    failed: bool,
    apps: usize,
    asc_requests: u64,
    events: usize,
    deliveries: usize,
}

/// Why a key's read ended early.
#[derive(Debug, thiserror::Error)]
enum KeyReadError {
    #[error(transparent)]
    Asc(#[from] AscError),
    #[error("reading App Store Connect took longer than the key's deadline")]
    Deadline,
}

/// The sweep service. Cheap to clone.
#[derive(Clone)]
pub struct SweepService {
    inner: Arc<Inner>,
}

struct Inner {
    stores: Stores,
    asc: AscClient,
    deliverer: Arc<dyn Deliverer>,
    clock: Arc<dyn Clock>,
    config: SweepConfig,
    /// Set once, by [`SweepService::with_validator`].
    validator: std::sync::OnceLock<KeyValidator>,
    /// Keys App Store Connect rate-limited, with when they may be read again (per process).
    rate_limited_until: Mutex<HashMap<KeyRecordId, DateTime<Utc>>>,
    /// Private keys read from the secret store, with when they were read (per process).
    credentials: Mutex<HashMap<KeyRecordId, CachedCredentials>>,
}

/// A key's private key and when it was read from the secret store.
type CachedCredentials = (Arc<ApiCredentials>, DateTime<Utc>);

/// Most private keys kept in [`Inner::credentials`]; beyond it the cache starts over.
const MAX_CACHED_CREDENTIALS: usize = 100_000;
/// Key records read at the same time when a shard names its keys.
const KEY_READ_CONCURRENCY: usize = 32;

/// Why no App Store Connect session could be made for a key (never key material).
struct NoSession {
    reason: &'static str,
    /// A store outage (worth retrying soon) rather than a problem with the key itself.
    transient: bool,
}

/// What a key's sweep spent of its App Store Connect allowance.
#[derive(Clone, Copy, Debug)]
struct Spent {
    requests: u32,
    report: Option<RateLimit>,
}

impl SweepService {
    pub fn new(
        stores: Stores,
        asc: AscClient,
        deliverer: Arc<dyn Deliverer>,
        clock: Arc<dyn Clock>,
        config: SweepConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                stores,
                asc,
                deliverer,
                clock,
                config,
                validator: std::sync::OnceLock::new(),
                rate_limited_until: Mutex::new(HashMap::new()),
                credentials: Mutex::new(HashMap::new()),
            }),
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

    /// One full sweep: due re-validations, every `valid` and `action_required` key (the latter to
    /// notice accepted agreements), then the delivery pass.
    pub async fn run(&self) -> SweepReport {
        let (revalidated, keys) = self.keys_to_sweep().await;
        let mut report = self.sweep_records(keys).await;
        report.keys_revalidated = revalidated;
        report.delivery_attempts = self.deliver_due().await;
        tracing::info!(?report, "sweep finished");
        report
    }

    /// Lists every key once (the sweep's most expensive read), re-validates the due ones among
    /// them (with a validator), and returns how many, with the keys this sweep reads (`valid` and
    /// `action_required`), oldest first. A key validated now is swept from the next sweep on.
    pub async fn keys_to_sweep(&self) -> (usize, Vec<ApiKeyRecord>) {
        let keys = match self.inner.stores.keys.list_all_keys().await {
            Ok(keys) => keys,
            Err(err) => {
                tracing::error!(error = %err, "sweep could not list keys");
                return (0, Vec::new());
            }
        };
        let revalidated = match self.inner.validator.get() {
            Some(validator) => validator.validate_due_among(&keys).await,
            None => 0,
        };
        (revalidated, keys.into_iter().filter(is_swept).collect())
    }

    /// Sweeps the given key records (those that are `valid` or `action_required`), without the
    /// delivery pass.
    pub async fn sweep_records(&self, keys: Vec<ApiKeyRecord>) -> SweepReport {
        self.sweep_keys(keys).await
    }

    /// Sweeps the given keys only (those that are `valid` or `action_required`), without the
    /// delivery pass: for fanning a sweep out over workers, each followed by [`deliver_due`](Self::deliver_due).
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
        let mut report = self.sweep_keys(keys).await;
        report.keys_skipped += unreadable;
        report.keys_failed += unreadable;
        report
    }

    async fn sweep_keys(&self, keys: Vec<ApiKeyRecord>) -> SweepReport {
        let semaphore = Arc::new(Semaphore::new(self.inner.config.max_concurrent_keys.max(1)));
        let mut tasks = JoinSet::new();
        for key in keys.into_iter().filter(is_swept) {
            let inner = self.inner.clone();
            let semaphore = semaphore.clone();
            tasks.spawn(async move {
                // The semaphore is never closed, so acquiring only waits for a free slot.
                let _permit = semaphore.acquire_owned().await.ok();
                inner.sweep_key(key).await
            });
        }
        let mut report = SweepReport::default();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(outcome) => report.add(&outcome),
                Err(err) => {
                    // A panicking key must not take the others down; it is skipped this time.
                    tracing::error!(error = %err, "a key's sweep task failed");
                    report.keys_skipped += 1;
                    report.keys_failed += 1;
                }
            }
        }
        report
    }

    /// Sends every due delivery once (claimed with a lease, so overlapping passes never send the
    /// same delivery twice) and records the attempt. Returns the number of attempts made.
    pub async fn deliver_due(&self) -> usize {
        // Bounded rounds: every claimed delivery leaves the due set, so this only loops while a
        // backlog larger than one batch drains.
        const MAX_ROUNDS: usize = 20;
        const MAX_TRANSIENT_ROUNDS: usize = 3;
        let mut attempts = 0;
        let mut transient_rounds = 0;
        for _ in 0..MAX_ROUNDS {
            let now = self.inner.clock.now();
            let due = match self
                .inner
                .stores
                .sweeps
                .due_deliveries(now, self.inner.config.delivery_batch)
                .await
            {
                Ok(due) => due,
                Err(err) => {
                    tracing::warn!(error = %err, "could not read due deliveries");
                    break;
                }
            };
            let batch_was_full = due.len() >= self.inner.config.delivery_batch as usize;
            let semaphore = Arc::new(Semaphore::new(
                self.inner.config.max_concurrent_deliveries.max(1),
            ));
            let mut tasks = JoinSet::new();
            for delivery in due {
                let inner = self.inner.clone();
                let semaphore = semaphore.clone();
                tasks.spawn(async move {
                    let _permit = semaphore.acquire_owned().await.ok();
                    inner.deliver_one(delivery).await
                });
            }
            let mut attempted_this_round = 0;
            let mut postponed = 0;
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(Sent::Attempted) => attempted_this_round += 1,
                    Ok(Sent::TakenByOther) => {}
                    Ok(Sent::Postponed) => postponed += 1,
                    Err(err) => tracing::error!(error = %err, "a delivery task failed"),
                }
            }
            attempts += attempted_this_round;
            if postponed > 0 && transient_rounds < MAX_TRANSIENT_ROUNDS {
                // Store hiccups (e.g. two claims colliding in a transaction): try those again soon.
                transient_rounds += 1;
                tokio::time::sleep(Duration::from_millis(50 * transient_rounds as u64)).await;
                continue;
            }
            if !batch_was_full || attempted_this_round == 0 {
                break;
            }
        }
        attempts
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
fn is_swept(key: &ApiKeyRecord) -> bool {
    matches!(key.status, KeyStatus::Valid | KeyStatus::ActionRequired)
}

impl Inner {
    async fn sweep_key(&self, key: ApiKeyRecord) -> KeyOutcome {
        let mut outcome = KeyOutcome::default();
        if self.is_rate_limited(&key.id) {
            tracing::info!(key = %key.id, "key is rate limited by App Store Connect; skipped this time");
            outcome.skipped = true;
            return outcome;
        }
        match rate_budget::admit(
            &self.config.budget,
            key.asc_usage.as_ref(),
            self.clock.now(),
        ) {
            Admission::Sweep => {}
            Admission::OverBudget { until } => {
                tracing::info!(key = %key.id, %until, "key's App Store Connect budget for this hour is spent; skipped");
                outcome.skipped = true;
                outcome.over_budget = true;
                return outcome;
            }
            Admission::Paced { until } => {
                tracing::debug!(key = %key.id, %until, "key's App Store Connect budget is low; swept less often");
                outcome.skipped = true;
                outcome.over_budget = true;
                return outcome;
            }
        }
        let session = match self.session_for(&key).await {
            Ok(session) => session,
            Err(no_session) => {
                tracing::warn!(key = %key.id, reason = no_session.reason, "key skipped");
                outcome.skipped = true;
                outcome.failed = no_session.transient;
                return outcome;
            }
        };
        let stored = match self.stores.sweeps.get_snapshot(&key.id).await {
            Ok(stored) => stored,
            Err(err) => {
                tracing::warn!(key = %key.id, error = %err, "could not read the key's snapshot; skipped");
                outcome.skipped = true;
                outcome.failed = true;
                return outcome;
            }
        };
        let expected_version = stored.as_ref().map_or(0, |stored| stored.version);
        let prev = stored.as_ref().and_then(|stored| {
            KeySnapshot::from_json(&stored.state)
                .map_err(|err| {
                    // Unreadable: start over with a silent baseline rather than announce everything.
                    tracing::error!(key = %key.id, error = %err, "stored snapshot unreadable; taking a new baseline");
                })
                .ok()
        });

        let read = tokio::time::timeout(
            self.config.key_deadline,
            self.read_account(&session, prev.as_ref()),
        )
        .await
        .unwrap_or(Err(KeyReadError::Deadline));
        outcome.asc_requests = session.requests_sent();
        let spent = Spent {
            requests: u32::try_from(outcome.asc_requests).unwrap_or(u32::MAX),
            report: session.last_rate_limit(),
        };
        let now = self.clock.now();
        let next = match read {
            Ok(next) => next,
            Err(KeyReadError::Asc(err)) => {
                let (events, deliveries) = self.key_failed(&key, &err, spent, now).await;
                outcome.events = events;
                outcome.deliveries = deliveries;
                outcome.skipped = true;
                return outcome;
            }
            Err(KeyReadError::Deadline) => {
                tracing::warn!(key = %key.id, "App Store Connect reads took too long; key skipped this time");
                self.save_usage(&key, spent, now).await;
                outcome.skipped = true;
                return outcome;
            }
        };
        outcome.read = true;
        outcome.apps = next.apps.len();

        let changed = prev.as_ref() != Some(&next);
        let mut committed = false;
        if changed {
            match self
                .commit(&key, prev.as_ref(), &next, expected_version, now)
                .await
            {
                Ok((events, deliveries)) => {
                    committed = true;
                    outcome.events += events;
                    outcome.deliveries += deliveries;
                }
                Err(StoreError::Conflict(_)) => {
                    tracing::info!(key = %key.id, "another sweep recorded this key first; result discarded");
                }
                Err(err) => {
                    tracing::warn!(key = %key.id, error = %err, "could not store the key's sweep");
                    outcome.skipped = true;
                    outcome.failed = true;
                }
            }
        }
        let (events, deliveries) = self
            .key_read_ok(&key, next.apps.len(), committed, spent, now)
            .await;
        outcome.events += events;
        outcome.deliveries += deliveries;
        outcome
    }

    /// A session signing as the key, or why none can be made (logged; never key material).
    async fn session_for(&self, key: &ApiKeyRecord) -> Result<AscSession, NoSession> {
        let now = self.clock.now();
        if let Some(credentials) = self.cached_credentials(key, now) {
            return Ok(self.asc.session(credentials));
        }
        let pem = match self.stores.secrets.get_secret(&key.secret_name()).await {
            Ok(Some(pem)) => pem,
            Ok(None) => {
                return Err(NoSession {
                    reason: "the key's private key is missing from the secret store",
                    transient: false,
                });
            }
            Err(_) => {
                return Err(NoSession {
                    reason: "the secret store is unavailable",
                    transient: true,
                });
            }
        };
        let private_key = PrivateKey::from_pem(pem.expose().as_bytes()).map_err(|_| NoSession {
            reason: "the stored private key cannot be read",
            transient: false,
        })?;
        let credentials = Arc::new(ApiCredentials {
            key_id: key.key_id.clone(),
            issuer_id: key.issuer_id.clone(),
            private_key,
        });
        let mut cache = self
            .credentials
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= MAX_CACHED_CREDENTIALS {
            cache.clear();
        }
        cache.insert(key.id.clone(), (credentials.clone(), now));
        Ok(self.asc.session(credentials))
    }

    /// The key's private key as read within `credentials_ttl`, if it still matches the record.
    fn cached_credentials(
        &self,
        key: &ApiKeyRecord,
        now: DateTime<Utc>,
    ) -> Option<Arc<ApiCredentials>> {
        let cache = self
            .credentials
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (credentials, read_at) = cache.get(&key.id)?;
        let fresh = now - *read_at < self.config.credentials_ttl;
        let same_key = credentials.key_id == key.key_id && credentials.issuer_id == key.issuer_id;
        (fresh && same_key).then(|| credentials.clone())
    }

    /// The key's budget bookkeeping after a sweep that spent `spent` (see [`rate_budget`]).
    fn settle_usage(
        &self,
        key: &ApiKeyRecord,
        spent: Spent,
        now: DateTime<Utc>,
    ) -> Option<AscUsage> {
        rate_budget::settle(
            &self.config.budget,
            key.asc_usage.as_ref(),
            spent.requests,
            spent.report,
            now,
        )
    }

    /// Stores the key's budget bookkeeping when it changed. A concurrent key write wins the
    /// record; this sweep's requests are then added to the fresh record once more.
    async fn save_usage(&self, key: &ApiKeyRecord, spent: Spent, now: DateTime<Utc>) {
        let mut current = key.clone();
        for _ in 0..2 {
            let usage = self.settle_usage(&current, spent, now);
            if usage == current.asc_usage {
                return;
            }
            let mut next = current.clone();
            next.asc_usage = usage;
            next.revision = current.revision + 1;
            match self.stores.keys.update_key(&next, current.revision).await {
                Ok(()) => return,
                Err(StoreError::Conflict(_)) => {
                    match self.stores.keys.get_key_by_id(&key.id).await {
                        Ok(Some(fresh)) => current = fresh,
                        // Deleted meanwhile, or unreadable: nothing to count on.
                        _ => return,
                    }
                }
                Err(err) => {
                    tracing::warn!(key = %key.id, error = %err, "could not store the key's App Store Connect usage");
                    return;
                }
            }
        }
    }

    /// Apps with versions, recent builds, and the phased releases in flight, as a snapshot.
    async fn read_account(
        &self,
        session: &AscSession,
        prev: Option<&KeySnapshot>,
    ) -> Result<KeySnapshot, KeyReadError> {
        let apps = self
            .with_retries(|| session.list_apps_with_versions())
            .await?;
        let builds = self
            .with_retries(|| session.list_recent_builds(self.config.recent_builds))
            .await?;
        let mut phased: BTreeMap<String, Option<PhasedRelease>> = BTreeMap::new();
        for version_id in phased_release_checks(prev, &apps) {
            let read = self
                .with_retries(|| session.get_phased_release(&version_id))
                .await?;
            phased.insert(version_id, read);
        }
        Ok(KeySnapshot::observe(
            prev,
            &apps,
            &builds,
            &phased,
            self.clock.now(),
        ))
    }

    /// Runs `call`, trying again after 5xx, timeouts and transport errors (not after 429: a rate
    /// limit is honoured by skipping the key).
    async fn with_retries<T, F, Fut>(&self, call: F) -> Result<T, AscError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, AscError>>,
    {
        let mut wait = self.config.asc_retry_backoff;
        let mut retries_left = self.config.asc_retries;
        loop {
            match call().await {
                Err(err)
                    if retries_left > 0
                        && err.is_retryable()
                        && !matches!(err, AscError::RateLimited { .. }) =>
                {
                    retries_left -= 1;
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                other => return other,
            }
        }
    }

    /// Stores the snapshot with its events and deliveries, all or nothing.
    async fn commit(
        &self,
        key: &ApiKeyRecord,
        prev: Option<&KeySnapshot>,
        next: &KeySnapshot,
        expected_version: u64,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError> {
        let ctx = EventContext {
            team_id: key.team_id.clone(),
            key_record_id: key.id.clone(),
            time: now,
        };
        let events: Vec<EventRecord> = diff(prev, next)
            .iter()
            .map(|change| event_for_change(change, &ctx))
            .collect();
        let deliveries = self.route(&key.team_id, &events, now).await?;
        let state = next
            .to_json()
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let commit = SweepCommit {
            snapshot: StoredSnapshot {
                key_record_id: key.id.clone(),
                team_id: key.team_id.clone(),
                version: expected_version + 1,
                state,
                updated_at: now,
            },
            expected_version,
            events,
            deliveries,
        };
        match self.stores.sweeps.commit_sweep(&commit).await {
            Err(StoreError::Conflict(_)) => {
                // DynamoDB may cancel two colliding transactions both; when nobody committed
                // (the stored version is unchanged), this sweep's result is still the one to keep.
                tokio::time::sleep(Duration::from_millis(25)).await;
                let stored_version = self
                    .stores
                    .sweeps
                    .get_snapshot(&key.id)
                    .await?
                    .map_or(0, |stored| stored.version);
                if stored_version != expected_version {
                    return Err(StoreError::Conflict("another sweep committed first".into()));
                }
                self.stores.sweeps.commit_sweep(&commit).await?;
            }
            other => other?,
        }
        for event in &commit.events {
            tracing::info!(key = %key.id, event = %event.id, r#type = %event.event_type, summary = %event.summary, "event");
        }
        Ok((commit.events.len(), commit.deliveries.len()))
    }

    /// One pending delivery per destination the team's workflows route each event to.
    async fn route(
        &self,
        team: &TeamId,
        events: &[EventRecord],
        now: DateTime<Utc>,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let workflows = self.stores.workflows.list_workflows(team).await?;
        Ok(events
            .iter()
            .flat_map(|event| {
                destinations_for(event, &workflows)
                    .into_iter()
                    .map(move |destination_id| DeliveryRecord {
                        id: crate::model::DeliveryId::generate(),
                        event_id: event.id.clone(),
                        team_id: event.team_id.clone(),
                        destination_id,
                        status: DeliveryStatus::Pending,
                        attempts: Vec::new(),
                        next_attempt_at: Some(now),
                        lease_until: None,
                        created_at: now,
                        revision: 1,
                    })
            })
            .collect())
    }

    /// A read failed: 401/403/agreements change the key's status (announced once); anything
    /// else skips the key this time without any event.
    async fn key_failed(
        &self,
        key: &ApiKeyRecord,
        err: &AscError,
        spent: Spent,
        now: DateTime<Utc>,
    ) -> (usize, usize) {
        let (status, code, message) = match err {
            AscError::NotAuthorized { .. } => (
                KeyStatus::Invalid,
                KeyStatusCode::NotAuthorized,
                MESSAGE_NOT_AUTHORIZED,
            ),
            AscError::Forbidden { .. } => (
                KeyStatus::Invalid,
                KeyStatusCode::InsufficientRole,
                MESSAGE_INSUFFICIENT_ROLE,
            ),
            AscError::AgreementsRequired { .. } => (
                KeyStatus::ActionRequired,
                KeyStatusCode::AgreementsRequired,
                MESSAGE_AGREEMENTS_REQUIRED,
            ),
            AscError::RateLimited { retry_after, .. } => {
                let pause = retry_after.unwrap_or(self.config.rate_limit_pause);
                let until = now + TimeDelta::from_std(pause).unwrap_or(TimeDelta::minutes(1));
                self.note_rate_limit(&key.id, until);
                tracing::warn!(key = %key.id, error = %err, "rate limited; key skipped until the limit resets");
                self.save_usage(key, spent, now).await;
                return (0, 0);
            }
            other => {
                tracing::warn!(key = %key.id, error = %other, "App Store Connect unavailable for this key; skipped this time");
                self.save_usage(key, spent, now).await;
                return (0, 0);
            }
        };
        if key.status == status && key.status_code == Some(code) {
            self.save_usage(key, spent, now).await;
            return (0, 0);
        }
        let mut next = key.clone();
        next.asc_usage = self.settle_usage(key, spent, now);
        next.status = status;
        next.status_code = Some(code);
        next.status_message = Some(message.to_owned());
        next.updated_at = now;
        next.revision = key.revision + 1;
        if !self.update_key_once(key, &next).await {
            self.save_usage(key, spent, now).await;
            return (0, 0);
        }
        tracing::warn!(key = %key.id, status = status.as_str(), code = code.as_str(), "key status changed by the sweep");
        let event = match status {
            KeyStatus::ActionRequired => account_action_required(key, code.as_str(), message, now),
            _ => key_status_changed(key, key.status, status, Some(code), now),
        };
        self.append_key_event(event, now).await
    }

    /// A read worked: a blocked key is `valid` again (announced once), and the key's bookkeeping
    /// (`apps_count`, `last_swept_at`) is refreshed when it changed or has grown old.
    async fn key_read_ok(
        &self,
        key: &ApiKeyRecord,
        apps: usize,
        committed: bool,
        spent: Spent,
        now: DateTime<Utc>,
    ) -> (usize, usize) {
        let recovered = key.status != KeyStatus::Valid;
        let apps_count = u32::try_from(apps).ok();
        let stale = key
            .last_swept_at
            .is_none_or(|at| now - at >= self.config.swept_at_refresh);
        let usage = self.settle_usage(key, spent, now);
        let usage_changed = usage != key.asc_usage;
        if !(recovered || committed || stale || usage_changed || key.apps_count != apps_count) {
            return (0, 0);
        }
        let mut next = key.clone();
        next.asc_usage = usage;
        next.apps_count = apps_count;
        next.last_swept_at = Some(now);
        next.updated_at = now;
        next.revision = key.revision + 1;
        if recovered {
            next.status = KeyStatus::Valid;
            next.status_code = None;
            next.status_message = None;
            next.validated_at = Some(now);
        }
        if !self.update_key_once(key, &next).await {
            if usage_changed {
                self.save_usage(key, spent, now).await;
            }
            return (0, 0);
        }
        if !recovered {
            return (0, 0);
        }
        tracing::info!(key = %key.id, "key works again");
        let event = key_status_changed(key, key.status, KeyStatus::Valid, None, now);
        self.append_key_event(event, now).await
    }

    /// Conditional key write; `false` when another writer changed the key first (its change wins).
    async fn update_key_once(&self, key: &ApiKeyRecord, next: &ApiKeyRecord) -> bool {
        match self.stores.keys.update_key(next, key.revision).await {
            Ok(()) => true,
            Err(StoreError::Conflict(_)) => false,
            Err(err) => {
                tracing::warn!(key = %key.id, error = %err, "could not update the key record");
                false
            }
        }
    }

    async fn append_key_event(&self, event: EventRecord, now: DateTime<Utc>) -> (usize, usize) {
        let events = [event];
        let deliveries = match self.route(&events[0].team_id, &events, now).await {
            Ok(deliveries) => deliveries,
            Err(err) => {
                tracing::warn!(error = %err, "could not read workflows; key event stored without deliveries");
                Vec::new()
            }
        };
        match self.stores.sweeps.append_events(&events, &deliveries).await {
            Ok(()) => {
                tracing::info!(event = %events[0].id, r#type = %events[0].event_type, summary = %events[0].summary, "event");
                (1, deliveries.len())
            }
            Err(err) => {
                tracing::error!(error = %err, "could not store a key status event");
                (0, 0)
            }
        }
    }

    fn is_rate_limited(&self, key: &KeyRecordId) -> bool {
        let now = self.clock.now();
        let mut limited = self
            .rate_limited_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match limited.get(key) {
            Some(until) if *until > now => true,
            Some(_) => {
                limited.remove(key);
                false
            }
            None => false,
        }
    }

    fn note_rate_limit(&self, key: &KeyRecordId, until: DateTime<Utc>) {
        self.rate_limited_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.clone(), until);
    }

    /// Claims one delivery, sends it and records the attempt.
    async fn deliver_one(&self, delivery: DeliveryRecord) -> Sent {
        let now = self.clock.now();
        let mut claimed = delivery.clone();
        claimed.lease_until = Some(now + self.config.delivery_lease);
        claimed.revision = delivery.revision + 1;
        match self
            .stores
            .sweeps
            .update_delivery(&claimed, delivery.revision)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Sent::TakenByOther,
            Err(err) => {
                tracing::warn!(delivery = %delivery.id, error = %err, "could not claim a delivery");
                return Sent::Postponed;
            }
        }
        let (attempt, give_up) = match self.load_and_send(&claimed).await {
            Ok(attempt) => (attempt, false),
            Err(SendSkipped::Retry(reason)) => {
                // A store hiccup: the lease expires and a later pass tries again.
                tracing::warn!(delivery = %claimed.id, reason, "delivery postponed");
                return Sent::TakenByOther;
            }
            Err(SendSkipped::Impossible(reason)) => (
                DeliveryAttempt {
                    at: now,
                    status_code: None,
                    error: Some(reason.to_owned()),
                    duration_ms: 0,
                },
                true,
            ),
        };
        let mut settled = claimed.clone();
        settled.attempts.push(attempt.clone());
        settled.lease_until = None;
        settled.revision = claimed.revision + 1;
        let after = self.clock.now();
        if is_delivered(&attempt) {
            settled.status = DeliveryStatus::Delivered;
            settled.next_attempt_at = None;
        } else if give_up || settled.attempts.len() >= self.config.max_delivery_attempts {
            settled.status = DeliveryStatus::Failed;
            settled.next_attempt_at = None;
        } else {
            settled.next_attempt_at = Some(after + self.backoff_after(settled.attempts.len()));
        }
        match self
            .stores
            .sweeps
            .update_delivery(&settled, claimed.revision)
            .await
        {
            Ok(()) => tracing::info!(delivery = %settled.id, event = %settled.event_id,
                destination = %settled.destination_id, status = ?settled.status,
                http_status = attempt.status_code, attempt = settled.attempts.len(), "delivery attempt recorded"),
            Err(err) => tracing::error!(delivery = %settled.id, error = %err,
                "could not record a delivery attempt; the lease expires and it is tried again"),
        }
        Sent::Attempted
    }

    async fn load_and_send(
        &self,
        delivery: &DeliveryRecord,
    ) -> Result<DeliveryAttempt, SendSkipped> {
        let retry = |_| SendSkipped::Retry("store unavailable");
        let event = self
            .stores
            .sweeps
            .get_event(&delivery.event_id)
            .await
            .map_err(retry)?
            .ok_or(SendSkipped::Impossible("the event no longer exists"))?;
        let destination = self
            .stores
            .destinations
            .get_destination(&delivery.team_id, &delivery.destination_id)
            .await
            .map_err(retry)?
            .ok_or(SendSkipped::Impossible("the destination was deleted"))?;
        let secret = self
            .stores
            .secrets
            .get_secret(&SecretName::for_destination(
                &delivery.team_id,
                &delivery.destination_id,
            ))
            .await
            .map_err(retry)?
            .ok_or(SendSkipped::Impossible("the destination's URL is missing"))?;
        let secrets: DestinationSecrets = serde_json::from_str(secret.expose())
            .map_err(|_| SendSkipped::Impossible("the destination's stored URL cannot be read"))?;
        Ok(self.deliverer.deliver(&destination, &secrets, &event).await)
    }

    /// Wait after `failed_attempts` failed attempts.
    fn backoff_after(&self, failed_attempts: usize) -> TimeDelta {
        let backoff = &self.config.delivery_backoff;
        backoff
            .get(failed_attempts.saturating_sub(1))
            .or(backoff.last())
            .copied()
            .unwrap_or(TimeDelta::minutes(1))
    }
}

/// What one delivery task did.
enum Sent {
    Attempted,
    /// Another sender holds it (or this one keeps its lease until a store hiccup passes).
    TakenByOther,
    /// It could not be claimed because of a store error; worth another try in this pass.
    Postponed,
}

/// Why a claimed delivery was not sent.
enum SendSkipped {
    /// Transient: try again after the lease.
    Retry(&'static str),
    /// It can never be sent: recorded as a failed attempt and given up.
    Impossible(&'static str),
}

/// A 2xx answer.
fn is_delivered(attempt: &DeliveryAttempt) -> bool {
    attempt
        .status_code
        .is_some_and(|status| (200..300).contains(&status))
        && attempt.error.is_none()
}
