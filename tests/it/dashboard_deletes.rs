//! The Delete buttons of `/destinations` and `/workflows` (plain forms with the CSRF token), over
//! HTTP on both stores: a POST without the token is refused (403), another team's id is a 404 page,
//! neither deleting anything; a workflow is deleted alone; a destination is deleted with the
//! workflows that send to it, as `DELETE /v1/destinations/{id}` does, and the page names them.
//! Also a destination's last outcome on `/destinations`, kept after a reload, and the event-type
//! filter of `/history` in words.

use serde_json::{Value, json};
use shipwatch_tests::app::{Backend, TestApp};
use shipwatch_tests::dashboard_http::DashboardMember;
use shipwatch_tests::fake_asc::FakeAsc;
use shipwatch_tests::receiver::Receiver;

shipwatch_tests::on_both_stores!(
    destinations_and_workflows_are_deleted_from_their_pages,
    a_test_sends_outcome_stays_on_the_destinations_page,
    the_history_filter_and_the_workflow_form_name_event_types_in_words,
);

async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let (status, created) = app.post_json(token, path, &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

async fn destination(app: &TestApp, token: &str, receiver: &Receiver, name: &str) -> String {
    let url = format!("{}/hook/{}", receiver.url(), uuid::Uuid::new_v4().simple());
    let body = json!({"type": "webhook", "name": name, "url": url});
    create(app, token, "/v1/destinations", body).await
}

async fn workflow(app: &TestApp, token: &str, destination: &str, name: &str) -> String {
    let body = json!({"name": name, "destination_id": destination,
        "app_ids": ["*"], "event_types": ["*"]});
    create(app, token, "/v1/workflows", body).await
}

async fn exists(app: &TestApp, token: &str, path: &str) -> bool {
    let (status, _) = app.get(token, path).await;
    assert!(status == 200 || status == 404, "{path}: {status}");
    status == 200
}

async fn destinations_and_workflows_are_deleted_from_their_pages(backend: Backend) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let receiver = Receiver::start().await.expect("receiver");
    let (team, ana) = DashboardMember::new_team(&app, "Acme", "Ana").await;
    let token = team["token"].as_str().expect("token").to_owned();
    let (_, bo) = DashboardMember::new_team(&app, "Other", "Bo").await;
    let releases = destination(&app, &token, &receiver, "releases").await;
    let builds = destination(&app, &token, &receiver, "builds").await;
    let to_releases = [
        workflow(&app, &token, &releases, "Versions").await,
        workflow(&app, &token, &releases, "Reviews").await,
    ];
    let nightly = workflow(&app, &token, &builds, "Nightly").await;
    let (csrf, bo_csrf) = (ana.csrf().await, bo.csrf().await);

    let (_, page) = ana.page("/destinations").await;
    assert!(page.contains(&format!("action=\"/destinations/{releases}/delete\"")));
    let (_, page) = ana.page("/workflows").await;
    assert!(page.contains(&format!("action=\"/workflows/{nightly}/delete\"")));

    // Refused without the CSRF token, and a 404 page for another team; nothing deleted.
    for path in [
        format!("/destinations/{releases}/delete"),
        format!("/workflows/{nightly}/delete"),
    ] {
        assert_eq!(ana.post(&path, "").await.0, 403, "{path}");
        let (status, page) = bo.post(&path, &format!("csrf={bo_csrf}")).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("Page not found"));
    }
    assert!(exists(&app, &token, &format!("/v1/destinations/{releases}")).await);
    assert!(exists(&app, &token, &format!("/v1/workflows/{nightly}")).await);

    // A workflow goes alone; its destination stays.
    let (status, page) = ana
        .post(
            &format!("/workflows/{nightly}/delete"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Workflow <strong>Nightly</strong> deleted."),
        "{page}"
    );
    assert!(!exists(&app, &token, &format!("/v1/workflows/{nightly}")).await);
    assert!(exists(&app, &token, &format!("/v1/destinations/{builds}")).await);

    // A destination goes with the workflows that send to it, named on the page.
    let (status, page) = ana
        .post(
            &format!("/destinations/{releases}/delete"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Destination <strong>releases</strong> deleted.")
            && page.contains("used by 2 workflows")
            && page.contains("Versions")
            && page.contains("Reviews"),
        "{page}"
    );
    assert!(!exists(&app, &token, &format!("/v1/destinations/{releases}")).await);
    for id in &to_releases {
        assert!(!exists(&app, &token, &format!("/v1/workflows/{id}")).await);
    }
    assert!(exists(&app, &token, &format!("/v1/destinations/{builds}")).await);
    let (_, page) = ana.page("/destinations").await;
    assert!(!page.contains(&releases) && page.contains(&builds));
    // Deleting it again: the 404 page.
    let (status, _) = ana
        .post(
            &format!("/destinations/{releases}/delete"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(status, 404);
}

async fn a_test_sends_outcome_stays_on_the_destinations_page(backend: Backend) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let receiver = Receiver::start().await.expect("receiver");
    let (team, ana) = DashboardMember::new_team(&app, "Acme", "Ana").await;
    let token = team["token"].as_str().expect("token").to_owned();
    let hook = destination(&app, &token, &receiver, "releases").await;
    let csrf = ana.csrf().await;
    let (_, page) = ana.page("/destinations").await;
    assert!(page.contains("No message sent yet"));

    receiver.fail_next(1, 503);
    let (status, _) = ana
        .post(
            &format!("/destinations/{hook}/test"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = ana.page("/destinations").await;
    assert!(
        page.contains("Failed: the destination answered HTTP 503"),
        "{page}"
    );
    assert!(!page.contains("/hook/"), "the URL path on the page");

    let (status, _) = ana
        .post(
            &format!("/destinations/{hook}/test"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = ana.page("/destinations").await;
    assert!(
        page.contains("Delivered (HTTP 200)") && !page.contains("HTTP 503"),
        "{page}"
    );
    let (_, listed) = app.get(&token, "/v1/destinations").await;
    let outcome = &listed["destinations"][0]["last_outcome"];
    assert_eq!(outcome["status"], "delivered", "{outcome}");
    assert_eq!(outcome["http_status"], 200);
}

async fn the_history_filter_and_the_workflow_form_name_event_types_in_words(backend: Backend) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let (team, ana) = DashboardMember::new_team(&app, "Acme", "Ana").await;
    let token = team["token"].as_str().expect("token").to_owned();
    let receiver = Receiver::start().await.expect("receiver");
    let hook = destination(&app, &token, &receiver, "Hook").await;
    workflow(&app, &token, &hook, "Everything").await;
    let (status, page) = ana
        .page("/history?type=shipwatch.build.processing_state_changed")
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains(
            "<option value=\"shipwatch.app_version.state_changed\">App version state changed</option>"
        ),
        "{page}"
    );
    assert!(page.contains(
        "<option value=\"shipwatch.build.processing_state_changed\" selected>Build processing state changed</option>"
    ));
    assert!(!page.contains(">shipwatch.app_version.state_changed<"));
    let (status, page) = ana.page("/workflows").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(
            "value=\"shipwatch.app_version.state_changed\"> App version state changed <small><code>shipwatch.app_version.state_changed</code></small>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<td data-label=\"Events\">All event types</td>"),
        "{page}"
    );
}
