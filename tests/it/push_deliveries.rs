//! Deliveries of shipwatch's webhooks, on both stores: a webhook shipwatch creates is pinged at
//! once (the ping goes through App Store Connect's delivery to the receiver and succeeds); a
//! notification App Store Connect could not deliver while shipwatch was unreachable is asked
//! for again by the next health check, arrives with the same `data.id`, and is recorded once,
//! however often the check asks; `push_message` says what happened.

use std::time::Duration;

use serde_json::Value;
use shipwatch_service::model::KeyRecordId;
use shipwatch_tests::app::Backend;
use shipwatch_tests::fake_asc::{FakeFeedback, notification_body};

use crate::push_receiver::{APP, Setup, setup};

shipwatch_tests::on_both_stores!(
    a_new_webhook_is_pinged_and_a_lost_notification_is_redelivered_once,
);

const FEEDBACK_EVENTS: &str = "/v1/events?type=shipwatch.testflight.feedback_received";

/// An address nothing listens on.
fn closed_host() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

async fn feedback_events(setup: &Setup) -> Vec<Value> {
    let (status, body) = setup.app.get(&setup.team.token, FEEDBACK_EVENTS).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().cloned().unwrap_or_default()
}

async fn health_check(setup: &Setup) -> Value {
    setup
        .app
        .services
        .push
        .reconcile(&KeyRecordId(setup.key_record.clone()))
        .await
        .expect("the check runs");
    let (status, key) = setup
        .app
        .get(&setup.team.token, &format!("/v1/keys/{}", setup.key_record))
        .await;
    assert_eq!(status, 200, "{key}");
    key
}

async fn a_new_webhook_is_pinged_and_a_lost_notification_is_redelivered_once(backend: Backend) {
    let setup = setup(backend).await;
    // The ping asked for right after the webhook was created, delivered and answered.
    let pings = setup.asc.requests_to("/v1/webhookPings");
    assert_eq!(pings.len(), 1, "{pings:?}");
    assert_eq!(pings[0].status, 201);
    let delivered = setup.asc.wait_for_deliveries(&setup.webhook, 1).await;
    assert!(delivered[0].ping, "{delivered:?}");
    assert_eq!(delivered[0].state, "SUCCEEDED", "{delivered:?}");
    assert_eq!(delivered[0].http_status, Some(202));

    // shipwatch is unreachable while a tester sends feedback: the delivery fails.
    setup
        .asc
        .add_feedback(FakeFeedback::screenshot("shot-lost", APP, None));
    let lost = notification_body(
        "betaFeedbackScreenshotSubmissionCreated",
        "n-lost",
        ("betaFeedbackScreenshotSubmissions", "shot-lost"),
    );
    let (status, _) = setup
        .asc
        .deliver_notification(&setup.webhook, &closed_host(), &lost, None)
        .await;
    assert_eq!(status, 0, "nothing answered");
    assert_eq!(
        setup
            .asc
            .deliveries_of(&setup.webhook)
            .last()
            .map(|d| d.state.clone()),
        Some("FAILED".to_owned())
    );
    assert!(feedback_events(&setup).await.is_empty());

    // Reachable again; the health check asks App Store Connect to send it again.
    setup.asc.set_delivery_host(&setup.app.base_url);
    let key = health_check(&setup).await;
    assert_eq!(key["push"], "active", "{key}");
    let message = key["push_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("could not deliver 1 notification(s)")
            && message.contains("asked it to send 1 of them again"),
        "{key}"
    );
    let redeliveries = setup.asc.requests_to("/v1/webhookDeliveries");
    assert_eq!(redeliveries.len(), 1, "{redeliveries:?}");
    assert_eq!(redeliveries[0].status, 201);
    let deliveries = setup.asc.wait_for_deliveries(&setup.webhook, 3).await;
    let redelivered = deliveries.last().expect("the redelivery");
    assert!(redelivered.redelivery);
    assert_eq!(redelivered.state, "SUCCEEDED", "{deliveries:?}");
    assert_eq!(redelivered.payload["data"]["id"], "n-lost");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while feedback_events(&setup).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the redelivered feedback was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The next check finds the notification delivered: nothing asked again, nothing to say.
    let key = health_check(&setup).await;
    assert_eq!(key["push_message"], Value::Null, "{key}");
    assert_eq!(setup.asc.requests_to("/v1/webhookDeliveries").len(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(feedback_events(&setup).await.len(), 1);
}
