//! Records shipwatch keeps. Secrets (private keys, destination URLs, signing secrets) are never part of
//! these records: they live behind [`crate::ports::SecretStore`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shipwatch_shared::credentials::{IssuerId, KeyId};

use crate::domain::event_data::EventData;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A team (tenant).
    TeamId
);
string_id!(
    /// Our id of an uploaded API key (not Apple's Key ID).
    KeyRecordId
);
string_id!(DestinationId);
string_id!(WorkflowId);
string_id!(EventId);
string_id!(DeliveryId);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    /// Lowercase hex SHA-256 of the team's bearer token; the token itself is never stored.
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Validating,
    Valid,
    Invalid,
    ActionRequired,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::ActionRequired => "action_required",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatusCode {
    NotAuthorized,
    InsufficientRole,
    AgreementsRequired,
    AscUnavailable,
    /// Google Play: the service account may not read the app (403).
    InsufficientPermission,
    /// Google Play: no app with the package name (404).
    PackageNotFound,
    /// Google Play could not be reached; validation is retried.
    StoreUnavailable,
}

impl KeyStatusCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAuthorized => "not_authorized",
            Self::InsufficientRole => "insufficient_role",
            Self::AgreementsRequired => "agreements_required",
            Self::AscUnavailable => "asc_unavailable",
            Self::InsufficientPermission => "insufficient_permission",
            Self::PackageNotFound => "package_not_found",
            Self::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Which store account a key opens, without its secret. Stored flattened into the key record as
/// `platform` plus the store's own ids; records written before `platform` existed are App Store
/// Connect keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredAccountRef", into = "StoredAccountRef")]
pub enum AccountRef {
    AppStoreConnect {
        key_id: KeyId,
        issuer_id: IssuerId,
    },
    /// A Google Play service account and the packages it watches.
    GooglePlay {
        client_email: String,
        private_key_id: String,
        package_names: Vec<String>,
    },
}

impl AccountRef {
    pub fn platform(&self) -> Platform {
        match self {
            Self::AppStoreConnect { .. } => Platform::AppStoreConnect,
            Self::GooglePlay { .. } => Platform::GooglePlay,
        }
    }

    /// What identifies the account within a team (a team may upload it once): Apple's Key ID.
    pub fn identity(&self) -> &str {
        match self {
            Self::AppStoreConnect { key_id, .. } => key_id.as_str(),
            Self::GooglePlay { client_email, .. } => client_email.as_str(),
        }
    }
}

/// The store a key belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    #[default]
    AppStoreConnect,
    GooglePlay,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppStoreConnect => "app_store_connect",
            Self::GooglePlay => "google_play",
        }
    }
}

/// The stored shape of [`AccountRef`]: every store's fields optional, checked on the way in.
#[derive(Serialize, Deserialize)]
struct StoredAccountRef {
    #[serde(default)]
    platform: Platform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<KeyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer_id: Option<IssuerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    package_names: Option<Vec<String>>,
}

impl TryFrom<StoredAccountRef> for AccountRef {
    type Error = String;

    fn try_from(stored: StoredAccountRef) -> Result<Self, Self::Error> {
        match stored.platform {
            Platform::AppStoreConnect => match (stored.key_id, stored.issuer_id) {
                (Some(key_id), Some(issuer_id)) => Ok(Self::AppStoreConnect { key_id, issuer_id }),
                _ => Err("an App Store Connect key record needs key_id and issuer_id".into()),
            },
            Platform::GooglePlay => match (
                stored.client_email,
                stored.private_key_id,
                stored.package_names,
            ) {
                (Some(client_email), Some(private_key_id), Some(package_names)) => {
                    Ok(Self::GooglePlay {
                        client_email,
                        private_key_id,
                        package_names,
                    })
                }
                _ => Err(
                    "a Google Play key record needs client_email, private_key_id and package_names"
                        .into(),
                ),
            },
        }
    }
}

impl From<AccountRef> for StoredAccountRef {
    fn from(account: AccountRef) -> Self {
        match account {
            AccountRef::AppStoreConnect { key_id, issuer_id } => Self {
                platform: Platform::AppStoreConnect,
                key_id: Some(key_id),
                issuer_id: Some(issuer_id),
                client_email: None,
                private_key_id: None,
                package_names: None,
            },
            AccountRef::GooglePlay {
                client_email,
                private_key_id,
                package_names,
            } => Self {
                platform: Platform::GooglePlay,
                key_id: None,
                issuer_id: None,
                client_email: Some(client_email),
                private_key_id: Some(private_key_id),
                package_names: Some(package_names),
            },
        }
    }
}

/// An uploaded store API key (App Store Connect today), without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: KeyRecordId,
    pub team_id: TeamId,
    pub name: String,
    #[serde(flatten)]
    pub account: AccountRef,
    pub public_key_fingerprint: String,
    pub status: KeyStatus,
    pub status_code: Option<KeyStatusCode>,
    pub status_message: Option<String>,
    pub apps_count: Option<u32>,
    pub validated_at: Option<DateTime<Utc>>,
    pub last_swept_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Validation attempts since the last request to validate; 0 means "validate now" (the stream
    /// filter of the validator Lambda keys on it, so a retry write does not re-trigger itself).
    pub validation_attempts: u32,
    /// When a key left in `validating` by an App Store Connect outage is tried again.
    pub next_validation_at: Option<DateTime<Utc>>,
    /// Bumped on every write; updates are conditional on it (optimistic concurrency).
    pub revision: u64,
    /// The sweep's count of App Store Connect requests, kept only while the key is near
    /// shipwatch's share of its hourly allowance (see `crate::rate_budget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asc_usage: Option<AscUsage>,
    /// When a user last asked for re-validations, within `throttle::REVALIDATIONS_PER_KEY`'s
    /// window (kept on the record so the limit holds across processes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revalidation_requests: Vec<DateTime<Utc>>,
    /// Push from App Store Connect webhooks (`crate::push`); `None` until provisioning ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushState>,
}

/// Requests the sweep sent as one key in the current clock hour, and when it may sweep the key
/// again. Only kept while App Store Connect's own `X-Rate-Limit` report cannot prove that
/// shipwatch is within its share, so unchanged keys cost no write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AscUsage {
    /// Start of the clock hour `used` counts in.
    pub hour_start: DateTime<Utc>,
    /// Requests shipwatch sent as this key in that hour (an upper bound when counting began
    /// mid-hour).
    pub used: u32,
    /// Requests of the key's last sweep: what the next one is expected to cost.
    pub last_sweep_requests: u32,
    /// `X-Rate-Limit` of the last answer: the key's hourly allowance and what was left of it.
    pub hourly_limit: u32,
    pub hourly_remaining: u32,
    /// The key is not swept before this time (pacing when its budget runs low).
    pub next_sweep_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    /// Name of the secret that holds this key's `.p8` PEM.
    pub fn secret_name(&self) -> SecretName {
        SecretName::for_key(&self.team_id, &self.id)
    }
}

/// Name of a secret, always under the `shipwatch/` prefix (IAM grants only `shipwatch/*`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    pub const PREFIX: &'static str = "shipwatch/";

    pub fn for_key(team: &TeamId, key: &KeyRecordId) -> Self {
        Self(format!("{}teams/{team}/keys/{key}", Self::PREFIX))
    }

    /// The signing secret of one of our App Store Connect webhooks (`PushWebhook::reference`).
    pub fn for_webhook(team: &TeamId, reference: &str) -> Self {
        Self(format!("{}teams/{team}/webhooks/{reference}", Self::PREFIX))
    }

    pub fn for_destination(team: &TeamId, destination: &DestinationId) -> Self {
        Self(format!(
            "{}teams/{team}/destinations/{destination}",
            Self::PREFIX
        ))
    }

    /// The admin token of an AWS deployment (created by template.yaml).
    pub fn admin_token() -> Self {
        Self(format!("{}admin-token", Self::PREFIX))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Secret material. `Debug` never shows it and the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(zeroize::Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> Self {
        Self(zeroize::Zeroizing::new(value))
    }

    /// The secret itself; call sites are the few places that must hand it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    Slack,
    Discord,
    Teams,
    Webhook,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Teams => "teams",
            Self::Webhook => "webhook",
        }
    }
}

/// A notification target. Its URL and (for webhooks) signing secret are in the secret store as
/// [`DestinationSecrets`] JSON under [`SecretName::for_destination`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub id: DestinationId,
    pub team_id: TeamId,
    pub kind: DestinationKind,
    pub name: String,
    /// What responses show of the URL, e.g. `https://hooks.slack.com/…/abcd`.
    pub url_hint: String,
    pub created_at: DateTime<Utc>,
    /// How the latest send to it ended (a test or a delivery), absent until the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<LastOutcome>,
}

/// How one send to a destination ended, as its page shows it: no URL, no response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastOutcome {
    pub at: DateTime<Utc>,
    pub delivered: bool,
    pub http_status: Option<u16>,
    /// The failure in words (the attempt's error, which never holds the URL).
    pub error: Option<String>,
}

impl LastOutcome {
    pub fn of(attempt: &DeliveryAttempt) -> Self {
        Self {
            at: attempt.at,
            delivered: attempt.error.is_none(),
            http_status: attempt.status_code,
            error: attempt.error.clone(),
        }
    }

    /// Whether this outcome should replace `stored`: it is not older (ties: the later write wins).
    pub fn replaces(&self, stored: Option<&LastOutcome>) -> bool {
        stored.is_none_or(|stored| self.at >= stored.at)
    }
}

/// The secret half of a destination.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationSecrets {
    pub url: String,
    /// `whsec_<base64>` for webhooks.
    pub signing_secret: Option<String>,
}

impl fmt::Debug for DestinationSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DestinationSecrets(<redacted>)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: WorkflowId,
    pub team_id: TeamId,
    pub name: String,
    pub destination_id: DestinationId,
    /// App Store Connect app ids, or `["*"]` for all.
    pub app_ids: Vec<String>,
    /// Event types of `docs/events.md`, or `["*"]` for all.
    pub event_types: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// One observed change, as stored in the history and sent to destinations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredEventRecord")]
pub struct EventRecord {
    pub id: EventId,
    pub team_id: TeamId,
    /// The key whose sweep saw the change (none for `shipwatch.test`).
    pub key_record_id: Option<KeyRecordId>,
    /// App Store Connect app id, where the event concerns one app (the CloudEvents `subject`).
    pub app_id: Option<String>,
    /// CloudEvents `type`, e.g. `shipwatch.app_version.state_changed`: the type of `data`
    /// ([`EventData::event_type`]) unless `data` is [`EventData::Other`].
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// CloudEvents `data`. Stored without a tag; reading a record back types it by `event_type`.
    pub data: EventData,
    /// One line for people, also what free-text search looks at.
    pub summary: String,
}

/// An [`EventRecord`] as stored, with `data` still plain JSON: its shape depends on `event_type`.
#[derive(Deserialize)]
struct StoredEventRecord {
    id: EventId,
    team_id: TeamId,
    key_record_id: Option<KeyRecordId>,
    app_id: Option<String>,
    event_type: String,
    time: DateTime<Utc>,
    data: serde_json::Value,
    summary: String,
}

impl From<StoredEventRecord> for EventRecord {
    fn from(stored: StoredEventRecord) -> Self {
        Self {
            data: EventData::from_stored(&stored.event_type, stored.data),
            id: stored.id,
            team_id: stored.team_id,
            key_record_id: stored.key_record_id,
            app_id: stored.app_id,
            event_type: stored.event_type,
            time: stored.time,
            summary: stored.summary,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet delivered; tried again from `next_attempt_at`.
    Pending,
    Delivered,
    /// Gave up after the last allowed attempt.
    Failed,
}

/// One recorded send of a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// HTTP status answered, if any.
    pub status_code: Option<u16>,
    /// What went wrong, without the URL.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// An event on its way to one destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub team_id: TeamId,
    pub destination_id: DestinationId,
    pub status: DeliveryStatus,
    pub attempts: Vec<DeliveryAttempt>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// A sender holds the delivery until then; others skip it (no double sends from overlapping sweeps).
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Bumped on every write; updates are conditional on it.
    pub revision: u64,
}

/// A stored event with its deliveries, as the history shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventWithDeliveries {
    pub event: EventRecord,
    pub deliveries: Vec<DeliveryRecord>,
}

/// The last state a key's sweep saw, with the version its next write must match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredSnapshot {
    pub key_record_id: KeyRecordId,
    pub team_id: TeamId,
    /// 0 when none is stored yet.
    pub version: u64,
    /// The domain snapshot, serialized (see `crate::domain::snapshot`).
    pub state: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

/// Filter of `GET /v1/events`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub app_id: Option<String>,
    pub event_type: Option<String>,
    /// Case-insensitive substring of the summary or of the data's text.
    pub text: Option<String>,
    pub limit: u32,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Whether a key's changes are pushed by App Store Connect webhooks (`GET /v1/keys/{id}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// No public URL is configured: polling only.
    Off,
    /// The key's role may not manage webhooks.
    Unavailable,
    Active,
    /// A webhook was deleted, disabled or repointed and could not be repaired.
    Degraded,
}

impl PushStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Unavailable => "unavailable",
            Self::Active => "active",
            Self::Degraded => "degraded",
        }
    }
}

/// The push side of a key: its status and the webhooks shipwatch made for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushState {
    pub status: PushStatus,
    pub message: Option<String>,
    #[serde(default)]
    pub webhooks: Vec<PushWebhook>,
    pub checked_at: DateTime<Utc>,
}

/// One App Store Connect webhook shipwatch created (its secret is under
/// `SecretName::for_webhook`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushWebhook {
    /// The opaque last segment of the webhook's URL (random; not the secret).
    pub reference: String,
    pub app_id: String,
    /// Apple's id of the webhook.
    pub webhook_id: String,
}

#[cfg(test)]
mod last_outcome_tests {
    use super::*;

    #[test]
    fn an_outcome_replaces_none_and_older_ones_only() {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default();
        let outcome = |s| LastOutcome {
            at: at(s),
            delivered: true,
            http_status: Some(200),
            error: None,
        };
        assert!(outcome(5).replaces(None));
        assert!(outcome(5).replaces(Some(&outcome(4))));
        assert!(outcome(5).replaces(Some(&outcome(5))));
        assert!(!outcome(5).replaces(Some(&outcome(6))));
        let failed = LastOutcome::of(&DeliveryAttempt {
            at: at(1),
            status_code: Some(500),
            error: Some("the destination answered HTTP 500".into()),
            duration_ms: 3,
        });
        assert!(!failed.delivered && failed.http_status == Some(500));
    }
}
