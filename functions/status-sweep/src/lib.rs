//! The sweep Lambda's handler. It receives two kinds of events and tells them apart by shape:
//! - an EventBridge schedule, or `{}` from an on-demand invoke (`POST /v1/sweeps`): one sweep,
//!   inline when the keys fit in one shard or no queue is configured, otherwise planned into shards
//!   queued on SQS (`SWEEP_QUEUE_URL`);
//! - an SQS batch of those shards (the queue's event source mapping): each shard is swept, then
//!   the delivery pass runs once. Shards that failed on the store are returned as batch item
//!   failures (`ReportBatchItemFailures`), so SQS delivers only them again; a retried shard reads
//!   the snapshots again and its commits are conditional on them, so no event is recorded twice.

use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use shipwatch_service::fanout::{FanoutSweep, ScheduledSweep, ShardOutcome, SweepShard};
use shipwatch_service::sweep::SweepService;

/// What the handler drives: a scheduled sweep, one shard, the delivery pass.
#[async_trait]
pub trait SweepEntry: Send + Sync {
    async fn on_schedule(&self) -> ScheduledSweep;
    async fn run_shard(&self, shard: &SweepShard) -> ShardOutcome;
    /// The delivery pass, then the retries that fall due within `horizon`.
    async fn deliver_due_and_soon(&self, horizon: Duration) -> usize;
}

/// How long an invocation stays to send the fast retries (5 s, then 30 s after a failure) of
/// deliveries that failed in it; later retries wait for the next invocation. Far inside the
/// function's timeout in template.yaml.
pub const FAST_RETRY_HORIZON: Duration = Duration::from_secs(40);

#[async_trait]
impl SweepEntry for FanoutSweep {
    async fn on_schedule(&self) -> ScheduledSweep {
        FanoutSweep::on_schedule(self).await
    }
    async fn run_shard(&self, shard: &SweepShard) -> ShardOutcome {
        FanoutSweep::run_shard(self, shard).await
    }
    async fn deliver_due_and_soon(&self, horizon: Duration) -> usize {
        FanoutSweep::deliver_due_and_soon(self, horizon).await
    }
}

/// A sweep service without a queue: every scheduled sweep runs inline.
#[async_trait]
impl SweepEntry for SweepService {
    async fn on_schedule(&self) -> ScheduledSweep {
        ScheduledSweep::Inline(self.run().await)
    }
    async fn run_shard(&self, shard: &SweepShard) -> ShardOutcome {
        let report = self.run_for_keys(&shard.key_ids).await;
        ShardOutcome {
            sweep_id: shard.sweep_id.clone(),
            shard: shard.shard,
            stale: false,
            report,
        }
    }
    async fn deliver_due_and_soon(&self, horizon: Duration) -> usize {
        SweepService::deliver_due_and_soon(self, horizon).await
    }
}

/// An SQS batch whose messages cannot all be named. The invocation fails, so Lambda delivers
/// the whole batch again and the queue's redrive policy moves poison messages to the dead-letter
/// queue (an answer without failures would delete them unprocessed).
#[derive(Debug, thiserror::Error)]
pub enum UnreadableBatch {
    #[error("the SQS event could not be read: {0}")]
    Event(String),
    #[error("an SQS message has no message id")]
    MessageWithoutId,
}

/// Handles one invocation and returns what Lambda should get back: the sweep's report for a
/// schedule, an `SqsBatchResponse` (`{"batchItemFailures": [...]}`) for an SQS batch.
pub async fn handle<S: SweepEntry>(sweep: &S, event: Value) -> Result<Value, UnreadableBatch> {
    if is_sqs_batch(&event) {
        let batch = serde_json::from_value::<SqsEvent>(event).map_err(|err| {
            tracing::error!(error = %err, "SQS event could not be read");
            UnreadableBatch::Event(err.to_string())
        })?;
        return Ok(to_json(&handle_shards(sweep, batch).await?));
    }
    let source = event
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("direct invoke");
    tracing::info!(source, "sweep requested");
    let outcome = sweep.on_schedule().await;
    tracing::info!(?outcome, "scheduled sweep done");
    let retries = sweep.deliver_due_and_soon(FAST_RETRY_HORIZON).await;
    if retries > 0 {
        tracing::info!(delivery_attempts = retries, "fast delivery retries done");
    }
    Ok(to_json(&outcome))
}

/// `{"Records": [{"eventSource": "aws:sqs", ...}, ...]}`.
fn is_sqs_batch(event: &Value) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|record| record.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

/// Sweeps each shard of the batch, then delivers; names the messages SQS should deliver again.
/// A message without an id cannot be named, so nothing is swept and the whole batch fails.
pub async fn handle_shards<S: SweepEntry>(
    sweep: &S,
    batch: SqsEvent,
) -> Result<SqsBatchResponse, UnreadableBatch> {
    if batch
        .records
        .iter()
        .any(|record| record.message_id.is_none())
    {
        tracing::error!("SQS message without a message id; the batch is retried");
        return Err(UnreadableBatch::MessageWithoutId);
    }
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        let Some(message_id) = message.message_id else {
            continue;
        };
        let shard = match message
            .body
            .as_deref()
            .map(serde_json::from_str::<SweepShard>)
        {
            Some(Ok(shard)) => shard,
            _ => {
                // Never sweepable; failing it lets the queue move it to the dead-letter queue.
                tracing::error!(message = %message_id, "SQS message is not a sweep shard");
                response.add_failure(message_id);
                continue;
            }
        };
        let outcome = sweep.run_shard(&shard).await;
        if outcome.needs_retry() {
            tracing::warn!(message = %message_id, sweep = %outcome.sweep_id, shard = outcome.shard,
                keys_failed = outcome.report.keys_failed,
                "shard failed on the store; SQS delivers it again");
            response.add_failure(message_id);
        }
    }
    let attempts = sweep.deliver_due_and_soon(FAST_RETRY_HORIZON).await;
    tracing::info!(
        delivery_attempts = attempts,
        failed_shards = response.batch_item_failures.len(),
        "shard batch done"
    );
    Ok(response)
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|err| {
        tracing::error!(error = %err, "handler result could not be serialized");
        Value::Null
    })
}
