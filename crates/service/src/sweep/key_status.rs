//! A key's status and bookkeeping as its sweep changes them: blocked or working again (each
//! announced once, by the writer whose conditional key write wins), rate limits, and the App
//! Store Connect budget.

use chrono::{DateTime, TimeDelta, Utc};

use super::Inner;
use super::key::spent_requests;
use crate::accounts::{AccountError, AccountUsage, Verdict, verdict_for};
use crate::domain::events::{account_action_required, key_status_changed};
use crate::keys::blocked_status;
use crate::model::{ApiKeyRecord, AscUsage, EventRecord, KeyStatus};
use crate::outbox;
use crate::ports::StoreError;
use crate::rate_budget;

impl Inner {
    /// A read failed: a blocking verdict (revoked, role too low, agreements) changes the key's
    /// status, announced once; a rate limit pauses the key; anything else skips it this time
    /// without any event.
    pub(crate) async fn key_failed(
        &self,
        key: &ApiKeyRecord,
        err: &AccountError,
        spent: AccountUsage,
        now: DateTime<Utc>,
    ) -> (usize, usize) {
        let verdict = verdict_for(Err(err));
        let Some((status, code, message)) = blocked_status(&verdict).map(|(s, c, _)| {
            (
                s,
                c,
                crate::keys::message_for_platform(key.account.platform(), c),
            )
        }) else {
            match verdict {
                Verdict::Unavailable {
                    rate_limited: true,
                    retry_after,
                } => {
                    let pause = retry_after.unwrap_or(self.config.rate_limit_pause);
                    let until = now + TimeDelta::from_std(pause).unwrap_or(TimeDelta::minutes(1));
                    self.note_rate_limit(key, until);
                    tracing::warn!(error = %err, "rate limited; key skipped until the limit resets");
                }
                _ => {
                    tracing::warn!(error = %err, "store unavailable for this key; skipped this time");
                }
            }
            self.save_usage(key, spent, now).await;
            return (0, 0);
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
        let event = match status {
            KeyStatus::ActionRequired => account_action_required(key, code.as_str(), message, now),
            _ => key_status_changed(key, key.status, status, Some(code), now),
        };
        let Some(recorded) = self.update_key_announcing(key, &next, event, now).await else {
            self.save_usage(key, spent, now).await;
            return (0, 0);
        };
        tracing::warn!(
            status = status.as_str(),
            code = code.as_str(),
            "key status changed by the sweep"
        );
        recorded
    }

    /// A read worked: a blocked key is `valid` again (announced once), and the key's bookkeeping
    /// (`apps_count`, `last_swept_at`) is refreshed when it changed or has grown old.
    pub(crate) async fn key_read_ok(
        &self,
        key: &ApiKeyRecord,
        apps: usize,
        committed: bool,
        spent: AccountUsage,
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
        if !recovered {
            if !self.update_key_once(key, &next).await && usage_changed {
                self.save_usage(key, spent, now).await;
            }
            return (0, 0);
        }
        let event = key_status_changed(key, key.status, KeyStatus::Valid, None, now);
        let Some(recorded) = self.update_key_announcing(key, &next, event, now).await else {
            if usage_changed {
                self.save_usage(key, spent, now).await;
            }
            return (0, 0);
        };
        tracing::info!("key works again");
        recorded
    }

    /// The key's budget bookkeeping after a sweep that spent `spent` (see [`rate_budget`]).
    fn settle_usage(
        &self,
        key: &ApiKeyRecord,
        spent: AccountUsage,
        now: DateTime<Utc>,
    ) -> Option<AscUsage> {
        rate_budget::settle(
            &self.config.budget,
            key.asc_usage.as_ref(),
            spent_requests(spent),
            spent.rate_limit,
            now,
        )
    }

    /// Stores the key's budget bookkeeping when it changed. A concurrent key write wins the
    /// record; this sweep's requests are then added to the fresh record once more.
    pub(crate) async fn save_usage(
        &self,
        key: &ApiKeyRecord,
        spent: AccountUsage,
        now: DateTime<Utc>,
    ) {
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
                    tracing::warn!(error = %err, "could not store the key's App Store Connect usage");
                    return;
                }
            }
        }
    }

    /// Conditional key write; `false` when another writer changed the key first (its change wins).
    async fn update_key_once(&self, key: &ApiKeyRecord, next: &ApiKeyRecord) -> bool {
        match self.stores.keys.update_key(next, key.revision).await {
            Ok(()) => true,
            Err(StoreError::Conflict(_)) => false,
            Err(err) => {
                tracing::warn!(error = %err, "could not update the key record");
                false
            }
        }
    }

    /// The conditional key write with the event announcing it, in one transaction; `None` when
    /// another writer changed the key first (its change, and its announcement, win) or the store
    /// failed (nothing written: the next sweep sees the same change and tries again). Otherwise
    /// the events and deliveries recorded.
    async fn update_key_announcing(
        &self,
        key: &ApiKeyRecord,
        next: &ApiKeyRecord,
        event: EventRecord,
        now: DateTime<Utc>,
    ) -> Option<(usize, usize)> {
        let events = [event];
        let deliveries = match outbox::route(&self.stores, &events[0].team_id, &events, now).await {
            Ok(deliveries) => deliveries,
            Err(err) => {
                tracing::warn!(error = %err, "could not read workflows; the key change waits for the next sweep");
                return None;
            }
        };
        match self
            .stores
            .keys
            .update_key_announcing(next, key.revision, &events, &deliveries)
            .await
        {
            Ok(()) => {
                tracing::info!(event = %events[0].id, r#type = %events[0].event_type, summary = %events[0].summary, "event");
                Some((1, deliveries.len()))
            }
            Err(StoreError::Conflict(_)) => None,
            Err(err) => {
                tracing::warn!(error = %err, "could not record the key change and its event");
                None
            }
        }
    }

    pub(crate) fn is_rate_limited(&self, key: &ApiKeyRecord) -> bool {
        let now = self.clock.now();
        let mut limited = self
            .rate_limited_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match limited.get(&key.id) {
            Some(until) if *until > now => true,
            Some(_) => {
                limited.remove(&key.id);
                false
            }
            None => false,
        }
    }

    fn note_rate_limit(&self, key: &ApiKeyRecord, until: DateTime<Utc>) {
        self.rate_limited_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.id.clone(), until);
    }
}
