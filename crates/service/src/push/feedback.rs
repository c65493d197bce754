//! TestFlight feedback pushed by App Store Connect (`BETA_FEEDBACK_CRASH_SUBMISSION_CREATED`,
//! `BETA_FEEDBACK_SCREENSHOT_SUBMISSION_CREATED`): the notification only names the submission,
//! so shipwatch reads it through the API ([`FeedbackReader`]), names the app and build from the
//! key's last snapshot, and records one `shipwatch.testflight.feedback_received` event with its
//! deliveries in one write. The event id follows from the key and the submission, so handling a
//! notification twice stores it once. The tester's email and name are never read.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shipwatch_shared::clock::Clock;

use super::PushError;
use crate::accounts::{AccountError, Credentials, StoreAccounts};
use crate::domain::diff::{AppRef, BuildRef};
use crate::domain::event_data::{FeedbackKind, TestflightFeedbackReceived};
use crate::domain::events::{feedback_event_id, testflight_feedback_received};
use crate::domain::snapshot::KeySnapshot;
use crate::model::{AccountRef, KeyRecordId};
use crate::ports::{StoreError, Stores};

/// A feedback submission a notification announced, for the app of the webhook it came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRef {
    pub app_id: String,
    pub kind: FeedbackKind,
    pub submission_id: String,
}

/// One submission as App Store Connect reports it (only what an event shows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedbackSubmission {
    pub created_at: Option<String>,
    pub comment: Option<String>,
    pub device_model: Option<String>,
    pub os_version: Option<String>,
    /// The build's id and, when App Store Connect included it, its build number.
    pub build_id: Option<String>,
    pub build_version: Option<String>,
}

/// Reads a feedback submission of a key's account.
#[async_trait]
pub trait FeedbackReader: Send + Sync {
    /// `Ok(None)` when the store has no such submission (deleted, or not this key's).
    async fn submission(
        &self,
        credentials: &Credentials,
        kind: FeedbackKind,
        submission_id: &str,
    ) -> Result<Option<FeedbackSubmission>, AccountError>;
}

/// What came of one feedback notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedbackOutcome {
    /// The event was stored, with this many deliveries.
    Recorded { deliveries: usize },
    /// The event was stored before (the same submission handled again).
    AlreadyRecorded,
    /// App Store Connect has no such submission any more; nothing to announce.
    SubmissionGone,
    /// The key was deleted, or is not an App Store Connect key.
    KeyGone,
}

#[derive(Clone)]
pub struct FeedbackService {
    stores: Stores,
    accounts: Arc<dyn StoreAccounts>,
    reader: Arc<dyn FeedbackReader>,
    clock: Arc<dyn Clock>,
}

impl FeedbackService {
    pub fn new(
        stores: Stores,
        accounts: Arc<dyn StoreAccounts>,
        reader: Arc<dyn FeedbackReader>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            stores,
            accounts,
            reader,
            clock,
        }
    }

    /// Reads the submission and records its event (once). An error is worth trying again: the
    /// store, the key's secret or App Store Connect failed.
    pub async fn record(
        &self,
        key_id: &KeyRecordId,
        feedback: &FeedbackRef,
    ) -> Result<FeedbackOutcome, PushError> {
        let Some(key) = self.stores.keys.get_key_by_id(key_id).await? else {
            return Ok(FeedbackOutcome::KeyGone);
        };
        if !matches!(key.account, AccountRef::AppStoreConnect { .. }) {
            return Ok(FeedbackOutcome::KeyGone);
        }
        // A submission announced again (under a new `data.id`) costs a store read, not an App
        // Store Connect request.
        let id = feedback_event_id(&key.id, feedback.kind, &feedback.submission_id);
        if self.stores.sweeps.get_event(&id).await?.is_some() {
            return Ok(FeedbackOutcome::AlreadyRecorded);
        }
        let credentials = super::key_credentials(&self.stores, self.accounts.as_ref(), &key)
            .await?
            .ok_or(PushError::Credentials)?;
        let Some(submission) = self
            .reader
            .submission(&credentials, feedback.kind, &feedback.submission_id)
            .await
            .map_err(PushError::Account)?
        else {
            tracing::info!(key = %key.id, submission = %feedback.submission_id, "feedback submission no longer in App Store Connect; nothing announced");
            return Ok(FeedbackOutcome::SubmissionGone);
        };
        let snapshot = self
            .stores
            .sweeps
            .get_snapshot(&key.id)
            .await?
            .and_then(|stored| KeySnapshot::from_json(&stored.state).ok());
        let data = feedback_data(feedback, &submission, snapshot.as_ref());
        let now = self.clock.now();
        let events = [testflight_feedback_received(&key, data, now)];
        let deliveries = crate::outbox::route(&self.stores, &key.team_id, &events, now).await?;
        match self.stores.sweeps.append_events(&events, &deliveries).await {
            Ok(()) => {
                tracing::info!(key = %key.id, event = %events[0].id, deliveries = deliveries.len(), "TestFlight feedback recorded");
                Ok(FeedbackOutcome::Recorded {
                    deliveries: deliveries.len(),
                })
            }
            Err(StoreError::Conflict(_)) => Ok(FeedbackOutcome::AlreadyRecorded),
            Err(err) => Err(err.into()),
        }
    }
}

/// The event's data: the app and build named as the key's last snapshot names them (ids alone
/// when the snapshot does not know them yet).
pub fn feedback_data(
    feedback: &FeedbackRef,
    submission: &FeedbackSubmission,
    snapshot: Option<&KeySnapshot>,
) -> TestflightFeedbackReceived {
    let app = match snapshot.and_then(|s| s.apps.get(&feedback.app_id)) {
        Some(app) => AppRef {
            id: feedback.app_id.clone(),
            name: app.name.clone(),
            bundle_id: app.bundle_id.clone(),
        },
        None => AppRef {
            id: feedback.app_id.clone(),
            name: String::new(),
            bundle_id: String::new(),
        },
    };
    let known = submission
        .build_id
        .as_ref()
        .and_then(|id| snapshot.and_then(|s| s.builds.get(id)).map(|b| (id, b)));
    let build = match (known, &submission.build_id, &submission.build_version) {
        (Some((id, build)), _, _) => Some(BuildRef {
            id: id.clone(),
            version: build.version.clone(),
            short_version: build.short_version.clone(),
            platform: build.platform.clone(),
        }),
        (None, Some(id), Some(version)) => Some(BuildRef {
            id: id.clone(),
            version: version.clone(),
            short_version: None,
            platform: None,
        }),
        _ => None,
    };
    TestflightFeedbackReceived {
        app,
        build,
        kind: feedback.kind,
        submission_id: feedback.submission_id.clone(),
        comment: submission.comment.clone(),
        device_model: submission.device_model.clone(),
        os_version: submission.os_version.clone(),
        created_at: submission.created_at.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::snapshot::{AppSnapshot, BuildSnapshot};

    fn feedback() -> FeedbackRef {
        FeedbackRef {
            app_id: "app-1".into(),
            kind: FeedbackKind::Screenshot,
            submission_id: "sub-1".into(),
        }
    }

    fn submission() -> FeedbackSubmission {
        FeedbackSubmission {
            created_at: Some("2026-12-03T09:00:00Z".into()),
            comment: Some("The button is cut off".into()),
            device_model: Some("iPhone16,1".into()),
            os_version: Some("26.1".into()),
            build_id: Some("b-1".into()),
            build_version: Some("42".into()),
        }
    }

    #[test]
    fn the_snapshot_names_the_app_and_the_build() {
        let mut snapshot = KeySnapshot::default();
        snapshot.apps.insert(
            "app-1".into(),
            AppSnapshot {
                name: "Weather".into(),
                bundle_id: "com.example.weather".into(),
                versions: Default::default(),
            },
        );
        let build: BuildSnapshot = serde_json::from_value(serde_json::json!({
            "app_id": "app-1", "version": "42", "short_version": "2.1", "platform": "IOS",
            "processing_state": "VALID", "uploaded_date": "2026-12-01T00:00:00Z"
        }))
        .expect("a build snapshot");
        snapshot.builds.insert("b-1".into(), build);
        let data = feedback_data(&feedback(), &submission(), Some(&snapshot));
        assert_eq!(data.app.name, "Weather");
        assert_eq!(data.app.bundle_id, "com.example.weather");
        let build = data.build.expect("build");
        assert_eq!(build.short_version.as_deref(), Some("2.1"));
        assert_eq!(build.version, "42");
        assert_eq!(data.comment.as_deref(), Some("The button is cut off"));
    }

    #[test]
    fn without_a_snapshot_the_ids_and_the_build_number_are_kept() {
        let data = feedback_data(&feedback(), &submission(), None);
        assert_eq!(data.app.id, "app-1");
        assert_eq!(data.app.name, "");
        assert_eq!(data.build.expect("build").version, "42");
        let unknown_build = FeedbackSubmission {
            build_version: None,
            ..submission()
        };
        assert_eq!(feedback_data(&feedback(), &unknown_build, None).build, None);
    }
}
