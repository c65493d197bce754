//! Golden tests: every contract event type rendered for each destination kind (CloudEvents,
//! Slack, Discord, Teams), compared as JSON with the files in `tests/golden/`.
//! `UPDATE_GOLDEN=1 cargo test -p shipwatch-tests --test it delivery_render_golden::` rewrites them.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use shipwatch_service::domain::event_data::EventData;
use shipwatch_service::domain::events::{self, EVENT_TYPES};
use shipwatch_service::domain::render;
use shipwatch_service::model::{EventId, EventRecord, KeyRecordId, TeamId};

type Renderer = fn(&EventRecord) -> Value;

const FORMATS: [(&str, Renderer); 4] = [
    ("cloudevent", render::cloud_event),
    ("slack", render::slack),
    ("discord", render::discord),
    ("teams", render::teams),
];

fn app() -> Value {
    json!({"id": "1234567890", "name": "Weather Pro", "bundle_id": "com.example.weatherpro"})
}

fn event(
    name: &str,
    event_type: &str,
    app_id: Option<&str>,
    data: Value,
    summary: &str,
) -> EventRecord {
    // Read as a stored row is: each fixture must have its type's shape, or it would render as a
    // generic summary instead of its type's wording.
    let data = EventData::from_stored(event_type, data);
    assert!(
        data.event_type() == Some(event_type),
        "fixture {name} does not have the shape of {event_type}: {data:?}"
    );
    EventRecord {
        id: EventId(format!("evt-{name}")),
        team_id: TeamId("team-golden".into()),
        key_record_id: Some(KeyRecordId("key-golden".into())),
        app_id: app_id.map(str::to_owned),
        event_type: event_type.to_owned(),
        time: Utc
            .with_ymd_and_hms(2026, 3, 14, 15, 9, 26)
            .single()
            .unwrap_or_default(),
        data,
        summary: summary.to_owned(),
    }
}

/// One or more contract-shaped events per type, including the edge cases that read differently
/// (a brand-new version, an approval, a rejection, a user-controlled name full of markup).
fn fixtures() -> Vec<(&'static str, EventRecord)> {
    let version = json!({"id": "ver-1", "version_string": "2.4.0", "platform": "IOS"});
    let build =
        json!({"id": "build-1", "version": "512", "short_version": "2.4.0", "platform": "IOS"});
    vec![
        (
            "app_version_in_review",
            event(
                "a1",
                events::APP_VERSION_STATE_CHANGED,
                Some("1234567890"),
                json!({
                    "app": app(), "version": version, "old_state": "WAITING_FOR_REVIEW",
                    "new_state": "IN_REVIEW", "time_in_previous_state_seconds": 8100,
                }),
                "Weather Pro 2.4.0 (iOS): Waiting for Review -> In Review",
            ),
        ),
        (
            "app_version_new",
            event(
                "a2",
                events::APP_VERSION_STATE_CHANGED,
                Some("1234567890"),
                json!({
                    "app": app(),
                    "version": {"id": "ver-2", "version_string": "3.0", "platform": "MAC_OS"},
                    "old_state": null, "new_state": "PREPARE_FOR_SUBMISSION",
                    "time_in_previous_state_seconds": null,
                }),
                "Weather Pro 3.0 (macOS): new, Prepare for Submission",
            ),
        ),
        (
            "app_version_ready",
            event(
                "a3",
                events::APP_VERSION_STATE_CHANGED,
                Some("1234567890"),
                json!({
                    "app": app(), "version": version, "old_state": "PENDING_DEVELOPER_RELEASE",
                    "new_state": "READY_FOR_DISTRIBUTION", "time_in_previous_state_seconds": 277200,
                }),
                "Weather Pro 2.4.0 (iOS): Pending Developer Release -> Ready for Distribution",
            ),
        ),
        (
            "app_version_rejected",
            event(
                "a4",
                events::APP_VERSION_STATE_CHANGED,
                Some("1234567890"),
                json!({
                    "app": app(), "version": version, "old_state": "IN_REVIEW",
                    "new_state": "REJECTED", "time_in_previous_state_seconds": 2700,
                }),
                "Weather Pro 2.4.0 (iOS): In Review -> Rejected",
            ),
        ),
        (
            "app_version_markup_in_name",
            event(
                "a5",
                events::APP_VERSION_STATE_CHANGED,
                Some("42"),
                json!({
                    "app": {"id": "42", "name": "<!here> *Bold* & _it_ `code` [link](https://x.test) @everyone", "bundle_id": "a.b"},
                    "version": {"id": "ver-3", "version_string": "1.0", "platform": "VISION_OS"},
                    "old_state": "WAITING_FOR_REVIEW", "new_state": "IN_REVIEW",
                }),
                "markup",
            ),
        ),
        (
            "build_processing_valid",
            event(
                "b1",
                events::BUILD_PROCESSING_STATE_CHANGED,
                Some("1234567890"),
                json!({
                    "app": app(), "build": build, "old_state": "PROCESSING", "new_state": "VALID",
                }),
                "Weather Pro build 2.4.0 (512) (iOS): Processing -> Valid",
            ),
        ),
        (
            "build_processing_new",
            event(
                "b2",
                events::BUILD_PROCESSING_STATE_CHANGED,
                Some("1234567890"),
                json!({
                    "app": app(),
                    "build": {"id": "build-2", "version": "513", "short_version": null, "platform": null},
                    "old_state": null, "new_state": "PROCESSING",
                }),
                "Weather Pro build 513: new, Processing",
            ),
        ),
        (
            "build_beta_approved",
            event(
                "b3",
                events::BUILD_BETA_STATE_CHANGED,
                Some("1234567890"),
                json!({
                    "app": app(), "build": build, "old_state": "WAITING_FOR_BETA_REVIEW",
                    "new_state": "BETA_APPROVED",
                }),
                "Weather Pro build 2.4.0 (512) (iOS) TestFlight: Waiting for Beta Review -> Beta Approved",
            ),
        ),
        (
            "phased_release_paused",
            event(
                "p1",
                events::PHASED_RELEASE_STATE_CHANGED,
                Some("1234567890"),
                json!({
                    "app": app(), "version": version, "old_state": "ACTIVE", "new_state": "PAUSED",
                    "current_day_number": 3,
                }),
                "Weather Pro 2.4.0 (iOS) phased release: Active -> Paused (day 3)",
            ),
        ),
        (
            "account_action_required",
            event(
                "k1",
                events::ACCOUNT_ACTION_REQUIRED,
                None,
                json!({
                    "key": {"id": "key-golden", "key_id": "ABCDE12345"},
                    "code": "agreements_required",
                    "message": "Accept the updated Program License Agreement in App Store Connect (Business).",
                }),
                "Key Main (ABCDE12345): App Store Connect needs action",
            ),
        ),
        (
            "key_status_invalid",
            event(
                "k2",
                events::KEY_STATUS_CHANGED,
                None,
                json!({
                    "key": {"id": "key-golden", "key_id": "ABCDE12345"},
                    "old_status": "valid", "new_status": "invalid", "code": "not_authorized",
                }),
                "Key Main (ABCDE12345): valid -> invalid (not_authorized)",
            ),
        ),
        (
            "key_push_degraded",
            event(
                "k3",
                events::KEY_PUSH_DEGRADED,
                None,
                json!({
                    "key": {"id": "key-golden", "key_id": "ABCDE12345"},
                    "old_push": "active", "new_push": "degraded",
                    "message": "shipwatch could not repair its App Store Connect webhooks (app 1234567890: app 1234567890 already has Apple's maximum of ten webhooks); changes of those apps arrive by polling only until it can.",
                }),
                "Key Main (ABCDE12345): push active -> degraded",
            ),
        ),
        (
            "testflight_feedback_screenshot",
            event(
                "f1",
                events::TESTFLIGHT_FEEDBACK_RECEIVED,
                Some("1234567890"),
                json!({
                    "app": {"id": "1234567890", "name": "Weather Pro", "bundle_id": "com.example.weatherpro"},
                    "build": {"id": "b-412", "version": "412", "short_version": "2.1", "platform": "IOS"},
                    "kind": "screenshot",
                    "submission_id": "sub-golden-1",
                    "comment": "The *Save* button is cut off <here> & the title overlaps",
                    "device_model": "iPhone16,1",
                    "os_version": "26.1",
                    "created_at": "2026-03-14T15:08:02Z",
                }),
                "Weather Pro build 2.1 (412): TestFlight screenshot feedback",
            ),
        ),
        (
            "testflight_feedback_crash",
            event(
                "f2",
                events::TESTFLIGHT_FEEDBACK_RECEIVED,
                Some("1234567890"),
                json!({
                    "app": {"id": "1234567890", "name": "", "bundle_id": ""},
                    "build": null,
                    "kind": "crash",
                    "submission_id": "sub-golden-2",
                    "comment": null,
                    "device_model": "iPad14,3",
                    "os_version": "26.0.1",
                    "created_at": "2026-03-14T15:09:00Z",
                }),
                "1234567890: TestFlight crash report",
            ),
        ),
        (
            "test",
            EventRecord {
                key_record_id: None,
                ..event(
                    "t1",
                    events::TEST,
                    None,
                    json!({
                        "message": "This is a test from shipwatch: your destination works.",
                    }),
                    "Test event",
                )
            },
        ),
        (
            "play_release_new_rollout",
            event(
                "p1",
                events::PLAY_RELEASE_STATE_CHANGED,
                Some("com.example.weatherpro"),
                json!({
                    "app": {"id": "com.example.weatherpro", "name": "Weather Pro", "bundle_id": "com.example.weatherpro"},
                    "track": "production",
                    "release": {"name": "2.4.0 (512)", "version_codes": ["512", "513"]},
                    "old_state": null, "new_state": "inProgress",
                    "old_user_fraction": null, "new_user_fraction": 0.1,
                }),
                "Weather Pro 2.4.0 (512) on production: started rolling out to 10 % of users",
            ),
        ),
        (
            "play_release_rollout_step",
            event(
                "p2",
                events::PLAY_RELEASE_STATE_CHANGED,
                Some("com.example.weatherpro"),
                json!({
                    "app": {"id": "com.example.weatherpro", "name": "Weather Pro", "bundle_id": "com.example.weatherpro"},
                    "track": "production",
                    "release": {"name": "2.4.0 (512)", "version_codes": ["512"]},
                    "old_state": "inProgress", "new_state": "inProgress",
                    "old_user_fraction": 0.1, "new_user_fraction": 0.5,
                }),
                "Weather Pro 2.4.0 (512) on production: now rolling out to 50 % of users",
            ),
        ),
        (
            "play_release_halted",
            event(
                "p3",
                events::PLAY_RELEASE_STATE_CHANGED,
                Some("com.example.weatherpro"),
                json!({
                    "app": {"id": "com.example.weatherpro", "name": "Weather Pro", "bundle_id": "com.example.weatherpro"},
                    "track": "beta",
                    "release": {"name": null, "version_codes": ["514"]},
                    "old_state": "inProgress", "new_state": "halted",
                    "old_user_fraction": 0.5, "new_user_fraction": 0.5,
                }),
                "Weather Pro version code 514 on beta: rollout halted",
            ),
        ),
    ]
}

fn golden_path(fixture: &str, format: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(format!("{fixture}.{format}.json"))
}

#[test]
fn every_event_type_renders_as_its_golden_file_for_every_format() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|value| value == "1");
    let mut mismatches = Vec::new();
    for (fixture, event) in fixtures() {
        for (format, render) in FORMATS {
            let rendered = render(&event);
            let path = golden_path(fixture, format);
            if update {
                let mut text = serde_json::to_string_pretty(&rendered).expect("JSON encodes");
                text.push('\n');
                std::fs::create_dir_all(path.parent().expect("golden dir")).expect("golden dir");
                std::fs::write(&path, text).expect("golden file written");
                continue;
            }
            let expected: Value = match std::fs::read_to_string(&path) {
                Ok(text) => serde_json::from_str(&text).expect("golden file is JSON"),
                Err(_) => {
                    mismatches.push(format!(
                        "{} is missing (run with UPDATE_GOLDEN=1)",
                        path.display()
                    ));
                    continue;
                }
            };
            if expected != rendered {
                mismatches.push(format!(
                    "{} differs; rendered:\n{}",
                    path.display(),
                    serde_json::to_string_pretty(&rendered).unwrap_or_default()
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn the_fixtures_cover_every_contract_event_type() {
    let covered: BTreeSet<String> = fixtures()
        .into_iter()
        .map(|(_, event)| event.event_type)
        .collect();
    let contract: BTreeSet<String> = EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(covered, contract);
}

#[test]
fn no_golden_file_is_left_over_from_a_removed_fixture() {
    let expected: BTreeSet<String> = fixtures()
        .iter()
        .flat_map(|(fixture, _)| {
            FORMATS
                .iter()
                .map(move |(format, _)| format!("{fixture}.{format}.json"))
        })
        .collect();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden");
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| name.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    let stale: Vec<&String> = present.difference(&expected).collect();
    assert!(stale.is_empty(), "stale golden files: {stale:?}");
}

/// The renderers read the data exactly as the event constructors write it: no fallback wording
/// ("?", "UNKNOWN", "(no version number)") shows up for events built by `domain::events`.
#[test]
fn events_built_by_the_domain_render_without_fallbacks() {
    use shipwatch_service::domain::diff::{AppRef, BuildRef, Change, VersionRef};
    use shipwatch_service::domain::events::{EventContext, event_for_change};

    let app = AppRef {
        id: "987".into(),
        name: "Tide Tables".into(),
        bundle_id: "com.example.tides".into(),
    };
    let version = VersionRef {
        id: "v9".into(),
        version_string: "5.1".into(),
        platform: "TV_OS".into(),
    };
    let build = BuildRef {
        id: "b9".into(),
        version: "77".into(),
        short_version: Some("5.1".into()),
        platform: Some("TV_OS".into()),
    };
    let changes = [
        Change::VersionState {
            app: app.clone(),
            version: version.clone(),
            old: Some("WAITING_FOR_REVIEW".into()),
            new: "IN_REVIEW".into(),
            time_in_previous_state: Some(chrono::TimeDelta::seconds(3 * 86_400 + 4 * 3600)),
        },
        Change::BuildProcessing {
            app: app.clone(),
            build: build.clone(),
            old: Some("PROCESSING".into()),
            new: "VALID".into(),
        },
        Change::BuildBeta {
            app: app.clone(),
            build,
            old: None,
            new: "IN_BETA_REVIEW".into(),
        },
        Change::PhasedRelease {
            app,
            version,
            old: Some("INACTIVE".into()),
            new: "ACTIVE".into(),
            current_day_number: Some(1),
        },
    ];
    let context = EventContext {
        team_id: TeamId("t".into()),
        key_record_id: KeyRecordId("k".into()),
        time: Utc::now(),
    };
    for change in &changes {
        let event = event_for_change(change, &context);
        let message = render::message(&event);
        let all_text = format!("{message:?}");
        for fallback in ["UNKNOWN", "(no version number)", "build ?", "An app"] {
            assert!(!all_text.contains(fallback), "{fallback} in {all_text}");
        }
        assert!(message.title.contains("Tide Tables"), "{}", message.title);
        assert!(message.title.contains("5.1"), "{}", message.title);
        assert_eq!(render::cloud_event(&event)["subject"], json!("987"));
        assert_eq!(
            render::cloud_event(&event)["source"],
            json!("/shipwatch/keys/k")
        );
    }
    let version_message = render::message(&event_for_change(&changes[0], &context));
    assert!(
        version_message.description.contains("after 3 d 4 h"),
        "{}",
        version_message.description
    );
    assert!(
        version_message.title.contains("tvOS"),
        "{}",
        version_message.title
    );
}
