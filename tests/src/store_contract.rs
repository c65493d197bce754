//! Support for the store contract suite: records to store and a throwaway data folder.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use shipwatch_service::domain::diff::{AppRef, BuildRef, VersionRef};
use shipwatch_service::domain::event_data::{AppVersionStateChanged, BuildStateChanged, EventData};
use shipwatch_service::domain::events;
use shipwatch_service::model::*;
use shipwatch_shared::credentials::{IssuerId, KeyId};

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "shipwatch-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fixed instant plus `seconds`, so tests control the order of records.
pub fn at(seconds: i64) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2025, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    base + Duration::seconds(seconds)
}

pub fn team(name: &str) -> Team {
    Team {
        id: TeamId::generate(),
        name: name.to_owned(),
        token_hash: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        created_at: at(0),
    }
}

/// A key of `team` with Apple Key ID `key_id` (10 of A-Z0-9), created at `at(created)`.
pub fn api_key(team: &TeamId, key_id: &str, created: i64) -> ApiKeyRecord {
    let key_id = KeyId::parse(key_id).unwrap_or_else(|e| panic!("test Key ID {key_id}: {e}"));
    let issuer_id = IssuerId::parse("57246542-96fe-1a63-e053-0824d011072a")
        .unwrap_or_else(|e| panic!("test Issuer ID: {e}"));
    ApiKeyRecord {
        id: KeyRecordId::generate(),
        team_id: team.clone(),
        name: format!("key {}", key_id.as_str()),
        account: shipwatch_service::model::AccountRef::AppStoreConnect { key_id, issuer_id },
        public_key_fingerprint: "SHA256:test".to_owned(),
        status: KeyStatus::Validating,
        status_code: None,
        status_message: None,
        apps_count: None,
        validated_at: None,
        last_swept_at: None,
        created_at: at(created),
        updated_at: at(created),
        validation_attempts: 0,
        next_validation_at: None,
        revision: 0,
        asc_usage: None,
        revalidation_requests: Vec::new(),
        push: None,
    }
}

pub fn destination(team: &TeamId, name: &str, created: i64) -> Destination {
    Destination {
        id: DestinationId::generate(),
        team_id: team.clone(),
        kind: DestinationKind::Webhook,
        name: name.to_owned(),
        url_hint: "https://example.com/…/hook".to_owned(),
        created_at: at(created),
        last_outcome: None,
    }
}

pub fn workflow(team: &TeamId, destination: &DestinationId, name: &str, created: i64) -> Workflow {
    Workflow {
        id: WorkflowId::generate(),
        team_id: team.clone(),
        name: name.to_owned(),
        destination_id: destination.clone(),
        app_ids: vec!["*".to_owned()],
        event_types: vec!["shipwatch.build.processing_state_changed".to_owned()],
        created_at: at(created),
    }
}

/// An event of `team` about `app_id` at `at(time)`, with data of `event_type`'s shape for version
/// and build events (untyped data for any other type).
pub fn event(
    team: &TeamId,
    app_id: &str,
    event_type: &str,
    summary: &str,
    time: i64,
) -> EventRecord {
    let app = AppRef {
        id: app_id.to_owned(),
        name: format!("App {app_id}"),
        bundle_id: "com.example.app".to_owned(),
    };
    let build = || BuildStateChanged {
        app: app.clone(),
        build: BuildRef {
            id: format!("build-{app_id}"),
            version: "1".to_owned(),
            short_version: None,
            platform: None,
        },
        old_state: Some("PROCESSING".to_owned()),
        new_state: "VALID".to_owned(),
    };
    let data = match event_type {
        events::APP_VERSION_STATE_CHANGED => {
            EventData::AppVersionStateChanged(AppVersionStateChanged {
                app: app.clone(),
                version: VersionRef {
                    id: format!("version-{app_id}"),
                    version_string: "1.0".to_owned(),
                    platform: "IOS".to_owned(),
                },
                old_state: Some("PREPARE_FOR_SUBMISSION".to_owned()),
                new_state: "READY_FOR_REVIEW".to_owned(),
                time_in_previous_state_seconds: Some(None),
            })
        }
        events::BUILD_PROCESSING_STATE_CHANGED => EventData::BuildProcessingStateChanged(build()),
        events::BUILD_BETA_STATE_CHANGED => EventData::BuildBetaStateChanged(build()),
        _ => EventData::Other(serde_json::json!({ "app": app })),
    };
    EventRecord {
        id: EventId::generate(),
        team_id: team.clone(),
        key_record_id: None,
        app_id: Some(app_id.to_owned()),
        event_type: event_type.to_owned(),
        time: at(time),
        data,
        summary: summary.to_owned(),
    }
}

/// A pending delivery of `event` to `destination`, first due at `at(next)`.
pub fn delivery(event: &EventRecord, destination: &DestinationId, next: i64) -> DeliveryRecord {
    DeliveryRecord {
        id: DeliveryId::generate(),
        event_id: event.id.clone(),
        team_id: event.team_id.clone(),
        destination_id: destination.clone(),
        status: DeliveryStatus::Pending,
        attempts: Vec::new(),
        next_attempt_at: Some(at(next)),
        lease_until: None,
        created_at: at(next),
        revision: 0,
    }
}

pub fn snapshot(key: &ApiKeyRecord, version: u64, marker: &str) -> StoredSnapshot {
    StoredSnapshot {
        key_record_id: key.id.clone(),
        team_id: key.team_id.clone(),
        version,
        state: serde_json::json!({"apps": [{"id": "1", "marker": marker}]}),
        updated_at: at(version as i64),
    }
}

/// A snapshot of about `apps` apps, each with versions and builds, as a big sweep would store.
pub fn big_snapshot(key: &ApiKeyRecord, version: u64, apps: usize) -> StoredSnapshot {
    let apps: Vec<serde_json::Value> = (0..apps)
        .map(|i| {
            serde_json::json!({
                "id": format!("{}", 1_000_000_000 + i),
                "name": format!("Application number {i}"),
                "bundle_id": format!("com.example.application{i}"),
                "versions": (0..4).map(|v| serde_json::json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "platform": "IOS",
                    "version_string": format!("{i}.{v}.0"),
                    "state": "READY_FOR_SALE",
                })).collect::<Vec<_>>(),
                "builds": (0..25).map(|b| serde_json::json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "version": format!("{}", 1000 + b),
                    "short_version": format!("{i}.{b}"),
                    "processing_state": "VALID",
                    "external_beta_state": "IN_BETA_TESTING",
                    "uploaded_date": "2025-03-01T12:00:00Z",
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    StoredSnapshot {
        key_record_id: key.id.clone(),
        team_id: key.team_id.clone(),
        version,
        state: serde_json::json!({ "apps": apps }),
        updated_at: at(version as i64),
    }
}

/// Every key of every team, through `KeyStore::list_keys_page` with pages of `page_size`;
/// panics on a store error or on a listing that does not end.
pub async fn list_every_key(
    keys: &dyn shipwatch_service::ports::KeyStore,
    page_size: usize,
) -> Vec<ApiKeyRecord> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100_000 {
        let page = keys
            .list_keys_page(cursor.as_deref(), page_size)
            .await
            .unwrap_or_else(|e| panic!("list keys page: {e}"));
        assert!(page.items.len() <= page_size, "a page over its limit");
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("the key listing never ended");
}

/// A member of `team` with `email`, created at `at(created)`.
pub fn member(team: &TeamId, email: &str, created: i64) -> shipwatch_service::members::Member {
    shipwatch_service::members::Member {
        id: shipwatch_service::members::MemberId::generate(),
        team_id: team.clone(),
        email: email.to_owned(),
        name: format!("Member {email}"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
            .to_owned(),
        created_at: at(created),
    }
}

/// An invite to `team`, valid 7 days from `at(0)`.
pub fn invite(team: &TeamId) -> shipwatch_service::members::Invite {
    shipwatch_service::members::Invite {
        token_hash: uuid::Uuid::new_v4().simple().to_string(),
        team_id: team.clone(),
        created_at: at(0),
        expires_at: at(7 * 24 * 3600),
        invited_by: None,
    }
}

/// A session of `member`, started at `at(started)`.
pub fn session(
    member: &shipwatch_service::members::Member,
    started: i64,
) -> shipwatch_service::members::Session {
    shipwatch_service::members::Session {
        id_hash: uuid::Uuid::new_v4().simple().to_string(),
        member_id: member.id.clone(),
        team_id: member.team_id.clone(),
        csrf_token: uuid::Uuid::new_v4().simple().to_string(),
        created_at: at(started),
        last_seen_at: at(started),
    }
}

/// A named API token of `team` called `name`, created at `at(created)`.
pub fn api_token(
    team: &TeamId,
    name: &str,
    created: i64,
) -> shipwatch_service::api_tokens::ApiToken {
    shipwatch_service::api_tokens::ApiToken {
        id: shipwatch_service::api_tokens::ApiTokenId::generate(),
        team_id: team.clone(),
        name: name.to_owned(),
        token_hash: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        created_by: shipwatch_service::members::MemberId::generate(),
        created_at: at(created),
        last_used_at: None,
    }
}
