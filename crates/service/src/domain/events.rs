//! Turning observed changes into the events of `docs/events.md`: CloudEvents `type` strings, typed `data`
//! ([`super::event_data`]) and a one-line summary for people.

use chrono::{DateTime, TimeDelta, Utc};

use super::diff::{AppRef, BuildRef, Change, VersionRef};
use super::event_data::{
    AccountActionRequired, AppVersionStateChanged, BuildStateChanged, EventData, KeyPushDegraded,
    KeyRef, KeyStatusChanged, PhasedReleaseStateChanged, PlayReleaseStateChanged, TestMessage,
    TestflightFeedbackReceived,
};
use super::wording::{duration_words, platform_words, state_words};
use crate::model::{
    ApiKeyRecord, EventId, EventRecord, KeyRecordId, KeyStatus, KeyStatusCode, PushStatus, TeamId,
};

pub const APP_VERSION_STATE_CHANGED: &str = "shipwatch.app_version.state_changed";
pub const BUILD_PROCESSING_STATE_CHANGED: &str = "shipwatch.build.processing_state_changed";
pub const BUILD_BETA_STATE_CHANGED: &str = "shipwatch.build.beta_state_changed";
pub const PHASED_RELEASE_STATE_CHANGED: &str = "shipwatch.phased_release.state_changed";
pub const ACCOUNT_ACTION_REQUIRED: &str = "shipwatch.account.action_required";
pub const KEY_STATUS_CHANGED: &str = "shipwatch.key.status_changed";
pub const TEST: &str = "shipwatch.test";
pub const PLAY_RELEASE_STATE_CHANGED: &str = "shipwatch.play_release.state_changed";
pub const KEY_PUSH_DEGRADED: &str = "shipwatch.key.push_degraded";
pub const TESTFLIGHT_FEEDBACK_RECEIVED: &str = "shipwatch.testflight.feedback_received";

/// Every event type of `docs/events.md`, in its order.
pub const EVENT_TYPES: [&str; 10] = [
    APP_VERSION_STATE_CHANGED,
    BUILD_PROCESSING_STATE_CHANGED,
    BUILD_BETA_STATE_CHANGED,
    PHASED_RELEASE_STATE_CHANGED,
    ACCOUNT_ACTION_REQUIRED,
    KEY_STATUS_CHANGED,
    TEST,
    PLAY_RELEASE_STATE_CHANGED,
    KEY_PUSH_DEGRADED,
    TESTFLIGHT_FEEDBACK_RECEIVED,
];

/// Whose sweep saw a change, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventContext {
    pub team_id: TeamId,
    pub key_record_id: KeyRecordId,
    pub time: DateTime<Utc>,
}

/// The event announcing `change`, with a fresh id.
pub fn event_for_change(change: &Change, ctx: &EventContext) -> EventRecord {
    let (data, summary) = match change {
        Change::VersionState {
            app,
            version,
            old,
            new,
            time_in_previous_state,
        } => (
            EventData::AppVersionStateChanged(AppVersionStateChanged {
                app: app.clone(),
                version: version.clone(),
                old_state: old.clone(),
                new_state: new.clone(),
                time_in_previous_state_seconds: Some(
                    time_in_previous_state.map(|spent| spent.num_seconds()),
                ),
            }),
            version_summary(app, version, old.as_deref(), new, *time_in_previous_state),
        ),
        Change::BuildProcessing {
            app,
            build,
            old,
            new,
        } => (
            EventData::BuildProcessingStateChanged(build_data(app, build, old.as_deref(), new)),
            build_summary(app, build, "", old.as_deref(), new),
        ),
        Change::BuildBeta {
            app,
            build,
            old,
            new,
        } => (
            EventData::BuildBetaStateChanged(build_data(app, build, old.as_deref(), new)),
            build_summary(app, build, " TestFlight", old.as_deref(), new),
        ),
        Change::PhasedRelease {
            app,
            version,
            old,
            new,
            current_day_number,
        } => (
            EventData::PhasedReleaseStateChanged(PhasedReleaseStateChanged {
                app: app.clone(),
                version: version.clone(),
                old_state: old.clone(),
                new_state: new.clone(),
                current_day_number: *current_day_number,
            }),
            phased_summary(app, version, old.as_deref(), new, *current_day_number),
        ),
        Change::PlayRelease {
            app,
            track,
            release,
            old_state,
            new_state,
            old_user_fraction,
            new_user_fraction,
        } => {
            let data = PlayReleaseStateChanged {
                app: app.clone(),
                track: track.clone(),
                release: release.clone(),
                old_state: old_state.clone(),
                new_state: new_state.clone(),
                old_user_fraction: old_user_fraction.clone(),
                new_user_fraction: new_user_fraction.clone(),
            };
            let summary = super::render::play_release_summary(&data);
            (EventData::PlayReleaseStateChanged(data), summary)
        }
    };
    new_event(
        &ctx.team_id,
        Some(&ctx.key_record_id),
        Some(change.app().id.as_str()),
        ctx.time,
        data,
        summary,
    )
}

/// `shipwatch.account.action_required`: App Store Connect blocks the key until someone acts
/// (typically: accept the updated agreements).
pub fn account_action_required(
    key: &ApiKeyRecord,
    code: &str,
    message: &str,
    time: DateTime<Utc>,
) -> EventRecord {
    let data = EventData::AccountActionRequired(AccountActionRequired {
        key: key_ref(key),
        code: code.to_owned(),
        message: message.to_owned(),
    });
    let summary = format!(
        "Key {} ({}): App Store Connect needs action: {message}",
        key.name,
        key.account.identity()
    );
    new_event(&key.team_id, Some(&key.id), None, time, data, summary)
}

/// `shipwatch.key.status_changed`: a key became invalid (revoked, role lowered), blocked, or
/// valid again.
pub fn key_status_changed(
    key: &ApiKeyRecord,
    old: KeyStatus,
    new: KeyStatus,
    code: Option<KeyStatusCode>,
    time: DateTime<Utc>,
) -> EventRecord {
    let code_text = code
        .map(|code| format!(" ({})", code.as_str()))
        .unwrap_or_default();
    let data = EventData::KeyStatusChanged(KeyStatusChanged {
        key: key_ref(key),
        old_status: old,
        new_status: new,
        code,
    });
    let summary = format!(
        "Key {} ({}): {} -> {}{code_text}",
        key.name,
        key.account.identity(),
        old.as_str(),
        new.as_str()
    );
    new_event(&key.team_id, Some(&key.id), None, time, data, summary)
}

/// `shipwatch.key.push_degraded`: the key's webhooks could not be kept working (deleted,
/// disabled or repointed and not repairable); its changes arrive by polling only until they are.
pub fn key_push_degraded(
    key: &ApiKeyRecord,
    old: PushStatus,
    message: &str,
    time: DateTime<Utc>,
) -> EventRecord {
    let data = EventData::KeyPushDegraded(KeyPushDegraded {
        key: key_ref(key),
        old_push: old,
        new_push: PushStatus::Degraded,
        message: message.to_owned(),
    });
    let summary = format!(
        "Key {} ({}): push {} -> degraded",
        key.name,
        key.account.identity(),
        old.as_str()
    );
    new_event(&key.team_id, Some(&key.id), None, time, data, summary)
}

/// `shipwatch.testflight.feedback_received` for `key`'s feedback `data`. Its id follows from the
/// key and the submission, so a notification handled twice (a redelivery Apple makes, a queue
/// message delivered again) is stored once: the second write conflicts on the id.
pub fn testflight_feedback_received(
    key: &ApiKeyRecord,
    data: TestflightFeedbackReceived,
    time: DateTime<Utc>,
) -> EventRecord {
    let build = data
        .build
        .as_ref()
        .map(|b| match &b.short_version {
            Some(short) => format!(" build {short} ({})", b.version),
            None => format!(" build {}", b.version),
        })
        .unwrap_or_default();
    let what = match data.kind {
        super::event_data::FeedbackKind::Crash => "crash report",
        super::event_data::FeedbackKind::Screenshot => "screenshot feedback",
    };
    let summary = format!("{}{build}: TestFlight {what}", data.app.label());
    let id = feedback_event_id(&key.id, data.kind, &data.submission_id);
    let app_id = data.app.id.clone();
    let mut event = new_event(
        &key.team_id,
        Some(&key.id),
        Some(&app_id),
        time,
        EventData::TestflightFeedbackReceived(data),
        summary,
    );
    event.id = id;
    event
}

/// The id of the `shipwatch.testflight.feedback_received` event of a key's submission: a UUID
/// (version 8: derived, not random) from the key and the submission.
pub fn feedback_event_id(
    key: &KeyRecordId,
    kind: super::event_data::FeedbackKind,
    submission_id: &str,
) -> EventId {
    use sha2::Digest as _;
    let kind = kind.as_str();
    let digest = sha2::Sha256::digest(format!("feedback\n{key}\n{kind}\n{submission_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    EventId(
        uuid::Builder::from_custom_bytes(bytes)
            .into_uuid()
            .to_string(),
    )
}

/// `shipwatch.test`: what `POST /v1/destinations/{id}/test` sends to the destination named
/// `destination_name`.
pub fn test_event(team_id: &TeamId, destination_name: &str, time: DateTime<Utc>) -> EventRecord {
    let data = EventData::Test(TestMessage {
        message: format!("Test message from shipwatch to \"{destination_name}\""),
    });
    let summary = format!("Test message to {destination_name}");
    new_event(team_id, None, None, time, data, summary)
}

/// A new event with a fresh id, its `event_type` taken from `data` so the two agree.
fn new_event(
    team_id: &TeamId,
    key_record_id: Option<&KeyRecordId>,
    app_id: Option<&str>,
    time: DateTime<Utc>,
    data: EventData,
    summary: String,
) -> EventRecord {
    let event_type = data.event_type();
    debug_assert!(event_type.is_some(), "events are built from typed data");
    EventRecord {
        id: EventId::generate(),
        team_id: team_id.clone(),
        key_record_id: key_record_id.cloned(),
        app_id: app_id.map(str::to_owned),
        event_type: event_type.unwrap_or_default().to_owned(),
        time,
        data,
        summary,
    }
}

fn key_ref(key: &ApiKeyRecord) -> KeyRef {
    KeyRef {
        id: key.id.clone(),
        key_id: match &key.account {
            crate::model::AccountRef::AppStoreConnect { key_id, .. } => Some(key_id.clone()),
            crate::model::AccountRef::GooglePlay { .. } => None,
        },
        client_email: match &key.account {
            crate::model::AccountRef::GooglePlay { client_email, .. } => Some(client_email.clone()),
            crate::model::AccountRef::AppStoreConnect { .. } => None,
        },
    }
}

fn build_data(app: &AppRef, build: &BuildRef, old: Option<&str>, new: &str) -> BuildStateChanged {
    BuildStateChanged {
        app: app.clone(),
        build: build.clone(),
        old_state: old.map(str::to_owned),
        new_state: new.to_owned(),
    }
}

fn transition(old: Option<&str>, new: &str) -> String {
    match old {
        Some(old) => format!("{} -> {}", state_words(old), state_words(new)),
        None => format!("new, {}", state_words(new)),
    }
}

/// "Hello 2.1 (iOS): Waiting for Review -> In Review (after 2h 5m)"
fn version_summary(
    app: &AppRef,
    version: &VersionRef,
    old: Option<&str>,
    new: &str,
    time_in_previous_state: Option<TimeDelta>,
) -> String {
    let after = time_in_previous_state
        .map(|spent| {
            format!(
                " (after {})",
                duration_words(u64::try_from(spent.num_seconds()).unwrap_or(0))
            )
        })
        .unwrap_or_default();
    format!(
        "{} {} ({}): {}{after}",
        app.label(),
        version.version_string,
        platform_words(&version.platform),
        transition(old, new)
    )
}

/// "Hello build 2.1 (42) (iOS) TestFlight: Waiting for Beta Review -> In Beta Review"
fn build_summary(
    app: &AppRef,
    build: &BuildRef,
    aspect: &str,
    old: Option<&str>,
    new: &str,
) -> String {
    let number = match &build.short_version {
        Some(short) => format!("{short} ({})", build.version),
        None => build.version.clone(),
    };
    let platform = build
        .platform
        .as_deref()
        .map(|platform| format!(" ({})", platform_words(platform)))
        .unwrap_or_default();
    format!(
        "{} build {number}{platform}{aspect}: {}",
        app.label(),
        transition(old, new)
    )
}

/// "Hello 2.1 (iOS) phased release: Active -> Paused (day 3)"
fn phased_summary(
    app: &AppRef,
    version: &VersionRef,
    old: Option<&str>,
    new: &str,
    current_day_number: Option<u32>,
) -> String {
    let day = current_day_number
        .map(|day| format!(" (day {day})"))
        .unwrap_or_default();
    format!(
        "{} {} ({}) phased release: {}{day}",
        app.label(),
        version.version_string,
        platform_words(&version.platform),
        transition(old, new)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};
    use shipwatch_shared::credentials::{IssuerId, KeyId};

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn ctx() -> EventContext {
        EventContext {
            team_id: TeamId("team1".into()),
            key_record_id: KeyRecordId("key1".into()),
            time: now(),
        }
    }

    /// The app of the unit tests' events (also used by `event_data`'s tests).
    pub(crate) fn hello() -> AppRef {
        AppRef {
            id: "app1".into(),
            name: "Hello".into(),
            bundle_id: "com.example.hello".into(),
        }
    }

    pub(crate) fn version() -> VersionRef {
        VersionRef {
            id: "v1".into(),
            version_string: "2.1".into(),
            platform: "IOS".into(),
        }
    }

    fn build() -> BuildRef {
        BuildRef {
            id: "b1".into(),
            version: "42".into(),
            short_version: Some("2.1".into()),
            platform: Some("IOS".into()),
        }
    }

    fn key() -> Result<ApiKeyRecord, Box<dyn std::error::Error>> {
        Ok(ApiKeyRecord {
            id: KeyRecordId("key1".into()),
            team_id: TeamId("team1".into()),
            name: "CI key".into(),
            account: crate::model::AccountRef::AppStoreConnect {
                key_id: KeyId::parse("ABCDE12345")?,
                issuer_id: IssuerId::parse("57246542-96fe-1a63-e053-0824d011072a")?,
            },
            public_key_fingerprint: "fp".into(),
            status: KeyStatus::Valid,
            status_code: None,
            status_message: None,
            apps_count: None,
            validated_at: None,
            last_swept_at: None,
            created_at: now(),
            updated_at: now(),
            validation_attempts: 0,
            next_validation_at: None,
            revision: 1,
            asc_usage: None,
            revalidation_requests: Vec::new(),
            push: None,
        })
    }

    #[test]
    fn version_state_event_has_the_contract_shape_and_summary() {
        let change = Change::VersionState {
            app: hello(),
            version: version(),
            old: Some("WAITING_FOR_REVIEW".into()),
            new: "IN_REVIEW".into(),
            time_in_previous_state: Some(TimeDelta::minutes(125)),
        };
        let event = event_for_change(&change, &ctx());
        assert_eq!(event.event_type, "shipwatch.app_version.state_changed");
        assert_eq!(event.app_id.as_deref(), Some("app1"));
        assert_eq!(event.team_id.as_str(), "team1");
        assert_eq!(event.key_record_id, Some(KeyRecordId("key1".into())));
        assert_eq!(event.time, now());
        assert_eq!(
            event.data.to_json(),
            json!({
                "app": {"id": "app1", "name": "Hello", "bundle_id": "com.example.hello"},
                "version": {"id": "v1", "version_string": "2.1", "platform": "IOS"},
                "old_state": "WAITING_FOR_REVIEW",
                "new_state": "IN_REVIEW",
                "time_in_previous_state_seconds": 7500,
            })
        );
        assert!(
            event
                .summary
                .starts_with("Hello 2.1 (iOS): Waiting for Review -> In Review"),
            "{}",
            event.summary
        );
    }

    #[test]
    fn new_version_has_null_old_state() {
        let change = Change::VersionState {
            app: hello(),
            version: version(),
            old: None,
            new: "PREPARE_FOR_SUBMISSION".into(),
            time_in_previous_state: None,
        };
        let event = event_for_change(&change, &ctx());
        let data = event.data.to_json();
        assert_eq!(data.get("old_state"), Some(&Value::Null));
        assert_eq!(
            data.get("time_in_previous_state_seconds"),
            Some(&Value::Null)
        );
    }

    #[test]
    fn build_events_have_the_contract_shape() {
        let processing = Change::BuildProcessing {
            app: hello(),
            build: build(),
            old: None,
            new: "PROCESSING".into(),
        };
        let beta = Change::BuildBeta {
            app: hello(),
            build: build(),
            old: Some("WAITING_FOR_BETA_REVIEW".into()),
            new: "IN_BETA_REVIEW".into(),
        };
        let processing = event_for_change(&processing, &ctx());
        let beta = event_for_change(&beta, &ctx());
        assert_eq!(
            processing.event_type,
            "shipwatch.build.processing_state_changed"
        );
        assert_eq!(beta.event_type, "shipwatch.build.beta_state_changed");
        assert_eq!(
            beta.data.to_json(),
            json!({
                "app": {"id": "app1", "name": "Hello", "bundle_id": "com.example.hello"},
                "build": {"id": "b1", "version": "42", "short_version": "2.1", "platform": "IOS"},
                "old_state": "WAITING_FOR_BETA_REVIEW",
                "new_state": "IN_BETA_REVIEW",
            })
        );
        let processing_data = processing.data.to_json();
        assert_eq!(processing_data.get("old_state"), Some(&Value::Null));
        assert_eq!(processing_data["build"]["short_version"], "2.1");
        assert_ne!(processing.id, beta.id);
    }

    #[test]
    fn phased_release_event_has_the_contract_shape() {
        let change = Change::PhasedRelease {
            app: hello(),
            version: version(),
            old: Some("ACTIVE".into()),
            new: "PAUSED".into(),
            current_day_number: Some(3),
        };
        let event = event_for_change(&change, &ctx());
        assert_eq!(event.event_type, "shipwatch.phased_release.state_changed");
        assert_eq!(
            event.data.to_json(),
            json!({
                "app": {"id": "app1", "name": "Hello", "bundle_id": "com.example.hello"},
                "version": {"id": "v1", "version_string": "2.1", "platform": "IOS"},
                "old_state": "ACTIVE",
                "new_state": "PAUSED",
                "current_day_number": 3,
            })
        );
        assert!(
            event.summary.contains("Active -> Paused"),
            "{}",
            event.summary
        );
    }

    #[test]
    fn account_and_key_events_have_the_contract_shape() -> Result<(), Box<dyn std::error::Error>> {
        let key = key()?;
        let action = account_action_required(
            &key,
            "agreements_required",
            "Accept the updated agreements in App Store Connect",
            now(),
        );
        assert_eq!(action.event_type, "shipwatch.account.action_required");
        assert_eq!(action.app_id, None);
        assert_eq!(
            action.data.to_json(),
            json!({
                "key": {"id": "key1", "key_id": "ABCDE12345"},
                "code": "agreements_required",
                "message": "Accept the updated agreements in App Store Connect",
            })
        );

        let status = key_status_changed(
            &key,
            KeyStatus::Valid,
            KeyStatus::Invalid,
            Some(KeyStatusCode::NotAuthorized),
            now(),
        );
        assert_eq!(status.event_type, "shipwatch.key.status_changed");
        assert_eq!(status.app_id, None);
        assert_eq!(
            status.data.to_json(),
            json!({
                "key": {"id": "key1", "key_id": "ABCDE12345"},
                "old_status": "valid",
                "new_status": "invalid",
                "code": "not_authorized",
            })
        );
        let back = key_status_changed(&key, KeyStatus::Invalid, KeyStatus::Valid, None, now());
        assert_eq!(back.data.to_json().get("code"), Some(&Value::Null));
        Ok(())
    }

    #[test]
    fn test_event_has_the_contract_shape() {
        let event = test_event(&TeamId("team1".into()), "ops", now());
        assert_eq!(event.event_type, "shipwatch.test");
        assert_eq!((event.key_record_id, event.app_id), (None, None));
        assert_eq!(event.time, now());
        assert_eq!(
            event.data.to_json(),
            json!({"message": "Test message from shipwatch to \"ops\""})
        );
        assert_eq!(event.summary, "Test message to ops");
    }

    #[test]
    fn every_event_type_is_the_type_of_its_data() -> Result<(), Box<dyn std::error::Error>> {
        let key = key()?;
        let changes = [
            Change::VersionState {
                app: hello(),
                version: version(),
                old: None,
                new: "PREPARE_FOR_SUBMISSION".into(),
                time_in_previous_state: None,
            },
            Change::BuildProcessing {
                app: hello(),
                build: build(),
                old: None,
                new: "PROCESSING".into(),
            },
            Change::BuildBeta {
                app: hello(),
                build: build(),
                old: None,
                new: "IN_BETA_REVIEW".into(),
            },
            Change::PhasedRelease {
                app: hello(),
                version: version(),
                old: None,
                new: "ACTIVE".into(),
                current_day_number: Some(1),
            },
        ];
        let mut events: Vec<EventRecord> = changes
            .iter()
            .map(|change| event_for_change(change, &ctx()))
            .collect();
        events.push(account_action_required(
            &key,
            "agreements_required",
            "m",
            now(),
        ));
        events.push(key_status_changed(
            &key,
            KeyStatus::Invalid,
            KeyStatus::Valid,
            None,
            now(),
        ));
        events.push(test_event(&TeamId("team1".into()), "ops", now()));
        events.push(event_for_change(
            &Change::PlayRelease {
                app: hello(),
                track: "production".into(),
                release: crate::domain::play_snapshot::PlayReleaseRef {
                    name: Some("2.1".into()),
                    version_codes: vec!["21".into()],
                },
                old_state: None,
                new_state: "inProgress".into(),
                old_user_fraction: None,
                new_user_fraction: serde_json::Number::from_f64(0.1),
            },
            &ctx(),
        ));
        events.push(key_push_degraded(&key, PushStatus::Active, "m", now()));
        let feedback = TestflightFeedbackReceived {
            app: hello(),
            build: Some(build()),
            kind: super::super::event_data::FeedbackKind::Screenshot,
            submission_id: "s1".into(),
            comment: Some("c".into()),
            device_model: None,
            os_version: None,
            created_at: None,
        };
        events.push(testflight_feedback_received(&key, feedback.clone(), now()));
        // The same submission of the same key: the same event id (stored once).
        let again = testflight_feedback_received(&key, feedback, now());
        assert_eq!(events.last().map(|e| &e.id), Some(&again.id));
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, EVENT_TYPES);
        for event in &events {
            assert_eq!(event.data.event_type(), Some(event.event_type.as_str()));
        }
        Ok(())
    }

    #[test]
    fn event_types_are_the_contracts() {
        assert_eq!(
            EVENT_TYPES,
            [
                "shipwatch.app_version.state_changed",
                "shipwatch.build.processing_state_changed",
                "shipwatch.build.beta_state_changed",
                "shipwatch.phased_release.state_changed",
                "shipwatch.account.action_required",
                "shipwatch.key.status_changed",
                "shipwatch.test",
                "shipwatch.play_release.state_changed",
                "shipwatch.key.push_degraded",
                "shipwatch.testflight.feedback_received",
            ]
        );
    }
}
