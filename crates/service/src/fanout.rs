//! Scale-out of the sweep: when a deployment has more keys than one invocation should sweep, the
//! scheduled sweep splits them into shards and hands those to a queue ([`ShardQueue`]: SQS on
//! AWS), whose consumers sweep one shard each. Small deployments (every key fits in one shard, or
//! no queue configured) sweep inline as before.
//!
//! Shards of one sweep are disjoint and together hold every sweepable key. A shard may be
//! delivered more than once (SQS is at-least-once, and a failed shard is retried): that never
//! doubles an event, because each key's commit is conditional on the snapshot version it read,
//! and a retried shard reads the snapshots again.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use shipwatch_shared::clock::Clock;

use crate::model::{ApiKeyRecord, KeyRecordId};
use crate::sweep::{SweepReport, SweepService};

/// `SWEEP_SHARD_SIZE` when unset. A key costs 2-3 sequential App Store Connect requests (about
/// 0.3-1 s of waiting) and the sweep overlaps up to `SWEEP_CONCURRENCY` keys, so 1,000 keys take a
/// few seconds: far inside the function timeout even when Apple is ten times slower, few enough that
/// a retried shard repeats little, many enough that per-invocation overhead stays small. See the
/// "Scale-out" section of `docs/performance.md`.
pub const DEFAULT_SHARD_SIZE: usize = 1000;
/// Largest `SWEEP_SHARD_SIZE`: a shard's message (about 40 bytes per key id) must stay well
/// inside SQS's 256 KiB message limit.
pub const MAX_SHARD_SIZE: usize = 5000;

/// One part of a sweep, as queued (its JSON is the message body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepShard {
    /// The scheduled sweep this shard belongs to (for logs).
    pub sweep_id: String,
    /// 1-based position among the sweep's shards (the sweep plans while it lists keys, so the
    /// number of shards is known only at the end: see [`FanoutReport`]).
    pub shard: u32,
    /// When the sweep was planned; a shard older than [`FanoutConfig::shard_max_age`] is dropped.
    pub planned_at: DateTime<Utc>,
    pub key_ids: Vec<KeyRecordId>,
    /// A push of TestFlight feedback for the one key: read and record that submission instead
    /// of sweeping the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<crate::push::feedback::FeedbackRef>,
}

/// Failure to hand shards to the queue. Messages carry no key material.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the shard queue is unavailable: {0}")]
    Unavailable(String),
    /// Some shards were queued, others refused.
    #[error("{failed} of {total} shards could not be queued: {reason}")]
    Partial {
        failed: usize,
        total: usize,
        reason: String,
    },
    #[error("a shard could not be encoded: {0}")]
    Encode(String),
}

/// Where a fanned-out sweep's shards go (SQS on AWS).
#[async_trait]
pub trait ShardQueue: Send + Sync {
    /// Queues every shard, one message each.
    async fn enqueue(&self, shards: &[SweepShard]) -> Result<(), QueueError>;
}

/// Cuts a stream of key ids into shards of `shard_size` keys (the last one may be smaller), in
/// order, as the ids arrive: the planner of every fanned-out sweep holds one shard at a time,
/// however many keys there are. Pure.
#[derive(Debug)]
pub struct ShardPlanner {
    shard_size: usize,
    sweep_id: String,
    planned_at: DateTime<Utc>,
    planned: u32,
    filling: Vec<KeyRecordId>,
}

impl ShardPlanner {
    pub fn new(shard_size: usize, sweep_id: &str, planned_at: DateTime<Utc>) -> Self {
        Self {
            shard_size: shard_size.max(1),
            sweep_id: sweep_id.to_owned(),
            planned_at,
            planned: 0,
            filling: Vec::new(),
        }
    }

    /// Adds a key; answers the shard it completes.
    pub fn push(&mut self, key: KeyRecordId) -> Option<SweepShard> {
        if self.filling.capacity() == 0 {
            self.filling.reserve_exact(self.shard_size);
        }
        self.filling.push(key);
        (self.filling.len() >= self.shard_size).then(|| self.cut())
    }

    /// The last, partly filled shard, if any (cut once: the planner is empty afterwards).
    pub fn finish(&mut self) -> Option<SweepShard> {
        (!self.filling.is_empty()).then(|| self.cut())
    }

    /// Shards cut so far.
    pub fn planned(&self) -> u32 {
        self.planned
    }

    fn cut(&mut self) -> SweepShard {
        self.planned = self.planned.saturating_add(1);
        SweepShard {
            sweep_id: self.sweep_id.clone(),
            shard: self.planned,
            planned_at: self.planned_at,
            key_ids: std::mem::take(&mut self.filling),
            feedback: None,
        }
    }
}

/// Shards handed to the queue in one call (SQS takes ten messages a batch).
const SHARDS_PER_ENQUEUE: usize = 10;

/// Tuning of the fan-out.
#[derive(Clone, Debug)]
pub struct FanoutConfig {
    /// Most keys per shard (`SWEEP_SHARD_SIZE`); at most this many keys are swept inline.
    pub shard_size: usize,
    /// A shard received later than this after planning is dropped unswept: newer sweeps cover its
    /// keys, and a backlog must not grow without bound when consumers fall behind.
    pub shard_max_age: TimeDelta,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            shard_size: DEFAULT_SHARD_SIZE,
            shard_max_age: TimeDelta::minutes(15),
        }
    }
}

/// What a scheduled sweep did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ScheduledSweep {
    /// Swept in this invocation (the report of [`SweepService::run`]).
    Inline(SweepReport),
    /// Split into shards for the queue's consumers.
    FannedOut(FanoutReport),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FanoutReport {
    pub sweep_id: String,
    /// Sweepable keys planned.
    pub keys: usize,
    pub shards: usize,
    /// Shards the queue accepted (the rest wait for the next scheduled sweep).
    pub shards_enqueued: usize,
    pub keys_revalidated: usize,
}

/// What one shard's sweep did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardOutcome {
    pub sweep_id: String,
    pub shard: u32,
    /// Dropped unswept because it was older than [`FanoutConfig::shard_max_age`].
    pub stale: bool,
    pub report: SweepReport,
}

impl ShardOutcome {
    /// Some key failed on the store: the queue should deliver the shard again.
    pub fn needs_retry(&self) -> bool {
        self.report.keys_failed > 0
    }
}

/// A feedback shard: its key's submission read and recorded. A failure counts as a failed key,
/// so the queue delivers the shard again (the event id makes a second recording a no-op).
async fn record_feedback(
    service: &crate::push::feedback::FeedbackService,
    keys: &[KeyRecordId],
    feedback: &crate::push::feedback::FeedbackRef,
) -> SweepReport {
    let mut report = SweepReport::default();
    for key in keys {
        match service.record(key, feedback).await {
            Ok(crate::push::feedback::FeedbackOutcome::Recorded { deliveries }) => {
                report.events += 1;
                report.deliveries += deliveries;
            }
            Ok(outcome) => tracing::info!(key = %key, ?outcome, "feedback shard: nothing new"),
            Err(err) => {
                tracing::warn!(key = %key, error = %err, "feedback shard failed; retried");
                report.keys_failed += 1;
            }
        }
    }
    report
}

/// The sweep as a deployment runs it: inline, or planned into shards for a queue.
#[derive(Clone)]
pub struct FanoutSweep {
    sweeper: SweepService,
    queue: Option<Arc<dyn ShardQueue>>,
    clock: Arc<dyn Clock>,
    config: FanoutConfig,
    feedback: Option<crate::push::feedback::FeedbackService>,
}

impl FanoutSweep {
    /// Without a queue every sweep runs inline.
    pub fn new(
        sweeper: SweepService,
        queue: Option<Arc<dyn ShardQueue>>,
        clock: Arc<dyn Clock>,
        config: FanoutConfig,
    ) -> Self {
        Self {
            sweeper,
            queue,
            clock,
            config,
            feedback: None,
        }
    }

    /// Shards that carry pushed feedback are recorded through `feedback`.
    pub fn with_feedback(mut self, feedback: crate::push::feedback::FeedbackService) -> Self {
        self.feedback = Some(feedback);
        self
    }

    pub fn sweeper(&self) -> &SweepService {
        &self.sweeper
    }

    /// A scheduled (or on-demand) sweep: due re-validations, then every sweepable key inline when
    /// they fit in one shard or no queue is configured, otherwise planned into shards and queued
    /// while the keys are listed, a page at a time (memory stays that of a page and a shard
    /// whatever the number of keys).
    pub async fn on_schedule(&self) -> ScheduledSweep {
        let Some(queue) = &self.queue else {
            return ScheduledSweep::Inline(self.sweeper.run().await);
        };
        let sweep_id = uuid::Uuid::new_v4().to_string();
        let mut planner = ShardPlanner::new(self.config.shard_size, &sweep_id, self.clock.now());
        // Keys are held until there are more than one shard's worth: then the sweep fans out.
        let mut held: Option<Vec<ApiKeyRecord>> = Some(Vec::new());
        let mut ready = Vec::with_capacity(SHARDS_PER_ENQUEUE);
        let mut report = FanoutReport {
            sweep_id: sweep_id.clone(),
            ..FanoutReport::default()
        };
        let mut cursor = None;
        while let Some(page) = self.sweeper.keys_page(cursor.as_deref()).await {
            report.keys_revalidated += page.revalidated;
            report.keys += page.sweepable.len();
            match &mut held {
                Some(keys) => keys.extend(page.sweepable),
                None => ready.extend(
                    page.sweepable
                        .into_iter()
                        .filter_map(|k| planner.push(k.id)),
                ),
            }
            if held
                .as_ref()
                .is_some_and(|keys| keys.len() > self.config.shard_size)
            {
                let keys = held.take().unwrap_or_default();
                ready.extend(keys.into_iter().filter_map(|k| planner.push(k.id)));
            }
            if ready.len() >= SHARDS_PER_ENQUEUE {
                report.shards_enqueued += enqueue(queue.as_ref(), &sweep_id, &ready).await;
                ready.clear();
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if let Some(keys) = held {
            let revalidated = report.keys_revalidated;
            let mut report = self.sweeper.sweep_records(keys).await;
            report.keys_revalidated = revalidated;
            report.delivery_attempts = self.sweeper.deliver_due().await;
            tracing::info!(?report, "sweep finished inline");
            return ScheduledSweep::Inline(report);
        }
        ready.extend(planner.finish());
        report.shards = usize::try_from(planner.planned()).unwrap_or(usize::MAX);
        report.shards_enqueued += enqueue(queue.as_ref(), &sweep_id, &ready).await;
        tracing::info!(?report, "sweep fanned out");
        ScheduledSweep::FannedOut(report)
    }

    /// Sweeps one shard's keys (without the delivery pass; see [`Self::deliver_due`]).
    pub async fn run_shard(&self, shard: &SweepShard) -> ShardOutcome {
        let age = self.clock.now() - shard.planned_at;
        // A newer sweep covers a stale shard's keys, but nothing else brings pushed feedback back.
        if age > self.config.shard_max_age && shard.feedback.is_none() {
            tracing::warn!(sweep = %shard.sweep_id, shard = shard.shard,
                age_seconds = age.num_seconds(),
                "shard too old; dropped (newer sweeps cover its keys). Consumers are falling behind: raise the queue's maximum concurrency or the schedule interval");
            return ShardOutcome {
                sweep_id: shard.sweep_id.clone(),
                shard: shard.shard,
                stale: true,
                report: SweepReport::default(),
            };
        }
        let report = match (&shard.feedback, &self.feedback) {
            (Some(feedback), Some(service)) => {
                record_feedback(service, &shard.key_ids, feedback).await
            }
            _ => self.sweeper.run_for_keys(&shard.key_ids).await,
        };
        tracing::info!(sweep = %shard.sweep_id, shard = shard.shard, ?report, "shard swept");
        ShardOutcome {
            sweep_id: shard.sweep_id.clone(),
            shard: shard.shard,
            stale: false,
            report,
        }
    }

    /// The delivery pass, after a batch of shards.
    pub async fn deliver_due(&self) -> usize {
        self.sweeper.deliver_due().await
    }

    /// The delivery pass and the retries due within `horizon`.
    pub async fn deliver_due_and_soon(&self, horizon: std::time::Duration) -> usize {
        self.sweeper.deliver_due_and_soon(horizon).await
    }
}

/// Queues `shards`; answers how many the queue accepted (the others' keys wait for the next
/// sweep).
async fn enqueue(queue: &dyn ShardQueue, sweep_id: &str, shards: &[SweepShard]) -> usize {
    if shards.is_empty() {
        return 0;
    }
    match queue.enqueue(shards).await {
        Ok(()) => shards.len(),
        Err(QueueError::Partial { failed, total, .. }) => {
            tracing::error!(sweep = %sweep_id, failed, total, "some shards could not be queued; their keys wait for the next sweep");
            total.saturating_sub(failed)
        }
        Err(err) => {
            tracing::error!(sweep = %sweep_id, error = %err, "shards could not be queued; their keys wait for the next sweep");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn ids(count: usize) -> Vec<KeyRecordId> {
        (0..count)
            .map(|i| KeyRecordId(format!("key-{i}")))
            .collect()
    }

    fn planned(keys: &[KeyRecordId], size: usize) -> Vec<SweepShard> {
        let mut planner = ShardPlanner::new(size, "sweep-1", Utc::now());
        let mut shards: Vec<SweepShard> = keys
            .iter()
            .filter_map(|k| planner.push(k.clone()))
            .collect();
        shards.extend(planner.finish());
        shards
    }

    #[test]
    fn no_keys_make_no_shard() {
        assert!(planned(&[], 10).is_empty());
    }

    #[test]
    fn shards_are_disjoint_complete_in_order_and_full_but_the_last() {
        for size in [1, 2, 3, 7, 200, 1000] {
            for count in [
                1,
                size,
                size + 1,
                2 * size,
                2 * size + 1,
                10 * size - 1,
                5003,
            ] {
                let keys = ids(count);
                let shards = planned(&keys, size);
                assert_eq!(shards.len(), count.div_ceil(size), "{count}/{size}");
                let mut seen = HashSet::new();
                let mut in_order = Vec::new();
                for (index, shard) in shards.iter().enumerate() {
                    assert_eq!(shard.shard, index as u32 + 1);
                    assert_eq!(shard.sweep_id, "sweep-1");
                    let last = index + 1 == shards.len();
                    assert!(!shard.key_ids.is_empty() && shard.key_ids.len() <= size);
                    assert!(
                        last || shard.key_ids.len() == size,
                        "{count}/{size}: shard {index}"
                    );
                    for id in &shard.key_ids {
                        assert!(seen.insert(id.clone()), "{id} in two shards");
                    }
                    in_order.extend(shard.key_ids.iter().cloned());
                }
                assert_eq!(in_order, keys, "every key exactly once, in order");
            }
        }
    }

    #[test]
    fn a_zero_shard_size_is_treated_as_one() {
        assert_eq!(planned(&ids(3), 0).len(), 3);
    }

    #[test]
    fn the_message_body_round_trips() {
        let shard = SweepShard {
            sweep_id: "s".into(),
            shard: 2,
            planned_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
            key_ids: ids(2),
            feedback: None,
        };
        let body = serde_json::to_string(&shard).unwrap_or_default();
        assert_eq!(
            body,
            r#"{"sweep_id":"s","shard":2,"planned_at":"2027-01-15T08:00:00Z","key_ids":["key-0","key-1"]}"#
        );
        assert_eq!(
            serde_json::from_str::<SweepShard>(&body).ok(),
            Some(shard.clone())
        );
        // A message queued by the version before streamed planning (it had "of") still reads.
        let queued_before = r#"{"sweep_id":"s","shard":2,"of":3,"planned_at":"2027-01-15T08:00:00Z","key_ids":["key-0","key-1"]}"#;
        assert_eq!(
            serde_json::from_str::<SweepShard>(queued_before).ok(),
            Some(shard)
        );
    }
}
