//! Item attributes, key patterns, compression and SDK error mapping of the DynamoDB adapter.
//! `docs/data-model.md` describes the same layout for people.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use shipwatch_service::ports::{StoreError, StoreResult};

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
/// What kind of record an item is; the validator's stream filter keys on `entity = "key"`.
pub const ENTITY: &str = "entity";
pub const BODY: &str = "body";
/// gzip-compressed JSON body (snapshots and outbox batches, which can be large).
pub const BODY_GZ: &str = "body_gz";
pub const REVISION: &str = "revision";
pub const VERSION: &str = "version";
pub const TEAM_ID: &str = "team_id";

/// Largest compressed body kept in one item: DynamoDB items end at 400 KB, names and keys included.
pub const MAX_COMPRESSED_BODY: usize = 350_000;
/// Items one `TransactWriteItems` may hold.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

pub mod keys {
    //! Partition and sort key patterns.

    pub fn team(team: &str) -> String {
        format!("TEAM#{team}")
    }
    pub const TEAM_SK: &str = "TEAM";
    pub fn token(token_hash: &str) -> String {
        format!("TOKEN#{token_hash}")
    }
    pub const TOKEN_SK: &str = "TOKEN";
    pub fn key(key: &str) -> String {
        format!("KEY#{key}")
    }
    pub const KEY_SK: &str = "KEY";
    pub const SNAPSHOT_SK: &str = "SNAPSHOT";
    pub const KEY_ID_GUARD_PREFIX: &str = "KEYID#";
    pub fn key_id_guard(key_id: &str) -> String {
        format!("{KEY_ID_GUARD_PREFIX}{key_id}")
    }
    /// How many gsi1 partitions the key records are spread over, so that listing every key (the
    /// sweep) reads several partitions instead of one hot one.
    pub const KEY_INDEX_PARTITIONS: u32 = 16;
    /// The one gsi1 partition of key records written before the index was spread: still read
    /// (last), and emptied as keys are rewritten.
    pub const LEGACY_ALL_KEYS: &str = "KEYS";
    /// The gsi1 partition of a key record: FNV-1a of its id, so it stays put across rewrites.
    pub fn key_index_partition(key: &str) -> String {
        let hash = key.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
        format!("KEYS#{:02}", hash % KEY_INDEX_PARTITIONS)
    }
    /// The name of key index partition `index` in listing order (the legacy one last); `None`
    /// past the end.
    pub fn key_index_partition_name(index: u32) -> Option<String> {
        match index {
            i if i < KEY_INDEX_PARTITIONS => Some(format!("KEYS#{i:02}")),
            i if i == KEY_INDEX_PARTITIONS => Some(LEGACY_ALL_KEYS.to_owned()),
            _ => None,
        }
    }
    pub const DESTINATION_PREFIX: &str = "DESTINATION#";
    pub fn destination(id: &str) -> String {
        format!("{DESTINATION_PREFIX}{id}")
    }
    pub const WORKFLOW_PREFIX: &str = "WORKFLOW#";
    pub fn workflow(id: &str) -> String {
        format!("{WORKFLOW_PREFIX}{id}")
    }
    pub fn event(event: &str) -> String {
        format!("EVENT#{event}")
    }
    pub const EVENT_SK: &str = "EVENT";
    /// gsi1 partition of a team's history.
    pub fn team_events(team: &str) -> String {
        format!("TEAM#{team}#EVENTS")
    }
    pub const DELIVERY_PREFIX: &str = "DELIVERY#";
    pub fn delivery(id: &str) -> String {
        format!("{DELIVERY_PREFIX}{id}")
    }
    /// gsi1 partition of pending deliveries (sparse: settled deliveries leave it).
    pub const DUE: &str = "DUE";
    pub fn outbox(batch: &str) -> String {
        format!("OUTBOX#{batch}")
    }
    pub fn outbox_part(part: usize) -> String {
        format!("PART#{part:04}")
    }
    /// gsi1 partition of outbox batches not yet expanded.
    pub const OUTBOX: &str = "OUTBOX";
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn primary_key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

pub fn string_attr<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Corrupt(format!(
            "item lacks string attribute {name}"
        ))),
    }
}

/// The record kept as JSON in `body`.
pub fn body<T: serde::de::DeserializeOwned>(what: &str, item: &Item) -> StoreResult<T> {
    crate::store_support::from_json(what, string_attr(item, BODY)?)
}

/// The record kept as gzip JSON in `body_gz`.
pub fn compressed_body<T: serde::de::DeserializeOwned>(what: &str, item: &Item) -> StoreResult<T> {
    let Some(AttributeValue::B(blob)) = item.get(BODY_GZ) else {
        return Err(StoreError::Corrupt(format!("{what} item lacks {BODY_GZ}")));
    };
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(blob.as_ref())
        .read_to_end(&mut json)
        .map_err(|e| StoreError::Corrupt(format!("cannot decompress {what}: {e}")))?;
    serde_json::from_slice(&json)
        .map_err(|e| StoreError::Corrupt(format!("cannot decode {what}: {e}")))
}

/// gzip JSON of `record`; [`StoreError::Unavailable`] if even compressed it cannot fit an item.
pub fn compress<T: serde::Serialize>(what: &str, record: &T) -> StoreResult<AttributeValue> {
    let json = serde_json::to_vec(record)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = encoder
        .write_all(&json)
        .and_then(|()| encoder.finish())
        .map_err(|e| StoreError::Unavailable(format!("cannot compress {what}: {e}")))?;
    if compressed.len() > MAX_COMPRESSED_BODY {
        return Err(StoreError::Unavailable(format!(
            "{what} is {} bytes compressed, over the {MAX_COMPRESSED_BODY} bytes one item holds",
            compressed.len()
        )));
    }
    Ok(AttributeValue::B(Blob::new(compressed)))
}

/// Size of a compressed attribute, for splitting outbox batches.
pub fn compressed_len(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::B(blob) => blob.as_ref().len(),
        _ => 0,
    }
}

/// SDK failure as a port error: a failed condition is a conflict; throttling, 5xx, timeouts and
/// dispatch failures (and anything else) are "unavailable". Only the error code and AWS's message
/// go into the text; secret values never reach DynamoDB.
pub fn dynamo_error<E, R>(operation: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata,
{
    match &error {
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            let code = service_error.code().unwrap_or("unknown");
            if code == "ConditionalCheckFailedException" {
                StoreError::Conflict(format!("{operation}: a condition failed"))
            } else {
                StoreError::Unavailable(format!(
                    "{operation}: {code}: {}",
                    service_error.message().unwrap_or("no message")
                ))
            }
        }
        SdkError::TimeoutError(_) => StoreError::Unavailable(format!("{operation}: timed out")),
        SdkError::DispatchFailure(_) => {
            StoreError::Unavailable(format!("{operation}: could not reach DynamoDB"))
        }
        SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!("{operation}: unreadable DynamoDB response"))
        }
        _ => StoreError::Unavailable(format!("{operation}: request failed")),
    }
}

/// Like [`dynamo_error`], reading why a transaction was cancelled: a failed condition or a
/// concurrent transaction on the same item is a conflict (someone else wrote first).
pub fn transaction_error<R>(
    operation: &str,
    error: SdkError<TransactWriteItemsError, R>,
) -> StoreError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    {
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .filter_map(|reason| reason.code())
            .filter(|code| *code != "None")
            .collect();
        let message = cancelled.message().unwrap_or_default();
        let conflict = codes
            .iter()
            .any(|code| matches!(*code, "ConditionalCheckFailed" | "TransactionConflict"))
            || (codes.is_empty() && message.contains("ConditionalCheckFailed"));
        let reasons = if codes.is_empty() {
            message.to_owned()
        } else {
            codes.join(", ")
        };
        return if conflict {
            StoreError::Conflict(format!("{operation}: a condition failed ({reasons})"))
        } else {
            StoreError::Unavailable(format!("{operation}: transaction cancelled ({reasons})"))
        };
    }
    dynamo_error(operation, error)
}

/// Request construction failure (a missing required field): a bug here, reported as unavailable.
pub fn build_error(
    operation: &str,
) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("{operation}: cannot build request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::keys::*;
    use std::collections::HashMap;

    #[test]
    fn key_records_spread_over_every_listed_index_partition() {
        let listed: Vec<String> = (0..).map_while(key_index_partition_name).collect();
        assert_eq!(listed.len() as u32, KEY_INDEX_PARTITIONS + 1);
        assert_eq!(listed.last().map(String::as_str), Some(LEGACY_ALL_KEYS));
        let mut per_partition: HashMap<String, usize> = HashMap::new();
        for n in 0..16_000 {
            let partition = key_index_partition(&format!("key-{n}"));
            assert!(listed.contains(&partition), "{partition} is never listed");
            *per_partition.entry(partition).or_default() += 1;
        }
        // Every partition gets a fair share (1,000 each on average).
        assert_eq!(per_partition.len() as u32, KEY_INDEX_PARTITIONS);
        assert!(
            per_partition.values().all(|&n| (700..1300).contains(&n)),
            "{per_partition:?}"
        );
        assert_eq!(key_index_partition("key-1"), key_index_partition("key-1"));
    }
}
