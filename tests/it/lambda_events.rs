//! The `events/` fixtures (what `sam local invoke` and `cargo lambda invoke --data-file` send) fed to
//! the real function handlers, so the fixtures and the handlers cannot drift apart.

use std::sync::Arc;

use serde_json::Value;
use shipwatch_service::auth::hash_token;
use shipwatch_service::keys::StreamTriggersValidation;
use shipwatch_tests::app::{Backend, TestApp, api_router};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc};
use shipwatch_tests::test_keys::TestKey;
use tower::ServiceExt;

fn fixture(name: &str) -> String {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bearer_in(request: &lambda_http::Request) -> String {
    request.headers()["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned()
}

/// Sends an API Gateway HTTP API (payload v2) fixture through the key-api router, exactly as
/// `lambda_http::run` hands requests to it.
async fn invoke_http(
    app: &TestApp,
    fixture_name: &str,
    token_override: Option<&str>,
) -> (u16, Value) {
    let mut request =
        lambda_http::request::from_str(&fixture(fixture_name)).expect("a valid HTTP API event");
    let admin = bearer_in(&request);
    if let Some(token) = token_override {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let router = api_router(
        &app.services,
        &hash_token(&admin),
        Arc::new(StreamTriggersValidation),
    );
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn http_fixtures_reach_the_api_handlers() {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(Backend::Embedded, &asc.base_url()).await;

    let (status, team) = invoke_http(&app, "http-create-team.json", None).await;
    assert_eq!(status, 201, "{team}");
    assert_eq!(team["name"], "Acme Mobile");
    let token = team["token"].as_str().unwrap().to_owned();

    let (status, keys) = invoke_http(&app, "http-list-keys.json", Some(&token)).await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["keys"], serde_json::json!([]));

    // The upload fixture carries a placeholder instead of a key: a precise 400, nothing stored.
    let (status, rejected) = invoke_http(&app, "http-create-key-json.json", Some(&token)).await;
    assert_eq!(status, 400, "{rejected}");
    assert_eq!(rejected["error"]["code"], "invalid_private_key");
}

#[tokio::test]
async fn scheduled_event_runs_a_sweep_of_every_key() {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(Backend::Embedded, &asc.base_url()).await;
    let team = app.create_team("Acme").await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.add_app(
        &key.issuer_id,
        FakeApp::new("6480000001", "Hello", "com.example.l"),
    );
    let team_id = shipwatch_service::model::TeamId(team.id.clone());
    let record = key
        .seed_valid(
            &app.services.stores,
            &team_id,
            "scheduled",
            chrono::Utc::now(),
        )
        .await;
    let event: Value = serde_json::from_str(&fixture("scheduled-sweep.json")).unwrap();
    assert_eq!(event["detail-type"], "Scheduled Event");
    // The status-sweep function's own entry point, as its main.rs wires it (no queue configured).
    let fanout = app.services.fanout_sweep(None);
    let report = status_sweep::handle(&fanout, event)
        .await
        .expect("a readable event");
    assert_eq!(
        (&report["mode"], &report["keys"]),
        (&serde_json::json!("inline"), &serde_json::json!(1)),
        "{report}"
    );
    let snapshot = app
        .services
        .stores
        .sweeps
        .get_snapshot(&record.id)
        .await
        .unwrap();
    assert!(
        snapshot.is_some_and(|s| s.version == 1),
        "the baseline is stored"
    );
}
