//! The validator Lambda's handler: the table's stream delivers key records written with status
//! `validating` and attempt 0 (the event source filter in template.yaml); each is validated.

use async_trait::async_trait;
use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use shipwatch_service::keys::{KeyValidator, ValidationError};
use shipwatch_service::model::KeyRecordId;

/// The one thing this handler needs from the application: validate a key by id.
#[async_trait]
pub trait ValidateKey: Send + Sync {
    async fn validate_key(&self, id: &KeyRecordId) -> Result<(), ValidationError>;
}

#[async_trait]
impl ValidateKey for KeyValidator {
    async fn validate_key(&self, id: &KeyRecordId) -> Result<(), ValidationError> {
        self.validate(id).await.map(|_| ())
    }
}

/// Our key id from a stream record's new image (`id`, a string attribute).
pub fn key_id_of(record: &aws_lambda_events::dynamodb::EventRecord) -> Option<KeyRecordId> {
    let image = serde_json::to_value(&record.change.new_image).ok()?;
    let entity = image.get("entity")?.get("S")?.as_str()?;
    if entity != "key" {
        return None;
    }
    let id = image.get("id")?.get("S")?.as_str()?;
    Some(KeyRecordId(id.to_owned()))
}

/// Validates every key in the batch. A store failure stops the batch and reports that record, so
/// Lambda retries from it; a key that cannot be validated for good (its secret is gone) is logged
/// and passed, so it never blocks the stream.
pub async fn handle<V: ValidateKey>(validator: &V, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let Some(id) = key_id_of(record) else {
            tracing::debug!(event_id = %record.event_id, "not a key record; skipped");
            continue;
        };
        match validator.validate_key(&id).await {
            Ok(()) => {}
            Err(ValidationError::Store(err)) => {
                tracing::warn!(key = %id, error = %err, "store unavailable; batch will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                break;
            }
            Err(err) => tracing::error!(key = %id, error = %err, "key cannot be validated"),
        }
    }
    response
}
