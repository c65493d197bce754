//! Ports: the small traits the application services are written against. Each adapter (embedded
//! SQLite, DynamoDB + Secrets Manager, HTTP senders) implements them in one module, and one
//! contract test suite (`tests/`) runs against every store adapter.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::*;

/// Failure of a store or secret adapter. Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule or an optimistic-concurrency condition failed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store could not be reached or answered with an error; safe to retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait TeamStore: Send + Sync {
    async fn insert_team(&self, team: &Team) -> StoreResult<()>;
    async fn get_team(&self, id: &TeamId) -> StoreResult<Option<Team>>;
    async fn find_team_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Team>>;
}

/// Keys per page when the sweep or the validator lists every key: large enough that a listing of
/// a million keys is a thousand requests, small enough that a page's records stay a few MB.
pub const KEY_LIST_PAGE_SIZE: usize = 1000;

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Fails with [`StoreError::Conflict`] when the team already has a key with this `key_id`.
    async fn insert_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    /// The key if it belongs to `team`.
    async fn get_key(&self, team: &TeamId, id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>>;
    /// The key whatever its team (validator and sweep, which are not team-scoped).
    async fn get_key_by_id(&self, id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>>;
    /// The team's keys, oldest first.
    async fn list_keys(&self, team: &TeamId) -> StoreResult<Vec<ApiKeyRecord>>;
    /// One page of every team's keys (sweep, re-validation), at most `limit` of them, in an order
    /// that holds while keys are added or removed (each key appears once across the pages of one
    /// listing, unless it was added after the listing passed its place). `cursor` is the previous
    /// page's `next_cursor`; `None` starts over. The sweep reads a page at a time, so memory does
    /// not grow with the number of keys.
    async fn list_keys_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ApiKeyRecord>>;
    /// Writes `key` (whose `revision` must already be `expected_revision + 1`) only if the stored
    /// revision is still `expected_revision`; otherwise [`StoreError::Conflict`].
    async fn update_key(&self, key: &ApiKeyRecord, expected_revision: u64) -> StoreResult<()>;
    /// [`Self::update_key`] and, in the same transaction, the events announcing the change with
    /// their deliveries: both are stored or neither (a crash between the two cannot lose the
    /// announcement of a change it made, nor announce one it did not).
    async fn update_key_announcing(
        &self,
        key: &ApiKeyRecord,
        expected_revision: u64,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<()>;
    /// Removes the key and everything that hangs on it (snapshot, key_id uniqueness). `false` if absent.
    async fn delete_key(&self, team: &TeamId, id: &KeyRecordId) -> StoreResult<bool>;
}

/// Secret values: Secrets Manager on AWS (names under `shipwatch/`), owner-only files locally.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Creates the secret or replaces its value.
    async fn put_secret(&self, name: &SecretName, value: &SecretValue) -> StoreResult<()>;
    async fn get_secret(&self, name: &SecretName) -> StoreResult<Option<SecretValue>>;
    /// Deletes at once, without a recovery window. Deleting an absent secret is not an error.
    async fn delete_secret(&self, name: &SecretName) -> StoreResult<()>;
}

#[async_trait]
pub trait DestinationStore: Send + Sync {
    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()>;
    async fn get_destination(
        &self,
        team: &TeamId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>>;
    async fn list_destinations(&self, team: &TeamId) -> StoreResult<Vec<Destination>>;
    async fn delete_destination(&self, team: &TeamId, id: &DestinationId) -> StoreResult<bool>;
    /// Stores `outcome` as the destination's last one unless the stored one is newer (sends
    /// finishing out of order keep the latest). `false` if the destination is gone.
    async fn record_destination_outcome(
        &self,
        team: &TeamId,
        id: &DestinationId,
        outcome: &LastOutcome,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait WorkflowStore: Send + Sync {
    async fn insert_workflow(&self, workflow: &Workflow) -> StoreResult<()>;
    async fn get_workflow(&self, team: &TeamId, id: &WorkflowId) -> StoreResult<Option<Workflow>>;
    async fn list_workflows(&self, team: &TeamId) -> StoreResult<Vec<Workflow>>;
    async fn delete_workflow(&self, team: &TeamId, id: &WorkflowId) -> StoreResult<bool>;
}

/// What one key's sweep writes, all or nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepCommit {
    /// The snapshot to store; its `version` must be `expected_version + 1`.
    pub snapshot: StoredSnapshot,
    /// The stored version the sweep read (0 if there was none).
    pub expected_version: u64,
    pub events: Vec<EventRecord>,
    pub deliveries: Vec<DeliveryRecord>,
}

/// Snapshots, history and the delivery outbox.
#[async_trait]
pub trait SweepStore: Send + Sync {
    async fn get_snapshot(&self, key: &KeyRecordId) -> StoreResult<Option<StoredSnapshot>>;
    /// The snapshots of `keys` in one call (read models that show many keys at once); keys without
    /// a snapshot are simply missing from the answer, whose order is unspecified.
    async fn get_snapshots(&self, keys: &[KeyRecordId]) -> StoreResult<Vec<StoredSnapshot>>;
    /// Atomically stores the snapshot, the events and their deliveries if the stored snapshot
    /// version is still `expected_version`; otherwise [`StoreError::Conflict`] and nothing is written.
    /// This is what makes every transition reported exactly once when sweeps overlap.
    async fn commit_sweep(&self, commit: &SweepCommit) -> StoreResult<()>;
    /// Stores events and deliveries that do not come from a snapshot (test events, key status).
    async fn append_events(
        &self,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<()>;
    /// The team's history, newest first.
    async fn list_events(
        &self,
        team: &TeamId,
        query: &EventQuery,
    ) -> StoreResult<Page<EventWithDeliveries>>;
    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>>;
    /// Pending deliveries whose `next_attempt_at` is at or before `now` and whose lease has expired.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Conditional write of a delivery (claim with a lease, or record an attempt): succeeds only if
    /// the stored revision is `expected_revision`; otherwise [`StoreError::Conflict`].
    async fn update_delivery(
        &self,
        delivery: &DeliveryRecord,
        expected_revision: u64,
    ) -> StoreResult<()>;
}

/// Every store port, as the services take them. Adapters build one of these.
#[derive(Clone)]
pub struct Stores {
    pub teams: std::sync::Arc<dyn TeamStore>,
    pub keys: std::sync::Arc<dyn KeyStore>,
    pub secrets: std::sync::Arc<dyn SecretStore>,
    pub destinations: std::sync::Arc<dyn DestinationStore>,
    pub workflows: std::sync::Arc<dyn WorkflowStore>,
    pub sweeps: std::sync::Arc<dyn SweepStore>,
    pub members: std::sync::Arc<dyn MemberStore>,
    pub push: std::sync::Arc<dyn PushStore>,
    pub sign_in_failures: std::sync::Arc<dyn SignInFailureStore>,
}

/// How one send to a destination ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        /// The HTTP status, for destinations reached over HTTP.
        http_status: Option<u16>,
    },
    Failed {
        /// `false` when trying again cannot help (the delivery is given up at once).
        retryable: bool,
        /// What went wrong, in words, without the destination's URL or secrets.
        detail: String,
        http_status: Option<u16>,
    },
}

impl DeliveryOutcome {
    pub fn is_delivered(&self) -> bool {
        matches!(self, Self::Delivered { .. })
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Delivered { http_status } | Self::Failed { http_status, .. } => *http_status,
        }
    }

    /// The failure's description; `None` when delivered.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Delivered { .. } => None,
            Self::Failed { detail, .. } => Some(detail),
        }
    }
}

/// Sends one event to one destination (never panics, never puts the URL in the outcome). One
/// adapter per destination kind family (HTTP today).
#[async_trait]
pub trait Deliverer: Send + Sync {
    async fn deliver(
        &self,
        destination: &Destination,
        secrets: &DestinationSecrets,
        event: &EventRecord,
    ) -> DeliveryOutcome;
}

/// The dashboard's members, invites and sessions (`crate::members`).
#[async_trait]
pub trait MemberStore: Send + Sync {
    async fn insert_invite(&self, invite: &crate::members::Invite) -> StoreResult<()>;
    async fn get_invite(&self, token_hash: &str) -> StoreResult<Option<crate::members::Invite>>;
    /// In one transaction: removes the invite and stores `member`. [`StoreError::Conflict`] (and
    /// nothing written) when the invite was already used or the email belongs to a member.
    async fn accept_invite(
        &self,
        token_hash: &str,
        member: &crate::members::Member,
    ) -> StoreResult<()>;
    async fn get_member(
        &self,
        id: &crate::members::MemberId,
    ) -> StoreResult<Option<crate::members::Member>>;
    /// `email` lowercased, as stored.
    async fn find_member_by_email(
        &self,
        email: &str,
    ) -> StoreResult<Option<crate::members::Member>>;
    /// The team's members, oldest first.
    async fn list_members(&self, team: &TeamId) -> StoreResult<Vec<crate::members::Member>>;
    /// `expires_at` is when the store may forget the session on its own (a TTL).
    async fn insert_session(
        &self,
        session: &crate::members::Session,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn get_session(&self, id_hash: &str) -> StoreResult<Option<crate::members::Session>>;
    /// Moves `last_seen_at` (and the TTL) of an existing session; `false` if it is gone.
    async fn touch_session(
        &self,
        id_hash: &str,
        last_seen_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// `false` if it was already gone.
    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool>;
    /// Stores a named API token; [`StoreError::Conflict`] if its hash or id is already stored.
    async fn insert_api_token(&self, token: &crate::api_tokens::ApiToken) -> StoreResult<()>;
    /// The API token with this hash, whatever its team (one key lookup).
    async fn find_api_token(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<crate::api_tokens::ApiToken>>;
    /// The team's API tokens, oldest first.
    async fn list_api_tokens(&self, team: &TeamId)
    -> StoreResult<Vec<crate::api_tokens::ApiToken>>;
    /// Removes the token if it belongs to `team`; `false` if there is no such token of the team.
    async fn delete_api_token(
        &self,
        team: &TeamId,
        id: &crate::api_tokens::ApiTokenId,
    ) -> StoreResult<bool>;
    /// Sets `last_used_at` of an existing token (never brings a revoked one back); `false` if gone.
    async fn touch_api_token(&self, token_hash: &str, at: DateTime<Utc>) -> StoreResult<bool>;
}

/// What the push receiver remembers across processes: the `data.id`s of App Store Connect
/// notifications already handled, so a redelivery (Apple retries over days) is handled once.
#[async_trait]
pub trait PushStore: Send + Sync {
    /// Records notification `data_id` of webhook `webhook` until `expires_at`, if it is not
    /// already recorded (a record whose `expires_at` is at or before `now` counts as absent and
    /// is replaced). `true` the first time; `false` when it was recorded before. Conditional, so
    /// of two concurrent calls exactly one gets `true`.
    async fn remember_notification(
        &self,
        webhook: &str,
        data_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Forgets a notification again (its handling failed, so Apple's retry must be processed).
    async fn forget_notification(&self, webhook: &str, data_id: &str) -> StoreResult<()>;
}

/// Failed dashboard sign-ins, per throttle name (an account or a client, hashed by the caller so
/// no email or address is stored for it). Held in the store so that every process (each warm
/// Lambda container) counts the same failures.
#[async_trait]
pub trait SignInFailureStore: Send + Sync {
    /// Records one failure of each of `names` at `at`; the store may forget it from `forget_at` on.
    async fn record_sign_in_failure(
        &self,
        names: &[String],
        at: DateTime<Utc>,
        forget_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The failures of `name` recorded after `since`, in any order.
    async fn sign_in_failures_since(
        &self,
        name: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<DateTime<Utc>>>;
}
