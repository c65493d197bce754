//! Named API tokens on `/team`, over HTTP with the session cookie and CSRF token as a browser
//! sends them, on both stores: a nameless token refused with words next to the field, a POST
//! without its CSRF token refused (403) with nothing created, the value shown once and working on
//! the API like the team token, listed with its creator and last use, another team unable to
//! revoke it (404), and a revoked token answered 401 at once while the team token keeps working.

use shipwatch_tests::app::{Backend, TestApp};
use shipwatch_tests::dashboard_http::DashboardMember;
use shipwatch_tests::fake_asc::FakeAsc;

shipwatch_tests::on_both_stores!(api_tokens_are_created_shown_once_used_and_revoked);

async fn keys_status(app: &TestApp, token: &str) -> u16 {
    app.get(token, "/v1/keys").await.0
}

/// The id in the first `/team/tokens/{id}/revoke` form of a page.
fn revoke_id(page: &str) -> Option<String> {
    let start = page.find("/team/tokens/")? + "/team/tokens/".len();
    let end = page[start..].find("/revoke")? + start;
    Some(page[start..end].to_owned())
}

async fn api_tokens_are_created_shown_once_used_and_revoked(backend: Backend) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let (team, ana) = DashboardMember::new_team(&app, "Acme", "Ana").await;
    let team_token = team["token"].as_str().expect("team token").to_owned();
    let (_, bo) = DashboardMember::new_team(&app, "Other", "Bo").await;
    let csrf = ana.csrf().await;

    // Without the CSRF token: refused, nothing created.
    let (status, _) = ana.post("/team/tokens", "name=Forged").await;
    assert_eq!(status, 403);
    let (_, page) = ana.page("/team").await;
    assert!(page.contains("No API tokens yet") && !page.contains("Forged"));

    // A name is required: the words stand next to the field, nothing created.
    let (status, page) = ana
        .post("/team/tokens", &format!("name=+++&csrf={csrf}"))
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"name-error\""), "{page}");
    assert!(page.contains("Give the token a name"));
    assert!(page.contains("No API tokens yet"));

    let (status, page) = ana
        .post("/team/tokens", &format!("name=CI+script&csrf={csrf}"))
        .await;
    assert_eq!(status, 201);
    let marker = "id=\"api-token-value\">";
    let start = page.find(marker).expect("the value, shown once") + marker.len();
    let value = page[start..start + page[start..].find('<').expect("end")].to_owned();
    assert!(value.starts_with("swt_") && value.len() == 47, "{value}");

    // It works on the API like the team token, which keeps working too.
    assert_eq!(keys_status(&app, &value).await, 200);
    assert_eq!(keys_status(&app, &team_token).await, 200);

    // Listed with its creator and its last use; the value is on no later page.
    let (_, page) = ana.page("/team").await;
    assert!(
        page.contains("CI script") && page.contains("<td data-label=\"Created by\">Ana</td>"),
        "{page}"
    );
    assert!(!page.contains("never"), "the use is recorded: {page}");
    for path in [
        "/team",
        "/",
        "/keys",
        "/destinations",
        "/workflows",
        "/history",
    ] {
        let (status, page) = ana.page(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!page.contains(&value), "the token value on {path}");
    }
    assert!(
        !shipwatch_tests::logs::captured().contains(&value),
        "the token value in the logs"
    );
    let id = revoke_id(&page).expect("a revoke form");

    // Another team cannot revoke it; a revoke without CSRF is refused; it keeps working.
    let bo_csrf = bo.csrf().await;
    let (status, _) = bo
        .post(
            &format!("/team/tokens/{id}/revoke"),
            &format!("csrf={bo_csrf}"),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = ana.post(&format!("/team/tokens/{id}/revoke"), "").await;
    assert_eq!(status, 403);
    assert_eq!(keys_status(&app, &value).await, 200);

    let (status, page) = ana
        .post(
            &format!("/team/tokens/{id}/revoke"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("revoked") && !page.contains("CI script"));
    assert_eq!(keys_status(&app, &value).await, 401);
    assert_eq!(keys_status(&app, &team_token).await, 200);
}
