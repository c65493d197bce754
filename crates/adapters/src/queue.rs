//! The sweep's shard queue on SQS: each [`SweepShard`] is one message (its JSON), sent with
//! `SendMessageBatch` (10 entries and at most 256 KiB per call). The status-sweep function consumes
//! the queue through an event source mapping (`template.yaml`).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use shipwatch_service::config::Settings;
use shipwatch_service::fanout::{QueueError, ShardQueue, SweepShard};

/// Entries per `SendMessageBatch` (SQS's maximum).
const MAX_BATCH_ENTRIES: usize = 10;
/// Bytes of message bodies per `SendMessageBatch` (SQS's limit for the whole batch).
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Further sends of entries SQS refused without blaming the request (its own hiccups).
const RETRIES_OF_REFUSED_ENTRIES: usize = 2;

/// [`ShardQueue`] on one SQS queue.
#[derive(Clone, Debug)]
pub struct SqsShardQueue {
    client: Client,
    queue_url: String,
}

impl SqsShardQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue of `SWEEP_QUEUE_URL`, with the standard AWS configuration (`None` when unset:
    /// every sweep then runs inline).
    pub async fn from_settings(settings: &Settings) -> Option<Arc<dyn ShardQueue>> {
        let url = settings.sweep_queue_url.as_ref()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Some(Arc::new(Self::new(Client::new(&sdk), url.clone())))
    }

    /// Sends one batch; returns the entries SQS refused for a reason worth another try, and the
    /// refusals that are not (with their codes).
    async fn send_batch(
        &self,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> Result<(Vec<SendMessageBatchRequestEntry>, Vec<String>), QueueError> {
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(describe("SendMessageBatch", &err)))?;
        let mut retry = Vec::new();
        let mut refused = Vec::new();
        for failure in output.failed() {
            if failure.sender_fault() {
                refused.push(failure.code().to_owned());
            } else if let Some(entry) = entries.iter().find(|entry| entry.id() == failure.id()) {
                retry.push(entry.clone());
            }
        }
        Ok((retry, refused))
    }
}

#[async_trait]
impl ShardQueue for SqsShardQueue {
    async fn enqueue(&self, shards: &[SweepShard]) -> Result<(), QueueError> {
        let total = shards.len();
        let mut failed = 0;
        let mut reasons: Vec<String> = Vec::new();
        for batch in batches(shards)? {
            let mut pending = batch;
            for attempt in 0..=RETRIES_OF_REFUSED_ENTRIES {
                let batch_len = pending.len();
                let (retry, refused) = match self.send_batch(pending).await {
                    Ok(result) => result,
                    Err(err) => {
                        failed += batch_len;
                        reasons.push(err.to_string());
                        break;
                    }
                };
                failed += refused.len();
                reasons.extend(refused);
                pending = retry;
                if pending.is_empty() {
                    break;
                }
                if attempt == RETRIES_OF_REFUSED_ENTRIES {
                    failed += pending.len();
                    reasons.push("SQS kept refusing some entries".into());
                    break;
                }
            }
        }
        reasons.dedup();
        match failed {
            0 => Ok(()),
            all if all >= total => Err(QueueError::Unavailable(reasons.join("; "))),
            some => Err(QueueError::Partial {
                failed: some,
                total,
                reason: reasons.join("; "),
            }),
        }
    }
}

/// Shards as `SendMessageBatch` entries, grouped by SQS's count and size limits. Entry ids are the
/// shard numbers (unique within a sweep).
fn batches(shards: &[SweepShard]) -> Result<Vec<Vec<SendMessageBatchRequestEntry>>, QueueError> {
    let mut batches = Vec::new();
    let mut current: Vec<SendMessageBatchRequestEntry> = Vec::new();
    let mut current_bytes = 0;
    for shard in shards {
        let body =
            serde_json::to_string(shard).map_err(|err| QueueError::Encode(err.to_string()))?;
        if body.len() > MAX_BATCH_BYTES {
            return Err(QueueError::Encode(format!(
                "shard {} of sweep {} is {} bytes, over SQS's message limit; lower SWEEP_SHARD_SIZE",
                shard.shard,
                shard.sweep_id,
                body.len()
            )));
        }
        if current.len() == MAX_BATCH_ENTRIES || current_bytes + body.len() > MAX_BATCH_BYTES {
            batches.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += body.len();
        let entry = SendMessageBatchRequestEntry::builder()
            .id(format!("shard-{}", shard.shard))
            .message_body(body)
            .build()
            .map_err(|err| QueueError::Encode(err.to_string()))?;
        current.push(entry);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    Ok(batches)
}

/// An SQS failure as operation, code and message (never message bodies).
fn describe<E: ProvideErrorMetadata, R>(operation: &str, error: &SdkError<E, R>) -> String {
    match error {
        SdkError::ServiceError(context) => {
            let err = context.err();
            format!(
                "{operation}: {}: {}",
                err.code().unwrap_or("unknown"),
                err.message().unwrap_or("no message")
            )
        }
        SdkError::TimeoutError(_) => format!("{operation}: timed out"),
        SdkError::DispatchFailure(_) => format!("{operation}: could not reach SQS"),
        _ => format!("{operation}: request failed"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use shipwatch_service::model::KeyRecordId;

    use super::*;

    fn shard(number: u32, keys: usize) -> SweepShard {
        SweepShard {
            sweep_id: "s".into(),
            shard: number,
            planned_at: Utc::now(),
            key_ids: (0..keys)
                .map(|i| KeyRecordId(format!("{:036}", i)))
                .collect(),
            feedback: None,
        }
    }

    #[test]
    fn batches_respect_entry_count_and_size() {
        let small: Vec<SweepShard> = (1..=23).map(|n| shard(n, 3)).collect();
        let sizes: Vec<usize> = batches(&small).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 3]);

        // About 195 KB each: one per batch.
        let large: Vec<SweepShard> = (1..=3).map(|n| shard(n, 5000)).collect();
        let grouped = batches(&large).unwrap();
        assert_eq!(
            grouped.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 1, 1]
        );
        for batch in &grouped {
            let bytes: usize = batch.iter().map(|e| e.message_body().len()).sum();
            assert!(bytes <= MAX_BATCH_BYTES);
        }
        let ids: Vec<&str> = grouped.iter().flatten().map(|e| e.id()).collect();
        assert_eq!(ids, vec!["shard-1", "shard-2", "shard-3"]);
    }

    #[test]
    fn a_shard_over_the_message_limit_is_refused() {
        assert!(matches!(
            batches(&[shard(1, 7000)]),
            Err(QueueError::Encode(_))
        ));
    }
}
