//! TestFlight feedback pushed by App Store Connect, end to end on both stores: the fake signs and
//! posts `betaFeedback*SubmissionCreated` notifications to the webhook shipwatch registered;
//! shipwatch reads the submission (asking only for fields that do not name the tester), records
//! one `shipwatch.testflight.feedback_received` per submission, routes it by workflows to a real
//! local webhook receiver, and never stores, sends or logs the tester's email. A read that fails
//! is tried again; a submission that is gone announces nothing.

use std::time::Duration;

use serde_json::{Value, json};
use shipwatch_service::model::KeyRecordId;
use shipwatch_tests::app::Backend;
use shipwatch_tests::fake_asc::{FailureMode, FakeBuild, FakeFeedback, notification_body};
use shipwatch_tests::receiver::Receiver;

use crate::push_receiver::{APP, Setup, setup};

shipwatch_tests::on_both_stores!(
    feedback_becomes_one_routed_event_per_submission_without_the_tester_email,
    a_failed_feedback_read_is_tried_again_and_a_vanished_submission_announces_nothing,
);

const FEEDBACK_EVENTS: &str = "/v1/events?type=shipwatch.testflight.feedback_received";
const BUILD: &str = "build-412";

async fn feedback_events(setup: &Setup) -> Vec<Value> {
    let (status, body) = setup.app.get(&setup.team.token, FEEDBACK_EVENTS).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().cloned().unwrap_or_default()
}

async fn wait_for_feedback_events(setup: &Setup, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = feedback_events(setup).await;
        if events.len() >= count {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} feedback events recorded",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn screenshot_notification(data_id: &str, submission: &str) -> Value {
    notification_body(
        "betaFeedbackScreenshotSubmissionCreated",
        data_id,
        ("betaFeedbackScreenshotSubmissions", submission),
    )
}

async fn deliver(setup: &Setup, body: &Value) -> (u16, String) {
    setup
        .asc
        .deliver_notification(&setup.webhook, &setup.app.base_url, body, None)
        .await
}

async fn feedback_becomes_one_routed_event_per_submission_without_the_tester_email(
    backend: Backend,
) {
    let setup = setup(backend).await;
    // The build the tester ran, known to the key's snapshot after a sweep.
    setup
        .asc
        .add_build(FakeBuild::new(BUILD, APP, "412", "2.1"));
    setup
        .app
        .services
        .sweeper
        .run_for_keys(&[KeyRecordId(setup.key_record.clone())])
        .await;
    let receiver = Receiver::start().await.unwrap();
    let (status, destination) = setup
        .app
        .post_json(
            &setup.team.token,
            "/v1/destinations",
            &json!({"type": "webhook", "name": "feedback hook",
                "url": format!("{}/feedback", receiver.url())}),
        )
        .await;
    assert_eq!(status, 201, "{destination}");
    let (status, workflow) = setup
        .app
        .post_json(
            &setup.team.token,
            "/v1/workflows",
            &json!({"name": "feedback", "destination_id": destination["id"],
                "app_ids": ["*"], "event_types": ["shipwatch.testflight.feedback_received"]}),
        )
        .await;
    assert_eq!(status, 201, "{workflow}");

    let screenshot = FakeFeedback::screenshot("shot-1", APP, Some(BUILD));
    let email = screenshot.email.clone();
    setup.asc.add_feedback(screenshot);
    setup
        .asc
        .add_feedback(FakeFeedback::crash("crash-1", APP, None));

    let (status, answer) = deliver(&setup, &screenshot_notification("n-shot-1", "shot-1")).await;
    assert_eq!(status, 202, "{answer}");
    assert!(answer.contains("feedback_requested"), "{answer}");
    let sent = receiver
        .wait_for(1, Duration::from_secs(20))
        .await
        .expect("the feedback event reaches the destination");
    let cloud_event = sent[0].json();
    assert_eq!(
        cloud_event["type"], "shipwatch.testflight.feedback_received",
        "{cloud_event}"
    );
    let data = &cloud_event["data"];
    assert_eq!(data["kind"], "screenshot");
    assert_eq!(data["submission_id"], "shot-1");
    assert_eq!(data["app"]["id"], APP);
    assert_eq!(data["app"]["name"], "App");
    assert_eq!(data["build"]["version"], "412");
    assert_eq!(data["build"]["short_version"], "2.1");
    assert_eq!(data["comment"], "The Save button is cut off on this screen");
    assert_eq!(data["device_model"], "iPhone16,1");
    assert_eq!(data["os_version"], "26.1");
    assert!(data["created_at"].is_string(), "{data}");

    // Apple redelivers the same data.id; another notification names the same submission: one
    // event all the same.
    let (status, answer) = deliver(&setup, &screenshot_notification("n-shot-1", "shot-1")).await;
    assert_eq!(
        (status, answer.contains("duplicate")),
        (202, true),
        "{answer}"
    );
    let (status, _) = deliver(&setup, &screenshot_notification("n-shot-1-again", "shot-1")).await;
    assert_eq!(status, 202);

    // A crash report without a comment or build.
    let crash = notification_body(
        "betaFeedbackCrashSubmissionCreated",
        "n-crash-1",
        ("betaFeedbackCrashSubmissions", "crash-1"),
    );
    let (status, answer) = deliver(&setup, &crash).await;
    assert_eq!(status, 202, "{answer}");
    let events = wait_for_feedback_events(&setup, 2).await;
    receiver
        .wait_for(2, Duration::from_secs(20))
        .await
        .expect("the crash event reaches the destination");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events_now = feedback_events(&setup).await;
    assert_eq!(
        events_now.len(),
        2,
        "one event per submission: {events_now:?}"
    );
    assert_eq!(receiver.requests().len(), 2, "each delivered once");
    let crash_event = events
        .iter()
        .find(|e| e["data"]["kind"] == "crash")
        .expect("the crash event");
    assert_eq!(crash_event["data"]["build"], Value::Null);
    assert_eq!(crash_event["data"]["comment"], Value::Null);

    // shipwatch never asked for the tester's email, and it is nowhere it could leak to.
    // One read per submission: the redelivery stops at the data.id, the second notification of
    // the same submission at the stored event.
    let reads = setup.asc.requests_to("/v1/betaFeedback");
    assert_eq!(reads.len(), 2, "{reads:?}");
    for read in &reads {
        let fields = read
            .query
            .iter()
            .find(|(name, _)| name.starts_with("fields[betaFeedback"))
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("a sparse fieldset in {read:?}"));
        assert!(!fields.contains("email"), "{fields}");
        assert!(!fields.contains("tester"), "{fields}");
        assert_eq!(read.status, 200, "{read:?}");
    }
    let (_, history) = setup.app.get(&setup.team.token, "/v1/events").await;
    assert!(!history.to_string().contains(&email));
    for request in receiver.requests() {
        assert!(!request.body_text().contains(&email));
    }
    let logs = shipwatch_tests::logs::captured();
    assert!(!logs.contains(&email), "the tester's email was logged");
    assert!(
        !logs.contains("cut off on this screen"),
        "a tester's comment was logged"
    );
}

async fn a_failed_feedback_read_is_tried_again_and_a_vanished_submission_announces_nothing(
    backend: Backend,
) {
    let setup = setup(backend).await;
    setup
        .asc
        .add_feedback(FakeFeedback::screenshot("shot-retry", APP, None));

    // App Store Connect answers 503 to the first read; the notification was answered at once.
    setup
        .asc
        .set_failure(&setup.key.key_id, FailureMode::ServiceUnavailable);
    let (status, answer) = deliver(&setup, &screenshot_notification("n-retry", "shot-retry")).await;
    assert_eq!(status, 202, "{answer}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while setup
        .asc
        .requests_to("/v1/betaFeedbackScreenshotSubmissions")
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "never read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(feedback_events(&setup).await.is_empty());
    setup.asc.clear_failure(&setup.key.key_id);
    let events = wait_for_feedback_events(&setup, 1).await;
    assert_eq!(events[0]["data"]["submission_id"], "shot-retry");
    let reads = setup
        .asc
        .requests_to("/v1/betaFeedbackScreenshotSubmissions");
    assert_eq!(reads[0].status, 503, "{reads:?}");
    assert_eq!(reads.last().map(|r| r.status), Some(200), "{reads:?}");

    // A submission deleted before shipwatch reads it: 404 from Apple, no event.
    let (status, _) = deliver(&setup, &screenshot_notification("n-gone", "shot-gone")).await;
    assert_eq!(status, 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !setup
        .asc
        .requests_to("/v1/betaFeedbackScreenshotSubmissions/shot-gone")
        .iter()
        .any(|r| r.status == 404)
    {
        assert!(tokio::time::Instant::now() < deadline, "never read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(feedback_events(&setup).await.len(), 1);
}
