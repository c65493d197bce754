//! Push through the HTTP API, wired as `shipwatch-local` wires it, on both stores: a key uploaded
//! with `SHIPWATCH_PUBLIC_URL` set gets its webhooks after validation and `GET /v1/keys/{id}`
//! shows `push`; a Developer key shows `unavailable` with the roles that enable push; without
//! the setting `off`; `POST /v1/keys/{id}/validate` repairs a webhook deleted behind our back;
//! `DELETE /v1/keys/{id}` deletes the key's webhooks (not others') and their secrets. The
//! dashboard's `/keys` and `/keys/{id}` show the same push status in words.

use std::sync::Arc;

use serde_json::{Value, json};
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, TestTeam, fresh_stores};
use shipwatch_tests::dashboard_http::DashboardMember;
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeRole};
use shipwatch_tests::test_keys::TestKey;

shipwatch_tests::on_both_stores!(
    an_admin_key_gets_webhooks_and_shows_push_active_until_deleted,
    a_developer_key_shows_push_unavailable,
    without_a_public_url_keys_show_push_off,
);

const PUBLIC_URL: &str = "https://shipwatch.example.com";
const APP: &str = "6450000001";

async fn setup(
    backend: Backend,
    role: FakeRole,
    public_url: Option<&str>,
) -> (FakeAsc, TestApp, TestTeam, TestKey, DashboardMember) {
    let asc = FakeAsc::start().await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.set_role(&key.key_id, role);
    asc.add_app(&key.issuer_id, FakeApp::new(APP, "App", "com.example.app"));
    let dir = tempfile::tempdir().unwrap();
    let stores = fresh_stores(backend, dir.path()).await;
    let mut environment = vec![("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "1")];
    if let Some(url) = public_url {
        environment.push(("SHIPWATCH_PUBLIC_URL", url));
    }
    let app = TestApp::start_with_settings(
        backend,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &environment,
    )
    .await;
    let (team, member) = DashboardMember::new_team(&app, "Acme", "ana").await;
    let team = TestTeam {
        id: team["id"].as_str().expect("team id").to_owned(),
        token: team["token"].as_str().expect("team token").to_owned(),
    };
    (asc, app, team, key, member)
}

/// The push status as the dashboard shows it: the label on `/keys` and on the key's page, and
/// the key page's sentence.
async fn dashboard_push(member: &DashboardMember, key_id: &str) -> (String, String) {
    let (status, list) = member.page("/keys").await;
    assert_eq!(status, 200, "{list}");
    let (status, page) = member.page(&format!("/keys/{key_id}")).await;
    assert_eq!(status, 200, "{page}");
    let label = text_of(&page, "id=\"push-status\"").expect("a push status on the key page");
    assert!(
        list.contains(&format!(">{label}</span>")),
        "the list shows {label}: {list}"
    );
    let sentence = text_of(&page, "id=\"push-message\"").unwrap_or_default();
    (label, sentence)
}

/// The text of the element whose opening tag holds `marker`.
fn text_of(page: &str, marker: &str) -> Option<String> {
    let at = page.find(marker)?;
    let start = page[at..].find('>')? + at + 1;
    let end = page[start..].find('<')? + start;
    Some(page[start..end].to_owned())
}

async fn upload_and_settle(app: &TestApp, team: &TestTeam, key: &TestKey) -> Value {
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/keys",
            &json!({
                "private_key": key.pem,
                "issuer_id": key.issuer_id.as_str(),
                "key_id": key.key_id.as_str(),
                "name": "CI key",
            }),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    app.wait_for_key(&team.token, &id, |k| {
        k["status"] == "valid" && (k["push"] == "active" || k["push_message"].is_string())
    })
    .await
}

async fn an_admin_key_gets_webhooks_and_shows_push_active_until_deleted(backend: Backend) {
    let (asc, app, team, key, member) = setup(backend, FakeRole::Admin, Some(PUBLIC_URL)).await;
    let foreign = asc.add_foreign_webhook(APP, "https://other.example.com/hook");
    let view = upload_and_settle(&app, &team, &key).await;
    assert_eq!(view["push"], "active", "{view}");
    assert!(view["push_message"].is_null());
    let id = view["id"].as_str().unwrap().to_owned();
    let hooks = asc.webhooks_of(APP);
    assert_eq!(hooks.len(), 2);
    let ours = hooks.iter().find(|w| w.id != foreign).unwrap().clone();
    assert!(
        ours.url
            .starts_with(&format!("{PUBLIC_URL}/v1/push/apple/{id}/"))
    );
    // No webhook secret in any answer.
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert!(!list.to_string().contains(&ours.secret));
    assert!(!view.to_string().contains(&ours.secret));
    let (label, sentence) = dashboard_push(&member, &id).await;
    assert_eq!(label, "Active");
    assert!(sentence.contains("1 app(s) within seconds"), "{sentence}");
    let (_, page) = member.page(&format!("/keys/{id}")).await;
    assert!(
        !page.contains(&ours.secret),
        "a webhook secret on the key page"
    );

    // Deleted behind our back; validating again repairs it.
    asc.remove_webhook(&ours.id);
    let (status, _) = app
        .post_json(&team.token, &format!("/v1/keys/{id}/validate"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while asc.webhooks_of(APP).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "never repaired");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // The repair is recorded on the key (a later check time) after Apple has the webhook.
    let settled = app
        .wait_for_key(&team.token, &id, |k| {
            k["status"] == "valid"
                && k["push"] == "active"
                && k["push_checked_at"] != view["push_checked_at"]
        })
        .await;
    assert_eq!(settled["push"], "active");

    let (status, _) = app.delete(&team.token, &format!("/v1/keys/{id}")).await;
    assert_eq!(status, 204);
    let left: Vec<String> = asc.webhooks_of(APP).into_iter().map(|w| w.id).collect();
    assert_eq!(left, vec![foreign], "ours deleted, others' kept");
    assert_eq!(
        app.count_team_secrets(&team.id).await,
        0,
        "no orphan secret"
    );
    // Webhook secrets never reach the logs.
    let logs = shipwatch_tests::logs::captured();
    assert!(!logs.contains(&ours.secret), "a webhook secret was logged");
}

async fn a_developer_key_shows_push_unavailable(backend: Backend) {
    let (asc, app, team, key, member) = setup(backend, FakeRole::Developer, Some(PUBLIC_URL)).await;
    let view = upload_and_settle(&app, &team, &key).await;
    assert_eq!(view["status"], "valid");
    assert_eq!(view["push"], "unavailable", "{view}");
    let message = view["push_message"].as_str().unwrap();
    assert!(
        message.contains("Admin") && message.contains("App Manager"),
        "{message}"
    );
    assert!(asc.webhooks_of(APP).is_empty());
    let (label, sentence) = dashboard_push(&member, view["id"].as_str().unwrap()).await;
    assert_eq!(label, "Unavailable");
    assert!(sentence.contains("App Manager"), "{sentence}");
}

async fn without_a_public_url_keys_show_push_off(backend: Backend) {
    let (asc, app, team, key, member) = setup(backend, FakeRole::Admin, None).await;
    let view = upload_and_settle(&app, &team, &key).await;
    assert_eq!(view["push"], "off", "{view}");
    assert!(
        view["push_message"]
            .as_str()
            .unwrap()
            .contains("SHIPWATCH_PUBLIC_URL")
    );
    assert!(asc.webhooks_of(APP).is_empty());
    let (label, sentence) = dashboard_push(&member, view["id"].as_str().unwrap()).await;
    assert_eq!(label, "Off");
    assert!(sentence.contains("SHIPWATCH_PUBLIC_URL"), "{sentence}");
}
