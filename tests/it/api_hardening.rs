//! Inputs and failures an attacker or an unlucky operator would try, through the HTTP API on both
//! stores: malformed query strings, unknown filters and deceptive names get the API's error JSON
//! and change nothing; a destination deletion that fails half-way leaves no orphan secret.

use std::sync::Arc;

use serde_json::{Value, json};
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, fresh_stores};
use shipwatch_tests::fake_asc::FakeAsc;
use shipwatch_tests::faults::{Faults, with_faults};

shipwatch_tests::on_both_stores!(
    malformed_history_queries_are_refused_in_the_error_json,
    names_with_bidirectional_controls_are_refused,
    a_destination_deletion_that_fails_half_way_leaves_no_orphan_secret,
    validate_and_test_floods_are_refused_with_retry_after,
    monitored_apps_come_in_pages_without_duplicates_or_gaps,
);

/// The API's error document with this code, and a message.
fn assert_error(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        answer.1
    );
}

async fn malformed_history_queries_are_refused_in_the_error_json(backend: Backend) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let team = app.create_team("Acme").await;
    for query in [
        "type=shipwatch.test&type=shipwatch.test",
        "app_id=1&app_id=2",
        "type=shipwatch.nonsense",
        "type=SHIPWATCH.TEST",
    ] {
        let answer = app.get(&team.token, &format!("/v1/events?{query}")).await;
        assert_error(answer, 400, "invalid_request");
    }
    let (status, page) = app.get(&team.token, "/v1/events?type=shipwatch.test").await;
    assert_eq!((status, &page["events"]), (200, &json!([])), "a known type");
}

async fn names_with_bidirectional_controls_are_refused(backend: Backend) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let team = app.create_team("Acme").await;
    for name in [
        "abc\u{202e}gpj.exe",
        "\u{2066}isolated\u{2069}",
        "mark\u{200f}",
    ] {
        let answer = app
            .post_json(
                &team.token,
                "/v1/destinations",
                &json!({"type": "slack", "name": name, "url": "https://hooks.slack.com/services/T0/B0/x"}),
            )
            .await;
        assert_error(answer, 400, "invalid_request");
    }
    let (_, list) = app.get(&team.token, "/v1/destinations").await;
    assert_eq!(list["destinations"], json!([]), "nothing stored");
}

async fn a_destination_deletion_that_fails_half_way_leaves_no_orphan_secret(backend: Backend) {
    let asc = FakeAsc::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (stores, faults) = with_faults(fresh_stores(backend, dir.path()).await);
    let app =
        TestApp::start_with(backend, stores, &asc.base_url(), dir, Arc::new(SystemClock)).await;
    let team = app.create_team("Acme").await;
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/destinations",
            &json!({"type": "webhook", "name": "hook", "url": "https://hooks.example.com/in/secret"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let path = format!(
        "/v1/destinations/{}",
        created["id"].as_str().unwrap_or_default()
    );
    assert_eq!(app.count_team_secrets(&team.id).await, 1);

    // The record's deletion fails after the secret's: the record stays, so the delete can be
    // retried; the secret is gone already.
    Faults::set(&faults.destination_delete, true);
    assert_error(
        app.delete(&team.token, &path).await,
        503,
        "store_unavailable",
    );
    Faults::set(&faults.destination_delete, false);
    assert_eq!(
        app.count_team_secrets(&team.id).await,
        0,
        "no orphan secret"
    );
    assert_eq!(
        app.get(&team.token, &path).await.0,
        200,
        "still there to retry"
    );
    assert_eq!(app.delete(&team.token, &path).await.0, 204);
    assert_eq!(app.get(&team.token, &path).await.0, 404);

    // The secret's deletion fails: nothing is deleted, and a retry finishes.
    let (_, second) = app
        .post_json(
            &team.token,
            "/v1/destinations",
            &json!({"type": "slack", "name": "chat", "url": "https://hooks.slack.com/services/T0/B0/y"}),
        )
        .await;
    let path = format!(
        "/v1/destinations/{}",
        second["id"].as_str().unwrap_or_default()
    );
    Faults::set(&faults.secret_delete, true);
    assert_error(
        app.delete(&team.token, &path).await,
        503,
        "store_unavailable",
    );
    Faults::set(&faults.secret_delete, false);
    assert_eq!(app.get(&team.token, &path).await.0, 200);
    assert_eq!(app.delete(&team.token, &path).await.0, 204);
    assert_eq!(app.count_team_secrets(&team.id).await, 0);
}

async fn validate_and_test_floods_are_refused_with_retry_after(backend: Backend) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let team = app.create_team("Acme").await;
    let key = shipwatch_tests::test_keys::TestKey::generate();
    asc.register_key(&key);
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/keys",
            &json!({"private_key": key.pem, "key_id": key.key_id.as_str(),
                "issuer_id": key.issuer_id.as_str(), "name": "CI"}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    app.wait_for_key(&team.token, &id, |k| k["status"] == "valid")
        .await;

    let validate = format!("/v1/keys/{id}/validate");
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..40 {
        let (status, body) = app.post_json(&team.token, &validate, &json!({})).await;
        match status {
            202 => accepted += 1,
            _ => {
                refused = Some((status, body));
                break;
            }
        }
    }
    assert_eq!(accepted, 5, "five re-validations per key in five minutes");
    let refused = refused.expect("the flood is refused");
    assert_error(refused, 429, "rate_limited");
    let retry_after = app.retry_after(&team.token, &validate).await;
    assert!(
        retry_after.is_some_and(|s| (1..=300).contains(&s)),
        "{retry_after:?}"
    );
    let asked = asc.requests_for(&key.key_id);
    assert!(
        asked <= 2 + 5 * 2,
        "App Store Connect was asked {asked} times"
    );

    let (status, destination) = app
        .post_json(
            &team.token,
            "/v1/destinations",
            &json!({"type": "slack", "name": "chat", "url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(status, 201, "{destination}");
    let test = format!(
        "/v1/destinations/{}/test",
        destination["id"].as_str().unwrap_or_default()
    );
    let mut sent = 0;
    let mut last = (0, Value::Null);
    for _ in 0..20 {
        last = app.post_json(&team.token, &test, &json!({})).await;
        if last.0 == 429 {
            break;
        }
        sent += 1;
    }
    assert_eq!(sent, 5, "five test messages per destination a minute");
    assert_error(last, 429, "rate_limited");
}

async fn monitored_apps_come_in_pages_without_duplicates_or_gaps(backend: Backend) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let team = app.create_team("Acme").await;
    let team_id = shipwatch_service::model::TeamId(team.id.clone());
    let mut expected = Vec::new();
    for k in 0..2u64 {
        let key = shipwatch_tests::test_keys::TestKey::generate();
        asc.register_key(&key);
        for a in 0..3u64 {
            let id = (6_490_000_000 + k * 10 + a).to_string();
            asc.add_app(
                &key.issuer_id,
                shipwatch_tests::fake_asc::FakeApp::new(&id, &format!("App {id}"), "com.example.p"),
            );
            expected.push(id);
        }
        key.seed_valid(&app.services.stores, &team_id, "paged", chrono::Utc::now())
            .await;
    }
    app.services.sweeper.run().await;

    let mut seen = Vec::new();
    let mut path = "/v1/apps?limit=4".to_owned();
    for _ in 0..5 {
        let (status, page) = app.get(&team.token, &path).await;
        assert_eq!(status, 200, "{page}");
        let apps = page["apps"].as_array().cloned().unwrap_or_default();
        assert!(apps.len() <= 4, "{page}");
        seen.extend(
            apps.iter()
                .filter_map(|a| a["id"].as_str().map(str::to_owned)),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/apps?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "every app once");
    let (_, all) = app.get(&team.token, "/v1/apps").await;
    assert_eq!(all["apps"].as_array().map(Vec::len), Some(6));
    assert_eq!(all["next_cursor"], Value::Null);

    for bad in [
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=nonsense!",
        "limit=1&limit=2",
    ] {
        let answer = app.get(&team.token, &format!("/v1/apps?{bad}")).await;
        assert_error(answer, 400, "invalid_request");
    }
}
