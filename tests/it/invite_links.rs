//! Invite links from `POST /v1/teams`: under `SHIPWATCH_PUBLIC_URL` when it is set (a client's
//! Host header does not choose them), else on the host the request came to; either way the token
//! in the link opens the invite page.

use std::sync::Arc;

use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, fresh_stores};

const PUBLIC_URL: &str = "https://shipwatch.example.com";

async fn app_with(environment: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = fresh_stores(Backend::Embedded, dir.path()).await;
    TestApp::start_with_settings(
        Backend::Embedded,
        stores,
        "http://127.0.0.1:9",
        dir,
        Arc::new(SystemClock),
        environment,
    )
    .await
}

async fn create_team_with_host(app: &TestApp, host: &str) -> String {
    let response = app
        .http
        .post(format!("{}/v1/teams", app.base_url))
        .bearer_auth(&app.admin_token)
        .header("host", host)
        .json(&serde_json::json!({ "name": "Acme" }))
        .send()
        .await
        .expect("POST /v1/teams");
    assert_eq!(response.status(), 201);
    let team: serde_json::Value = response.json().await.expect("JSON");
    team["invite_url"].as_str().expect("invite_url").to_owned()
}

async fn invite_page_status(app: &TestApp, invite_url: &str) -> u16 {
    let path = &invite_url[invite_url.find("/invite/").expect("an invite path")..];
    app.http
        .get(format!("{}{path}", app.base_url))
        .send()
        .await
        .expect("GET invite")
        .status()
        .as_u16()
}

#[tokio::test]
async fn with_a_public_url_invite_links_start_with_it_whatever_the_host_header() {
    let app = app_with(&[("SHIPWATCH_PUBLIC_URL", PUBLIC_URL)]).await;
    let invite_url = create_team_with_host(&app, "attacker.example.net").await;
    assert!(
        invite_url.starts_with(&format!("{PUBLIC_URL}/invite/")),
        "{invite_url}"
    );
    assert_eq!(invite_page_status(&app, &invite_url).await, 200);
}

#[tokio::test]
async fn without_a_public_url_invite_links_use_the_request_host() {
    let app = app_with(&[]).await;
    let invite_url = create_team_with_host(&app, "dashboard.internal:8080").await;
    assert!(
        invite_url.starts_with("http://dashboard.internal:8080/invite/"),
        "{invite_url}"
    );
    assert_eq!(invite_page_status(&app, &invite_url).await, 200);
}
