//! Rules both store adapters share, so the embedded store and DynamoDB order, page, search and
//! validate exactly alike (one contract suite runs against both).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use shipwatch_service::model::{ApiKeyRecord, DeliveryRecord, DeliveryStatus, EventRecord};
use shipwatch_service::ports::{StoreError, StoreResult};

/// History page size when the query does not say.
pub const DEFAULT_EVENT_LIMIT: u32 = 50;
/// Largest history page.
pub const MAX_EVENT_LIMIT: u32 = 100;

/// `limit` of an event query clamped to 1..=100; 0 means the default.
pub fn effective_limit(requested: u32) -> usize {
    let limit = if requested == 0 {
        DEFAULT_EVENT_LIMIT
    } else {
        requested.min(MAX_EVENT_LIMIT)
    };
    limit as usize
}

/// A fixed-width UTC timestamp whose string order is its time order (sort keys, due times).
pub fn time_key(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// Where an event sits in a team's history: newest first means descending on this key.
pub fn event_position(event: &EventRecord) -> EventPosition {
    EventPosition {
        time_key: time_key(event.time),
        event_id: event.id.0.clone(),
    }
}

/// The position of an event in the history; the opaque cursor encodes the last one returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventPosition {
    pub time_key: String,
    pub event_id: String,
}

impl EventPosition {
    /// `<time_key>#<event id>`: sorts like the history because `time_key` has a fixed width.
    pub fn sort_key(&self) -> String {
        format!("{}#{}", self.time_key, self.event_id)
    }

    pub fn to_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sort_key())
    }

    /// Reads a cursor from a previous page. A cursor that was not made here is reported as
    /// [`StoreError::Corrupt`] (the ports have no "bad input" error).
    pub fn from_cursor(cursor: &str) -> StoreResult<Self> {
        let invalid = || StoreError::Corrupt("invalid history cursor".to_owned());
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (time_key, event_id) = text.split_once('#').ok_or_else(invalid)?;
        let well_formed_time = DateTime::parse_from_rfc3339(time_key).is_ok()
            && time_key.len() == "0000-00-00T00:00:00.000000000Z".len();
        if !well_formed_time || event_id.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            time_key: time_key.to_owned(),
            event_id: event_id.to_owned(),
        })
    }
}

/// Where a listing of every key stopped: the key index partition it is in (DynamoDB spreads the
/// index over several; SQLite has one, 0) and the last key returned there, as `<time_key of its
/// creation>#<id>` (the order within a partition). The opaque cursor of `KeyStore::list_keys_page`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyListPosition {
    pub partition: u32,
    /// `None`: the partition has not been read yet.
    pub after: Option<String>,
}

impl KeyListPosition {
    pub fn to_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}|{}",
            self.partition,
            self.after.as_deref().unwrap_or_default()
        ))
    }

    /// A cursor that was not made here is [`StoreError::Corrupt`], like a bad history cursor.
    pub fn from_cursor(cursor: &str) -> StoreResult<Self> {
        let invalid = || StoreError::Corrupt("invalid key listing cursor".to_owned());
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (partition, after) = text.split_once('|').ok_or_else(invalid)?;
        let partition = partition.parse().map_err(|_| invalid())?;
        let after = match after {
            "" => None,
            after if after.contains('#') => Some(after.to_owned()),
            _ => return Err(invalid()),
        };
        Ok(Self { partition, after })
    }
}

/// A key's place in the key listing order: `<time_key(created_at)>#<id>`.
pub fn key_list_sort_key(key: &ApiKeyRecord) -> String {
    format!("{}#{}", time_key(key.created_at), key.id)
}

/// Lowercased text that free-text search looks at: the summary and every scalar of `data`.
pub fn search_text(event: &EventRecord) -> String {
    let mut text = event.summary.to_lowercase();
    collect_scalars(&event.data.to_json(), &mut text);
    text
}

fn collect_scalars(value: &serde_json::Value, into: &mut String) {
    match value {
        serde_json::Value::String(s) => {
            into.push('\n');
            into.push_str(&s.to_lowercase());
        }
        serde_json::Value::Number(n) => {
            into.push('\n');
            into.push_str(&n.to_string());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_scalars(v, into)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_scalars(v, into)),
        serde_json::Value::Bool(_) | serde_json::Value::Null => {}
    }
}

/// The needle of a free-text query, lowercased; `None` when there is nothing to search for.
pub fn search_needle(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

/// When a pending delivery may be sent: the later of `next_attempt_at` and `lease_until`
/// (a pending delivery without `next_attempt_at` is due at once). `None` once it is settled, so
/// settled deliveries drop out of the due index.
pub fn due_key(delivery: &DeliveryRecord) -> Option<String> {
    if delivery.status != DeliveryStatus::Pending {
        return None;
    }
    let due_at = match (delivery.next_attempt_at, delivery.lease_until) {
        (Some(next), Some(lease)) => next.max(lease),
        (Some(next), None) => next,
        (None, Some(lease)) => lease,
        (None, None) => DateTime::<Utc>::UNIX_EPOCH,
    };
    Some(format!("{}#{}", time_key(due_at), delivery.id))
}

/// Upper bound (exclusive) of due keys at `now`: every `<time_key(now)>#<id>` sorts below it
/// because `$` follows `#`.
pub fn due_upper_bound(now: DateTime<Utc>) -> String {
    format!("{}$", time_key(now))
}

/// A write must carry the next revision; anything else would let two writers both succeed.
pub fn check_next_revision(what: &str, written: u64, expected: u64) -> StoreResult<()> {
    if expected.checked_add(1) == Some(written) {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "{what} must be written with revision {expected} + 1, got {written}"
        )))
    }
}

/// `JSON` of a record, as both adapters keep it.
pub fn to_json<T: serde::Serialize>(what: &str, record: &T) -> StoreResult<String> {
    serde_json::to_string(record)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

pub fn from_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> StoreResult<T> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("cannot decode {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn time_keys_sort_like_times() {
        let early = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).single();
        let late = early.map(|t| t + chrono::Duration::nanoseconds(1));
        let (Some(early), Some(late)) = (early, late) else {
            panic!("valid dates");
        };
        assert!(time_key(early) < time_key(late));
        assert_eq!(time_key(early).len(), time_key(late).len());
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let position = EventPosition {
            time_key: time_key(DateTime::<Utc>::UNIX_EPOCH),
            event_id: "abc#def".to_owned(),
        };
        let decoded = EventPosition::from_cursor(&position.to_cursor());
        assert_eq!(decoded.ok(), Some(position));
        assert!(EventPosition::from_cursor("not a cursor").is_err());
        assert!(EventPosition::from_cursor(&URL_SAFE_NO_PAD.encode("x#y")).is_err());
    }

    #[test]
    fn key_listing_cursor_round_trips_and_rejects_garbage() {
        for position in [
            KeyListPosition {
                partition: 0,
                after: None,
            },
            KeyListPosition {
                partition: 15,
                after: Some(format!("{}#key-1", time_key(DateTime::<Utc>::UNIX_EPOCH))),
            },
        ] {
            assert_eq!(
                KeyListPosition::from_cursor(&position.to_cursor()).ok(),
                Some(position)
            );
        }
        for garbage in ["", "x|", "1|nohash", "-1|"] {
            assert!(KeyListPosition::from_cursor(&URL_SAFE_NO_PAD.encode(garbage)).is_err());
        }
        assert!(KeyListPosition::from_cursor("not base64!").is_err());
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(effective_limit(0), 50);
        assert_eq!(effective_limit(7), 7);
        assert_eq!(effective_limit(1000), 100);
    }
}
