//! One key's sweep, top to bottom: admit (rate limit, budget) -> credentials -> observe the
//! account -> diff against the stored snapshot -> events -> route to destinations -> commit
//! snapshot, events and deliveries together, conditional on the snapshot version read (so when
//! two sweeps overlap only one records a transition) -> key bookkeeping ([`super::key_status`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Inner;
use crate::accounts::{AccountError, AccountSession, AccountUsage};
use crate::domain::diff::diff;
use crate::domain::events::{EventContext, event_for_change};
use crate::domain::snapshot::KeySnapshot;
use crate::model::{ApiKeyRecord, EventRecord, StoredSnapshot};
use crate::outbox;
use crate::ports::{StoreError, SweepCommit};
use crate::rate_budget::{self, Admission};

/// What sweeping one key did.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyOutcome {
    pub(crate) read: bool,
    pub(crate) skipped: bool,
    /// Skipped because of the key's App Store Connect budget.
    pub(crate) over_budget: bool,
    /// Skipped because of a store error.
    pub(crate) failed: bool,
    pub(crate) apps: usize,
    pub(crate) asc_requests: u64,
    pub(crate) events: usize,
    pub(crate) deliveries: usize,
}

impl KeyOutcome {
    fn skipped(failed: bool) -> Self {
        Self {
            skipped: true,
            failed,
            ..Self::default()
        }
    }
}

/// Why a key's read ended early.
#[derive(Debug, thiserror::Error)]
enum KeyReadError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("reading the store took longer than the key's deadline")]
    Deadline,
}

/// Why no session could be made for a key (never key material).
struct NoSession {
    reason: &'static str,
    /// A store outage (worth retrying soon) rather than a problem with the key itself.
    transient: bool,
}

impl Inner {
    pub(crate) async fn sweep_key(&self, key: ApiKeyRecord) -> KeyOutcome {
        if let Some(outcome) = self.admit(&key) {
            return outcome;
        }
        let session = match self.session_for(&key).await {
            Ok(session) => session,
            Err(no_session) => {
                tracing::warn!(reason = no_session.reason, "key skipped");
                return KeyOutcome::skipped(no_session.transient);
            }
        };
        let stored = match self.stores.sweeps.get_snapshot(&key.id).await {
            Ok(stored) => stored,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the key's snapshot; skipped");
                return KeyOutcome::skipped(true);
            }
        };
        let expected_version = stored.as_ref().map_or(0, |stored| stored.version);
        let prev = stored.as_ref().and_then(|stored| {
            KeySnapshot::from_json(&stored.state)
                .map_err(|err| {
                    // Unreadable: start over with a silent baseline rather than announce everything.
                    tracing::error!(error = %err, "stored snapshot unreadable; taking a new baseline");
                })
                .ok()
        });

        let read = self.observe(session.as_ref(), prev.as_ref()).await;
        let spent = session.usage();
        let now = self.clock.now();
        let mut outcome = KeyOutcome {
            asc_requests: spent.requests,
            ..KeyOutcome::default()
        };
        let next = match read {
            Ok(next) => next,
            Err(KeyReadError::Account(err)) => {
                let (events, deliveries) = self.key_failed(&key, &err, spent, now).await;
                outcome.events = events;
                outcome.deliveries = deliveries;
                outcome.skipped = true;
                return outcome;
            }
            Err(KeyReadError::Deadline) => {
                tracing::warn!("store reads took too long; key skipped this time");
                self.save_usage(&key, spent, now).await;
                outcome.skipped = true;
                return outcome;
            }
        };
        outcome.read = true;
        outcome.apps = next.apps.len();

        let mut committed = false;
        if prev.as_ref() != Some(&next) {
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
                    tracing::info!("another sweep recorded this key first; result discarded");
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not store the key's sweep");
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

    /// `Some` (the key is skipped) while its store rate-limits it or its budget is spent.
    fn admit(&self, key: &ApiKeyRecord) -> Option<KeyOutcome> {
        if self.is_rate_limited(key) {
            tracing::info!("key is rate limited by its store; skipped this time");
            return Some(KeyOutcome::skipped(false));
        }
        match rate_budget::admit(
            &self.config.budget,
            key.asc_usage.as_ref(),
            self.clock.now(),
        ) {
            Admission::Sweep => return None,
            Admission::OverBudget { until } => {
                tracing::info!(%until, "key's App Store Connect budget for this hour is spent; skipped");
            }
            Admission::Paced { until } => {
                tracing::debug!(%until, "key's App Store Connect budget is low; swept less often");
            }
        }
        Some(KeyOutcome {
            over_budget: true,
            ..KeyOutcome::skipped(false)
        })
    }

    /// A session acting as the key, or why none can be made (logged; never key material).
    async fn session_for(&self, key: &ApiKeyRecord) -> Result<Box<dyn AccountSession>, NoSession> {
        let now = self.clock.now();
        if let Some(credentials) = self.credentials.get(key, now) {
            return Ok(self.accounts.session(&credentials));
        }
        let secret = match self.stores.secrets.get_secret(&key.secret_name()).await {
            Ok(Some(secret)) => secret,
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
        let credentials = self
            .accounts
            .credentials(&key.account, &secret)
            .map_err(|_| NoSession {
                reason: "the stored private key cannot be read",
                transient: false,
            })?;
        self.credentials.put(&key.id, credentials.clone(), now);
        Ok(self.accounts.session(&credentials))
    }

    /// The account as a snapshot, within the key's deadline.
    async fn observe(
        &self,
        session: &dyn AccountSession,
        prev: Option<&KeySnapshot>,
    ) -> Result<KeySnapshot, KeyReadError> {
        let observation = tokio::time::timeout(self.config.key_deadline, session.observe(prev))
            .await
            .map_err(|_| KeyReadError::Deadline)??;
        Ok(KeySnapshot::observe(prev, &observation, self.clock.now()))
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
        let deliveries = outbox::route(&self.stores, &key.team_id, &events, now).await?;
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
            tracing::info!(event = %event.id, r#type = %event.event_type, summary = %event.summary, "event");
        }
        Ok((commit.events.len(), commit.deliveries.len()))
    }
}

/// What a key's sweep spent, as the rate budget counts it.
pub(crate) fn spent_requests(spent: AccountUsage) -> u32 {
    u32::try_from(spent.requests).unwrap_or(u32::MAX)
}
