//! The push receiver end to end, on both stores: the fake App Store Connect signs and posts a
//! notification to the webhook shipwatch registered (to the test app's address); a state change
//! pushed is recorded once through the normal sweep path, a redelivery of the same `data.id` and
//! the next poll add nothing; a bad or missing signature is 401 and reads nothing; malformed JSON
//! 400, oversize 413; a ping and an unknown type are 2xx and ignored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shipwatch_service::model::KeyRecordId;
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, TestTeam, fresh_stores};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeVersion, notification_body};
use shipwatch_tests::test_keys::TestKey;

shipwatch_tests::on_both_stores!(
    a_pushed_state_change_is_recorded_once_and_the_next_poll_adds_nothing,
    bad_or_missing_signatures_are_refused_and_read_nothing,
);

const PUBLIC_URL: &str = "https://shipwatch.example.com";
pub(crate) const APP: &str = "6450000001";
const VERSION: &str = "v-1";
const STATE_EVENTS: &str = "/v1/events?type=shipwatch.app_version.state_changed";

/// A key with push `active` (one webhook of ours on [`APP`], pinged once provisioned) after its
/// silent baseline sweep.
pub(crate) struct Setup {
    pub(crate) asc: FakeAsc,
    pub(crate) app: TestApp,
    pub(crate) team: TestTeam,
    pub(crate) key: TestKey,
    pub(crate) key_record: String,
    pub(crate) webhook: String,
}

pub(crate) async fn setup(backend: Backend) -> Setup {
    let asc = FakeAsc::start().await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.add_app(&key.issuer_id, FakeApp::new(APP, "App", "com.example.app"));
    asc.add_version(FakeVersion::new(
        VERSION,
        APP,
        "1.0",
        "IOS",
        "PREPARE_FOR_SUBMISSION",
    ));
    let dir = tempfile::tempdir().unwrap();
    let stores = fresh_stores(backend, dir.path()).await;
    let app = TestApp::start_with_settings(
        backend,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &[
            ("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "1"),
            ("SHIPWATCH_PUBLIC_URL", PUBLIC_URL),
        ],
    )
    .await;
    // Pings and redeliveries reach the test app, as Apple's would reach the public URL.
    asc.set_delivery_host(&app.base_url);
    let team = app.create_team("Acme").await;
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/keys",
            &json!({
                "private_key": key.pem,
                "issuer_id": key.issuer_id.as_str(),
                "key_id": key.key_id.as_str(),
            }),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let key_record = created["id"].as_str().unwrap().to_owned();
    app.wait_for_key(&team.token, &key_record, |k| k["push"] == "active")
        .await;
    // The silent baseline sweep.
    app.services
        .sweeper
        .run_for_keys(&[KeyRecordId(key_record.clone())])
        .await;
    let webhook = asc.webhooks_of(APP)[0].id.clone();
    Setup {
        asc,
        app,
        team,
        key,
        key_record,
        webhook,
    }
}

async fn state_events(setup: &Setup) -> Vec<Value> {
    let (status, body) = setup.app.get(&setup.team.token, STATE_EVENTS).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().cloned().unwrap_or_default()
}

fn state_notification(data_id: &str) -> Value {
    notification_body(
        "appStoreVersionAppVersionStateUpdated",
        data_id,
        ("appStoreVersions", VERSION),
    )
}

async fn a_pushed_state_change_is_recorded_once_and_the_next_poll_adds_nothing(backend: Backend) {
    let setup = setup(backend).await;
    assert!(state_events(&setup).await.is_empty());
    setup.asc.set_version_state(VERSION, "WAITING_FOR_REVIEW");

    let started = std::time::Instant::now();
    let body = state_notification("n-1");
    let (status, answer) = setup
        .asc
        .deliver_notification(&setup.webhook, &setup.app.base_url, &body, None)
        .await;
    assert_eq!(status, 202, "{answer}");
    assert!(answer.contains("sweep_requested"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered within a second"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state_events(&setup).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pushed change was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Apple redelivers the same data.id: processed once.
    let (status, answer) = setup
        .asc
        .deliver_notification(&setup.webhook, &setup.app.base_url, &body, None)
        .await;
    assert_eq!(status, 202);
    assert!(answer.contains("duplicate"), "{answer}");
    // The next poll adds nothing.
    setup
        .app
        .services
        .sweeper
        .run_for_keys(&[KeyRecordId(setup.key_record.clone())])
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = state_events(&setup).await;
    assert_eq!(events.len(), 1, "{events:?}");

    // A ping and a type shipwatch does not know: 2xx, nothing read.
    let before = setup.asc.requests_for(&setup.key.key_id);
    let ping = json!({"data": {"type": "webhookPingCreated", "id": "p-1", "version": 1, "attributes": {}}});
    let (status, answer) = setup
        .asc
        .deliver_notification(&setup.webhook, &setup.app.base_url, &ping, None)
        .await;
    assert_eq!((status, answer.contains("ping")), (202, true), "{answer}");
    let unknown = notification_body("somethingShipwatchDoesNotKnow", "u-1", ("apps", APP));
    let (status, answer) = setup
        .asc
        .deliver_notification(&setup.webhook, &setup.app.base_url, &unknown, None)
        .await;
    assert_eq!(
        (status, answer.contains("ignored")),
        (202, true),
        "{answer}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(setup.asc.requests_for(&setup.key.key_id), before);

    // Neither the webhook's secret nor notification bodies reach the logs.
    let secret = setup.asc.webhooks_of(APP)[0].secret.clone();
    let logs = shipwatch_tests::logs::captured();
    assert!(!logs.contains(&secret), "a webhook secret was logged");
    assert!(
        !logs.contains("\"relationships\""),
        "a notification body was logged"
    );
}

async fn bad_or_missing_signatures_are_refused_and_read_nothing(backend: Backend) {
    let setup = setup(backend).await;
    setup.asc.set_version_state(VERSION, "WAITING_FOR_REVIEW");
    let before = setup.asc.requests_for(&setup.key.key_id);
    let body = state_notification("n-bad");
    for signature in [
        "",
        "hmacsha256=00",
        "hmacsha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "sha256=abc",
    ] {
        let (status, answer) = setup
            .asc
            .deliver_notification(&setup.webhook, &setup.app.base_url, &body, Some(signature))
            .await;
        assert_eq!(status, 401, "{signature:?}: {answer}");
        let error: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(error["error"]["code"], "invalid_signature");
    }
    // An unknown webhook reference: the same 401.
    let response = reqwest::Client::new()
        .post(setup.app.url(&format!(
            "/v1/push/apple/{}/not-a-reference",
            setup.key_record
        )))
        .header("x-apple-signature", "hmacsha256=00")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // Correctly signed but not JSON: 400; too big: 413.
    let signed_garbage = json!("not an object");
    let (status, _) = setup
        .asc
        .deliver_notification(&setup.webhook, &setup.app.base_url, &signed_garbage, None)
        .await;
    assert_eq!(status, 400);
    let huge = json!({"data": {"type": "x", "id": "big", "pad": "a".repeat(70 * 1024)}});
    let (status, _) = setup
        .asc
        .deliver_notification(&setup.webhook, &setup.app.base_url, &huge, None)
        .await;
    assert_eq!(status, 413);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        setup.asc.requests_for(&setup.key.key_id),
        before,
        "nothing was read"
    );
    assert!(state_events(&setup).await.is_empty());
}
