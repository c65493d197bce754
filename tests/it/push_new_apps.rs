//! New apps get their webhook after the sweep that sees them, not only at the hourly check, on
//! both stores: a key with push `active` whose sweep finds an app without a webhook of ours is
//! reconciled by the push check that follows the sweep; before the sweep saw the app, that check
//! asks App Store Connect nothing.

use std::sync::Arc;

use serde_json::json;
use shipwatch_service::model::KeyRecordId;
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, fresh_stores};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc};
use shipwatch_tests::test_keys::TestKey;

shipwatch_tests::on_both_stores!(a_new_app_gets_its_webhook_after_the_sweep_that_sees_it);

const PUBLIC_URL: &str = "https://shipwatch.example.com";
const FIRST: &str = "6450000001";
const NEW: &str = "6450000009";

async fn a_new_app_gets_its_webhook_after_the_sweep_that_sees_it(backend: Backend) {
    let asc = FakeAsc::start().await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.add_app(
        &key.issuer_id,
        FakeApp::new(FIRST, "App", "com.example.app"),
    );
    let dir = tempfile::tempdir().unwrap();
    let stores = fresh_stores(backend, dir.path()).await;
    let app = TestApp::start_with_settings(
        backend,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &[("SHIPWATCH_PUBLIC_URL", PUBLIC_URL)],
    )
    .await;
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
    let id = KeyRecordId(created["id"].as_str().unwrap().to_owned());
    app.wait_for_key(&team.token, id.as_str(), |k| k["push"] == "active")
        .await;
    app.services
        .sweeper
        .run_for_keys(std::slice::from_ref(&id))
        .await;
    assert_eq!(asc.webhooks_of(FIRST).len(), 1);

    // A new app in App Store Connect: until a sweep sees it, the check reads nothing.
    asc.add_app(&key.issuer_id, FakeApp::new(NEW, "New", "com.example.new"));
    let before = asc.requests_for(&key.key_id);
    assert_eq!(app.services.push.check_due().await, 0);
    assert_eq!(asc.requests_for(&key.key_id), before);
    assert!(asc.webhooks_of(NEW).is_empty());

    // The sweep sees it; the check after it gives it a webhook (well within the hour).
    app.services
        .sweeper
        .run_for_keys(std::slice::from_ref(&id))
        .await;
    assert_eq!(app.services.push.check_due().await, 1);
    let hooks = asc.webhooks_of(NEW);
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert!(hooks[0].url.starts_with(PUBLIC_URL));
    assert_eq!(asc.webhooks_of(FIRST).len(), 1, "the first app's is reused");
    let (status, view) = app
        .get(&team.token, &format!("/v1/keys/{}", id.as_str()))
        .await;
    assert_eq!(
        (status, view["push"].as_str()),
        (200, Some("active")),
        "{view}"
    );

    // Covered now: the next check asks nothing.
    let before = asc.requests_for(&key.key_id);
    assert_eq!(app.services.push.check_due().await, 0);
    assert_eq!(asc.requests_for(&key.key_id), before);
}
