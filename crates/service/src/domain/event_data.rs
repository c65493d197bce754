//! The `data` of each event type, typed. Destinations receive it as the CloudEvents `data` and
//! the history stores it as JSON next to the event's type (docs/data-model.md); the shapes per
//! type are those of `docs/events.md`.
//!
//! The JSON carries no tag: which variant applies follows from the stored `event_type`
//! ([`EventData::from_stored`]). It is written through a `serde_json::Value`, exactly as the
//! `json!` objects that came before the types, so object keys stay sorted and rows stored before
//! keep their bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};
use shipwatch_shared::credentials::KeyId;

use super::diff::{AppRef, BuildRef, VersionRef};
use super::events::{
    ACCOUNT_ACTION_REQUIRED, APP_VERSION_STATE_CHANGED, BUILD_BETA_STATE_CHANGED,
    BUILD_PROCESSING_STATE_CHANGED, KEY_PUSH_DEGRADED, KEY_STATUS_CHANGED,
    PHASED_RELEASE_STATE_CHANGED, TEST, TESTFLIGHT_FEEDBACK_RECEIVED,
};
use crate::model::{KeyRecordId, KeyStatus, KeyStatusCode, PushStatus};

/// The `data` of one event, one variant per event type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
    AppVersionStateChanged(AppVersionStateChanged),
    BuildProcessingStateChanged(BuildStateChanged),
    BuildBetaStateChanged(BuildStateChanged),
    PhasedReleaseStateChanged(PhasedReleaseStateChanged),
    AccountActionRequired(AccountActionRequired),
    KeyStatusChanged(KeyStatusChanged),
    Test(TestMessage),
    PlayReleaseStateChanged(PlayReleaseStateChanged),
    KeyPushDegraded(KeyPushDegraded),
    TestflightFeedbackReceived(TestflightFeedbackReceived),
    /// Data of a type this version does not know, or not of its type's shape: kept exactly as
    /// stored (so the history stays readable) and rendered from the event's summary.
    Other(Value),
}

/// `shipwatch.app_version.state_changed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppVersionStateChanged {
    pub app: AppRef,
    pub version: VersionRef,
    /// `None` (null) when the version is new.
    pub old_state: Option<String>,
    pub new_state: String,
    /// Outer `None`: the field is absent, which `docs/events.md` allows (shipwatch always writes it).
    /// Inner `None`: written as null, the time is unknown (a new version, or a state that was
    /// already there when shipwatch first looked).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_field"
    )]
    pub time_in_previous_state_seconds: Option<Option<i64>>,
}

impl AppVersionStateChanged {
    /// How long the version was in `old_state`, when known.
    pub fn seconds_in_previous_state(&self) -> Option<i64> {
        self.time_in_previous_state_seconds.flatten()
    }
}

/// `shipwatch.build.processing_state_changed` and `shipwatch.build.beta_state_changed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStateChanged {
    pub app: AppRef,
    pub build: BuildRef,
    /// `None` (null) when the build is new, or had no TestFlight state before.
    pub old_state: Option<String>,
    pub new_state: String,
}

/// `shipwatch.phased_release.state_changed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhasedReleaseStateChanged {
    pub app: AppRef,
    pub version: VersionRef,
    pub old_state: Option<String>,
    pub new_state: String,
    pub current_day_number: Option<u32>,
}

/// The `key` object of key and account events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// Our id of the key record.
    pub id: KeyRecordId,
    /// Apple's Key ID (App Store Connect keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<KeyId>,
    /// The service account (Google Play keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_email: Option<String>,
}

/// `shipwatch.account.action_required`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountActionRequired {
    pub key: KeyRef,
    /// A [`KeyStatusCode`] string, e.g. `agreements_required`.
    pub code: String,
    pub message: String,
}

/// `shipwatch.key.status_changed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatusChanged {
    pub key: KeyRef,
    pub old_status: KeyStatus,
    pub new_status: KeyStatus,
    /// Why the key is not valid; `None` (null) when it became valid.
    pub code: Option<KeyStatusCode>,
}

/// `shipwatch.key.push_degraded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPushDegraded {
    pub key: KeyRef,
    /// The push status before (`off`, `unavailable` or `active`).
    pub old_push: PushStatus,
    /// Always `degraded`.
    pub new_push: PushStatus,
    /// What could not be repaired, as `push_message` on the key says it.
    pub message: String,
}

/// What a TestFlight tester sent: a crash report or a screenshot with a comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Crash,
    Screenshot,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crash => "crash",
            Self::Screenshot => "screenshot",
        }
    }
}

/// `shipwatch.testflight.feedback_received`: never the tester's email or name (shipwatch does not
/// ask App Store Connect for them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestflightFeedbackReceived {
    pub app: AppRef,
    /// The build the tester ran; `None` (null) when App Store Connect did not say.
    pub build: Option<BuildRef>,
    pub kind: FeedbackKind,
    /// App Store Connect's id of the submission.
    pub submission_id: String,
    /// The tester's comment; `None` (null) when there is none.
    pub comment: Option<String>,
    pub device_model: Option<String>,
    pub os_version: Option<String>,
    /// When the tester sent it (RFC 3339), as App Store Connect reports it.
    pub created_at: Option<String>,
}

/// `shipwatch.test`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestMessage {
    pub message: String,
}

/// `shipwatch.play_release.state_changed`: `app.id` and `app.bundle_id` are the package name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayReleaseStateChanged {
    pub app: AppRef,
    pub track: String,
    pub release: crate::domain::play_snapshot::PlayReleaseRef,
    /// Google's release `status`; `None` (null) when the release is new.
    pub old_state: Option<String>,
    pub new_state: String,
    pub old_user_fraction: Option<serde_json::Number>,
    pub new_user_fraction: Option<serde_json::Number>,
}

impl EventData {
    /// The event type this data belongs to; `None` for [`EventData::Other`], which is kept under
    /// whatever type it was stored with.
    pub fn event_type(&self) -> Option<&'static str> {
        Some(match self {
            Self::AppVersionStateChanged(_) => APP_VERSION_STATE_CHANGED,
            Self::BuildProcessingStateChanged(_) => BUILD_PROCESSING_STATE_CHANGED,
            Self::BuildBetaStateChanged(_) => BUILD_BETA_STATE_CHANGED,
            Self::PhasedReleaseStateChanged(_) => PHASED_RELEASE_STATE_CHANGED,
            Self::AccountActionRequired(_) => ACCOUNT_ACTION_REQUIRED,
            Self::KeyStatusChanged(_) => KEY_STATUS_CHANGED,
            Self::Test(_) => TEST,
            Self::PlayReleaseStateChanged(_) => crate::domain::events::PLAY_RELEASE_STATE_CHANGED,
            Self::KeyPushDegraded(_) => KEY_PUSH_DEGRADED,
            Self::TestflightFeedbackReceived(_) => TESTFLIGHT_FEEDBACK_RECEIVED,
            Self::Other(_) => return None,
        })
    }

    /// The data stored under `event_type`, typed when it has exactly that type's shape, otherwise
    /// [`EventData::Other`]. Never fails, so one odd row cannot make a history unreadable.
    pub fn from_stored(event_type: &str, data: Value) -> Self {
        let typed = match event_type {
            APP_VERSION_STATE_CHANGED => typed(&data, Self::AppVersionStateChanged),
            BUILD_PROCESSING_STATE_CHANGED => typed(&data, Self::BuildProcessingStateChanged),
            BUILD_BETA_STATE_CHANGED => typed(&data, Self::BuildBetaStateChanged),
            PHASED_RELEASE_STATE_CHANGED => typed(&data, Self::PhasedReleaseStateChanged),
            ACCOUNT_ACTION_REQUIRED => typed(&data, Self::AccountActionRequired),
            KEY_STATUS_CHANGED => typed(&data, Self::KeyStatusChanged),
            TEST => typed(&data, Self::Test),
            crate::domain::events::PLAY_RELEASE_STATE_CHANGED => {
                typed(&data, Self::PlayReleaseStateChanged)
            }
            KEY_PUSH_DEGRADED => typed(&data, Self::KeyPushDegraded),
            TESTFLIGHT_FEEDBACK_RECEIVED => typed(&data, Self::TestflightFeedbackReceived),
            _ => None,
        };
        typed.unwrap_or(Self::Other(data))
    }

    /// The data as JSON, as it is stored and sent.
    pub fn to_json(&self) -> Value {
        // `json!` of these structs cannot fail: they have string keys only.
        match self {
            Self::AppVersionStateChanged(data) => json!(data),
            Self::BuildProcessingStateChanged(data) | Self::BuildBetaStateChanged(data) => {
                json!(data)
            }
            Self::PhasedReleaseStateChanged(data) => json!(data),
            Self::AccountActionRequired(data) => json!(data),
            Self::KeyStatusChanged(data) => json!(data),
            Self::Test(data) => json!(data),
            Self::PlayReleaseStateChanged(data) => json!(data),
            Self::KeyPushDegraded(data) => json!(data),
            Self::TestflightFeedbackReceived(data) => json!(data),
            Self::Other(data) => data.clone(),
        }
    }
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Other(data) => data.serialize(serializer),
            typed => typed.to_json().serialize(serializer),
        }
    }
}

/// `data` as `T`, only if `T` writes it back identically: a row with an unknown field, an absent
/// null or a number out of range stays [`EventData::Other`] and is never changed by being read.
fn typed<T>(data: &Value, variant: fn(T) -> EventData) -> Option<EventData>
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    let value = T::deserialize(data).ok()?;
    (json!(value) == *data).then(|| variant(value))
}

/// A present field as `Some`, also when it is null; with `#[serde(default)]` an absent one is `None`.
fn present_field<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::events::EVENT_TYPES;
    use crate::model::EventRecord;

    use crate::domain::events::tests::{hello, version};

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    /// An event type, data of that type, and the JSON of that data.
    type Variant = (&'static str, EventData, &'static str);

    fn key() -> TestResult<KeyRef> {
        Ok(KeyRef {
            id: KeyRecordId("key1".into()),
            key_id: Some(KeyId::parse("ABCDE12345")?),
            client_email: None,
        })
    }

    /// Every variant with its type and the data `json!` wrote for it before the types existed,
    /// byte for byte (object keys sorted).
    fn variants() -> TestResult<Vec<Variant>> {
        Ok(vec![
            (
                APP_VERSION_STATE_CHANGED,
                EventData::AppVersionStateChanged(AppVersionStateChanged {
                    app: hello(),
                    version: version(),
                    old_state: Some("WAITING_FOR_REVIEW".into()),
                    new_state: "IN_REVIEW".into(),
                    time_in_previous_state_seconds: Some(Some(7500)),
                }),
                r#"{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"new_state":"IN_REVIEW","old_state":"WAITING_FOR_REVIEW","time_in_previous_state_seconds":7500,"version":{"id":"v1","platform":"IOS","version_string":"2.1"}}"#,
            ),
            (
                APP_VERSION_STATE_CHANGED,
                EventData::AppVersionStateChanged(AppVersionStateChanged {
                    app: hello(),
                    version: version(),
                    old_state: None,
                    new_state: "PREPARE_FOR_SUBMISSION".into(),
                    time_in_previous_state_seconds: Some(None),
                }),
                r#"{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"new_state":"PREPARE_FOR_SUBMISSION","old_state":null,"time_in_previous_state_seconds":null,"version":{"id":"v1","platform":"IOS","version_string":"2.1"}}"#,
            ),
            (
                BUILD_PROCESSING_STATE_CHANGED,
                EventData::BuildProcessingStateChanged(BuildStateChanged {
                    app: hello(),
                    build: BuildRef {
                        id: "b2".into(),
                        version: "43".into(),
                        short_version: None,
                        platform: None,
                    },
                    old_state: None,
                    new_state: "PROCESSING".into(),
                }),
                r#"{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"build":{"id":"b2","platform":null,"short_version":null,"version":"43"},"new_state":"PROCESSING","old_state":null}"#,
            ),
            (
                BUILD_BETA_STATE_CHANGED,
                EventData::BuildBetaStateChanged(BuildStateChanged {
                    app: hello(),
                    build: BuildRef {
                        id: "b1".into(),
                        version: "42".into(),
                        short_version: Some("2.1".into()),
                        platform: Some("IOS".into()),
                    },
                    old_state: Some("WAITING_FOR_BETA_REVIEW".into()),
                    new_state: "IN_BETA_REVIEW".into(),
                }),
                r#"{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"build":{"id":"b1","platform":"IOS","short_version":"2.1","version":"42"},"new_state":"IN_BETA_REVIEW","old_state":"WAITING_FOR_BETA_REVIEW"}"#,
            ),
            (
                PHASED_RELEASE_STATE_CHANGED,
                EventData::PhasedReleaseStateChanged(PhasedReleaseStateChanged {
                    app: hello(),
                    version: version(),
                    old_state: Some("ACTIVE".into()),
                    new_state: "PAUSED".into(),
                    current_day_number: Some(3),
                }),
                r#"{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"current_day_number":3,"new_state":"PAUSED","old_state":"ACTIVE","version":{"id":"v1","platform":"IOS","version_string":"2.1"}}"#,
            ),
            (
                PHASED_RELEASE_STATE_CHANGED,
                EventData::PhasedReleaseStateChanged(PhasedReleaseStateChanged {
                    app: hello(),
                    version: version(),
                    old_state: None,
                    new_state: "INACTIVE".into(),
                    current_day_number: None,
                }),
                r#"{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"current_day_number":null,"new_state":"INACTIVE","old_state":null,"version":{"id":"v1","platform":"IOS","version_string":"2.1"}}"#,
            ),
            (
                ACCOUNT_ACTION_REQUIRED,
                EventData::AccountActionRequired(AccountActionRequired {
                    key: key()?,
                    code: "agreements_required".into(),
                    message: "Accept the updated agreements in App Store Connect".into(),
                }),
                r#"{"code":"agreements_required","key":{"id":"key1","key_id":"ABCDE12345"},"message":"Accept the updated agreements in App Store Connect"}"#,
            ),
            (
                KEY_STATUS_CHANGED,
                EventData::KeyStatusChanged(KeyStatusChanged {
                    key: key()?,
                    old_status: KeyStatus::Valid,
                    new_status: KeyStatus::Invalid,
                    code: Some(KeyStatusCode::NotAuthorized),
                }),
                r#"{"code":"not_authorized","key":{"id":"key1","key_id":"ABCDE12345"},"new_status":"invalid","old_status":"valid"}"#,
            ),
            (
                KEY_STATUS_CHANGED,
                EventData::KeyStatusChanged(KeyStatusChanged {
                    key: key()?,
                    old_status: KeyStatus::ActionRequired,
                    new_status: KeyStatus::Valid,
                    code: None,
                }),
                r#"{"code":null,"key":{"id":"key1","key_id":"ABCDE12345"},"new_status":"valid","old_status":"action_required"}"#,
            ),
            (
                TEST,
                EventData::Test(TestMessage {
                    message: "Test message from shipwatch to \"ops\"".into(),
                }),
                r#"{"message":"Test message from shipwatch to \"ops\""}"#,
            ),
            (
                crate::domain::events::PLAY_RELEASE_STATE_CHANGED,
                EventData::PlayReleaseStateChanged(PlayReleaseStateChanged {
                    app: AppRef {
                        id: "com.example.app".into(),
                        name: "Example".into(),
                        bundle_id: "com.example.app".into(),
                    },
                    track: "production".into(),
                    release: crate::domain::play_snapshot::PlayReleaseRef {
                        name: Some("1.4.0".into()),
                        version_codes: vec!["140".into()],
                    },
                    old_state: Some("inProgress".into()),
                    new_state: "inProgress".into(),
                    old_user_fraction: serde_json::Number::from_f64(0.1),
                    new_user_fraction: serde_json::Number::from_f64(0.5),
                }),
                r#"{"app":{"bundle_id":"com.example.app","id":"com.example.app","name":"Example"},"new_state":"inProgress","new_user_fraction":0.5,"old_state":"inProgress","old_user_fraction":0.1,"release":{"name":"1.4.0","version_codes":["140"]},"track":"production"}"#,
            ),
            (
                KEY_PUSH_DEGRADED,
                EventData::KeyPushDegraded(KeyPushDegraded {
                    key: key()?,
                    old_push: PushStatus::Active,
                    new_push: PushStatus::Degraded,
                    message: "app 1: gone".into(),
                }),
                r#"{"key":{"id":"key1","key_id":"ABCDE12345"},"message":"app 1: gone","new_push":"degraded","old_push":"active"}"#,
            ),
            (
                TESTFLIGHT_FEEDBACK_RECEIVED,
                EventData::TestflightFeedbackReceived(TestflightFeedbackReceived {
                    app: AppRef {
                        id: "app1".into(),
                        name: "Hello".into(),
                        bundle_id: "com.example.hello".into(),
                    },
                    build: None,
                    kind: FeedbackKind::Crash,
                    submission_id: "s1".into(),
                    comment: None,
                    device_model: Some("iPhone16,1".into()),
                    os_version: Some("26.1".into()),
                    created_at: Some("2027-01-15T08:00:00Z".into()),
                }),
                r#"{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"build":null,"comment":null,"created_at":"2027-01-15T08:00:00Z","device_model":"iPhone16,1","kind":"crash","os_version":"26.1","submission_id":"s1"}"#,
            ),
        ])
    }

    #[test]
    fn every_variant_writes_the_json_it_always_has_and_reads_it_back() -> TestResult {
        let variants = variants()?;
        let covered: std::collections::BTreeSet<&str> = variants
            .iter()
            .map(|(event_type, _, _)| *event_type)
            .collect();
        assert_eq!(covered.len(), EVENT_TYPES.len());
        for (event_type, data, json) in variants {
            assert_eq!(serde_json::to_string(&data)?, json, "{event_type}");
            assert_eq!(data.to_json(), serde_json::from_str::<Value>(json)?);
            assert_eq!(data.event_type(), Some(event_type));
            let read = EventData::from_stored(event_type, serde_json::from_str(json)?);
            assert_eq!(read, data, "{event_type}");
        }
        Ok(())
    }

    /// Whole rows as the history stored them before the types existed.
    const OLD_ROWS: [&str; 7] = [
        r#"{"id":"evt-0","team_id":"team1","key_record_id":"key1","app_id":"app1","event_type":"shipwatch.app_version.state_changed","time":"2027-01-15T08:00:00Z","data":{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"new_state":"IN_REVIEW","old_state":"WAITING_FOR_REVIEW","time_in_previous_state_seconds":7500,"version":{"id":"v1","platform":"IOS","version_string":"2.1"}},"summary":"Hello 2.1 (iOS): Waiting for Review -> In Review (after 2 h 5 min)"}"#,
        r#"{"id":"evt-2","team_id":"team1","key_record_id":"key1","app_id":"app1","event_type":"shipwatch.build.processing_state_changed","time":"2027-01-15T08:00:00Z","data":{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"build":{"id":"b2","platform":null,"short_version":null,"version":"43"},"new_state":"PROCESSING","old_state":null},"summary":"Hello build 43: new, Processing"}"#,
        r#"{"id":"evt-3","team_id":"team1","key_record_id":"key1","app_id":"app1","event_type":"shipwatch.build.beta_state_changed","time":"2027-01-15T08:00:00Z","data":{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"build":{"id":"b1","platform":"IOS","short_version":"2.1","version":"42"},"new_state":"IN_BETA_REVIEW","old_state":"WAITING_FOR_BETA_REVIEW"},"summary":"Hello build 2.1 (42) (iOS) TestFlight: Waiting for Beta Review -> In Beta Review"}"#,
        r#"{"id":"evt-4","team_id":"team1","key_record_id":"key1","app_id":"app1","event_type":"shipwatch.phased_release.state_changed","time":"2027-01-15T08:00:00Z","data":{"app":{"bundle_id":"com.example.hello","id":"app1","name":"Hello"},"current_day_number":3,"new_state":"PAUSED","old_state":"ACTIVE","version":{"id":"v1","platform":"IOS","version_string":"2.1"}},"summary":"Hello 2.1 (iOS) phased release: Active -> Paused (day 3)"}"#,
        r#"{"id":"evt-6","team_id":"team1","key_record_id":"key1","app_id":null,"event_type":"shipwatch.account.action_required","time":"2027-01-15T08:00:00Z","data":{"code":"agreements_required","key":{"id":"key1","key_id":"ABCDE12345"},"message":"Accept the updated agreements in App Store Connect"},"summary":"Key CI key (ABCDE12345): App Store Connect needs action: Accept the updated agreements in App Store Connect"}"#,
        r#"{"id":"evt-7","team_id":"team1","key_record_id":"key1","app_id":null,"event_type":"shipwatch.key.status_changed","time":"2027-01-15T08:00:00Z","data":{"code":"not_authorized","key":{"id":"key1","key_id":"ABCDE12345"},"new_status":"invalid","old_status":"valid"},"summary":"Key CI key (ABCDE12345): valid -> invalid (not_authorized)"}"#,
        r#"{"id":"evt-9","team_id":"team1","key_record_id":null,"app_id":null,"event_type":"shipwatch.test","time":"2027-01-15T08:00:00Z","data":{"message":"Test message from shipwatch to \"ops\""},"summary":"Test message to ops"}"#,
    ];

    #[test]
    fn old_rows_read_as_their_variant_and_write_back_unchanged() -> TestResult {
        let mut types = Vec::new();
        for row in OLD_ROWS {
            let event: EventRecord = serde_json::from_str(row)?;
            assert_eq!(
                event.data.event_type(),
                Some(event.event_type.as_str()),
                "{row}"
            );
            assert_eq!(serde_json::to_string(&event)?, row);
            types.push(event.event_type.clone());
        }
        // Old rows hold the types that came before Google Play and push (the last two types).
        assert_eq!(types, EVENT_TYPES[..OLD_ROWS.len()]);

        let event: EventRecord = serde_json::from_str(OLD_ROWS[0])?;
        let EventData::AppVersionStateChanged(data) = &event.data else {
            panic!("{:?}", event.data);
        };
        assert_eq!(data.seconds_in_previous_state(), Some(7500));
        assert_eq!(data.app, hello());
        let event: EventRecord = serde_json::from_str(OLD_ROWS[1])?;
        let EventData::BuildProcessingStateChanged(data) = &event.data else {
            panic!("{:?}", event.data);
        };
        assert_eq!(
            (data.old_state.as_deref(), data.build.platform.as_deref()),
            (None, None)
        );
        let event: EventRecord = serde_json::from_str(OLD_ROWS[5])?;
        let EventData::KeyStatusChanged(data) = &event.data else {
            panic!("{:?}", event.data);
        };
        assert_eq!(data.code, Some(KeyStatusCode::NotAuthorized));
        assert_eq!(data.key, key()?);
        Ok(())
    }

    #[test]
    fn an_unknown_type_is_kept_as_other_and_the_rest_of_the_history_still_reads() -> TestResult {
        let unknown = r#"{"id":"evt-x","team_id":"team1","key_record_id":null,"app_id":null,"event_type":"shipwatch.future.thing","time":"2027-01-15T08:00:00Z","data":{"nested":{"b":[1,2.5,true],"a":null}},"summary":"from the future"}"#;
        let history = format!("[{},{unknown}]", OLD_ROWS[0]);
        let events: Vec<EventRecord> = serde_json::from_str(&history)?;
        assert_eq!(events.len(), 2);
        assert!(matches!(
            events[0].data,
            EventData::AppVersionStateChanged(_)
        ));
        assert_eq!(
            events[1].data,
            EventData::Other(json!({"nested": {"a": null, "b": [1, 2.5, true]}}))
        );
        assert_eq!(events[1].data.event_type(), None);
        // Rewritten as JSON always is: keys sorted.
        assert_eq!(
            serde_json::to_string(&events[1])?,
            unknown.replace(
                r#"{"b":[1,2.5,true],"a":null}"#,
                r#"{"a":null,"b":[1,2.5,true]}"#
            )
        );
        Ok(())
    }

    #[test]
    fn data_not_of_its_types_shape_is_kept_exactly_as_stored() -> TestResult {
        let fits: Value = serde_json::from_str(variants()?[0].2)?;
        let mut cases = Vec::new();
        for field in ["app", "version", "old_state", "new_state"] {
            let mut missing = fits.clone();
            missing.as_object_mut().map(|object| object.remove(field));
            cases.push((APP_VERSION_STATE_CHANGED, missing));
        }
        let mut extra = fits.clone();
        extra["reviewer"] = json!("someone");
        cases.push((APP_VERSION_STATE_CHANGED, extra));
        let mut nested_extra = fits.clone();
        nested_extra["app"]["sku"] = json!("SKU1");
        cases.push((APP_VERSION_STATE_CHANGED, nested_extra));
        let mut fractional = fits.clone();
        fractional["time_in_previous_state_seconds"] = json!(7500.5);
        cases.push((APP_VERSION_STATE_CHANGED, fractional));
        let mut bare_version = fits.clone();
        bare_version["version"] = json!("2.1");
        cases.push((APP_VERSION_STATE_CHANGED, bare_version));
        // The right shape under another type.
        cases.push((BUILD_PROCESSING_STATE_CHANGED, fits.clone()));
        cases.push((
            KEY_STATUS_CHANGED,
            json!({"code": null, "key": {"id": "key1", "key_id": "ABCDE12345"}, "new_status": "retired", "old_status": "valid"}),
        ));
        cases.push((
            KEY_STATUS_CHANGED,
            json!({"code": null, "key": {"id": "key1", "key_id": " ABCDE12345"}, "new_status": "valid", "old_status": "invalid"}),
        ));
        cases.push((TEST, json!("just a string")));
        cases.push((TEST, json!({})));
        for (event_type, data) in cases {
            let read = EventData::from_stored(event_type, data.clone());
            assert_eq!(read, EventData::Other(data.clone()), "{event_type}");
            assert_eq!(read.to_json(), data);
            assert_eq!(serde_json::to_string(&read)?, serde_json::to_string(&data)?);
        }
        Ok(())
    }

    #[test]
    fn time_in_previous_state_keeps_absent_apart_from_null() -> TestResult {
        let mut absent: Value = serde_json::from_str(variants()?[0].2)?;
        absent
            .as_object_mut()
            .map(|object| object.remove("time_in_previous_state_seconds"));
        let read = EventData::from_stored(APP_VERSION_STATE_CHANGED, absent.clone());
        let EventData::AppVersionStateChanged(data) = &read else {
            panic!("{read:?}");
        };
        assert_eq!(data.time_in_previous_state_seconds, None);
        assert_eq!(data.seconds_in_previous_state(), None);
        assert_eq!(read.to_json(), absent);

        let null = EventData::from_stored(
            APP_VERSION_STATE_CHANGED,
            serde_json::from_str(variants()?[1].2)?,
        );
        let EventData::AppVersionStateChanged(data) = &null else {
            panic!("{null:?}");
        };
        assert_eq!(data.time_in_previous_state_seconds, Some(None));
        assert_eq!(data.seconds_in_previous_state(), None);
        Ok(())
    }
}
