//! Key lifecycle end to end through the HTTP API (docs/openapi.yaml), on both store adapters:
//! uploads (JSON and multipart), every validation outcome, every 4xx code, tenant isolation,
//! deletion, half-way failures, and no key material in any response or log line.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shipwatch_service::model::{KeyRecordId, SecretName, TeamId};
use shipwatch_shared::clock::{Clock, ManualClock, SystemClock};
use shipwatch_tests::app::{Backend, TestApp, TestTeam, fresh_stores, read};
use shipwatch_tests::fake_asc::{Failure, FakeApp, FakeAsc};
use shipwatch_tests::faults::{Faults, with_faults};
use shipwatch_tests::test_keys::{self, TestKey};

shipwatch_tests::on_both_stores!(
    json_upload_is_validated_and_listed,
    multipart_upload_takes_the_key_id_from_the_file_name,
    every_rejected_upload_names_its_reason_and_stores_nothing,
    validation_outcomes_follow_the_contract,
    asc_outage_keeps_validating_then_recovers,
    revalidation_and_deletion,
    teams_cannot_see_each_others_keys,
    failure_half_way_leaves_nothing_behind,
);

async fn setup(backend: Backend) -> (FakeAsc, TestApp, TestTeam) {
    let asc = FakeAsc::start().await;
    let app = TestApp::start(backend, &asc.base_url()).await;
    let team = app.create_team("Acme").await;
    (asc, app, team)
}

fn json_upload(key: &TestKey, name: &str) -> Value {
    json!({
        "private_key": key.pem,
        "issuer_id": key.issuer_id.as_str(),
        "key_id": key.key_id.as_str(),
        "name": name,
    })
}

async fn upload(app: &TestApp, team: &TestTeam, key: &TestKey) -> (u16, Value) {
    app.post_json(&team.token, "/v1/keys", &json_upload(key, "CI key"))
        .await
}

/// No part of the private key may appear in `text`.
fn assert_no_key_material(key: &TestKey, text: &str) {
    for line in key.pem_body_lines() {
        assert!(!text.contains(&line), "a line of the PEM leaked");
    }
    for encoding in key.scalar_encodings() {
        assert!(!text.contains(&encoding), "the private scalar leaked");
    }
}

fn is_settled(key: &Value) -> bool {
    key["status"] != "validating" || key["status_code"] == "asc_unavailable"
}

async fn json_upload_is_validated_and_listed(backend: Backend) {
    let (asc, app, team) = setup(backend).await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.add_app(
        &key.issuer_id,
        FakeApp::new("1000000001", "Hello", "com.example.hello"),
    );
    asc.add_app(
        &key.issuer_id,
        FakeApp::new("1000000002", "World", "com.example.world"),
    );

    let (status, created) = upload(&app, &team, &key).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["status"], "validating");
    assert_eq!(created["key_id"], key.key_id.as_str());
    assert_eq!(created["issuer_id"], key.issuer_id.as_str());
    assert_eq!(created["name"], "CI key");
    assert_eq!(
        created["public_key_fingerprint"],
        key.expected_fingerprint()
    );
    assert!(created["created_at"].is_string());
    assert_no_key_material(&key, &created.to_string());
    let id = created["id"].as_str().unwrap().to_owned();

    let validated = app.wait_for_key(&team.token, &id, is_settled).await;
    assert_eq!(validated["status"], "valid", "{validated}");
    assert_eq!(validated["status_code"], Value::Null);
    assert_eq!(validated["apps_count"], 2);
    assert!(validated["validated_at"].is_string());

    let (status, list) = app.get(&team.token, "/v1/keys").await;
    assert_eq!(status, 200);
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], id.as_str());
    assert_no_key_material(&key, &list.to_string());
    // The private key sits in the secret store, byte-identical PEM content, and nowhere in the record.
    let secret = app
        .services
        .stores
        .secrets
        .get_secret(&SecretName::for_key(
            &TeamId(team.id.clone()),
            &KeyRecordId(id.clone()),
        ))
        .await
        .unwrap()
        .expect("secret stored");
    assert_eq!(secret.expose().trim(), key.pem.trim());
    let record = app
        .services
        .stores
        .keys
        .get_key_by_id(&KeyRecordId(id))
        .await
        .unwrap()
        .unwrap();
    assert_no_key_material(&key, &format!("{record:?}"));
    assert_no_key_material(&key, &serde_json::to_string(&record).unwrap());
    assert_no_key_material(&key, &shipwatch_tests::logs::captured());
}

fn multipart(
    key: &TestKey,
    file_name: &str,
    key_id_field: Option<&str>,
) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::bytes(key.pem.clone().into_bytes())
        .file_name(file_name.to_owned())
        .mime_str("application/octet-stream")
        .unwrap();
    let mut form = reqwest::multipart::Form::new()
        .part("private_key", part)
        .text("issuer_id", key.issuer_id.to_string())
        .text("name", "Uploaded file");
    if let Some(id) = key_id_field {
        form = form.text("key_id", id.to_owned());
    }
    form
}

async fn post_multipart(
    app: &TestApp,
    team: &TestTeam,
    form: reqwest::multipart::Form,
) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/v1/keys"))
        .bearer_auth(&team.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn multipart_upload_takes_the_key_id_from_the_file_name(backend: Backend) {
    let (asc, app, team) = setup(backend).await;
    let key = TestKey::generate();
    asc.register_key(&key);
    let file = format!("AuthKey_{}.p8", key.key_id);

    let (status, created) = post_multipart(&app, &team, multipart(&key, &file, None)).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["key_id"], key.key_id.as_str());
    assert_eq!(created["name"], "Uploaded file");
    let validated = app
        .wait_for_key(&team.token, created["id"].as_str().unwrap(), is_settled)
        .await;
    assert_eq!(validated["status"], "valid", "{validated}");

    // The same file with a key_id that agrees is fine too (for another team, to avoid key_exists).
    let other_team = app.create_team("Other").await;
    let (status, _) = post_multipart(
        &app,
        &other_team,
        multipart(&key, &file, Some(key.key_id.as_str())),
    )
    .await;
    assert_eq!(status, 202);
}

async fn assert_error(response: (u16, Value), status: u16, code: &str) {
    let (actual_status, body) = response;
    assert_eq!(actual_status, status, "{code}: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.len() > 10,
        "{code} needs a message that says what to do: {body}"
    );
}

async fn every_rejected_upload_names_its_reason_and_stores_nothing(backend: Backend) {
    let (asc, app, team) = setup(backend).await;
    let key = TestKey::generate();
    asc.register_key(&key);
    let with = |field: &str, value: Value| {
        let mut body = json_upload(&key, "k");
        body[field] = value;
        body
    };
    let post = |body: Value| {
        let app = &app;
        let team = &team;
        async move { app.post_json(&team.token, "/v1/keys", &body).await }
    };

    for bad_pem in [
        key.sec1_pem(),
        test_keys::rsa_pkcs8_pem(),
        test_keys::rsa_pkcs1_pem(),
        test_keys::p384_pkcs8_pem(),
        test_keys::encrypted_pkcs8_pem(),
        test_keys::certificate_pem(),
        String::from_utf8_lossy(&test_keys::binary_garbage()).into_owned(),
        String::new(),
    ] {
        assert_error(
            post(with("private_key", json!(bad_pem))).await,
            400,
            "invalid_private_key",
        )
        .await;
    }
    let mut missing_key = json_upload(&key, "k");
    missing_key.as_object_mut().unwrap().remove("private_key");
    assert_error(post(missing_key).await, 400, "invalid_private_key").await;
    for bad_key_id in ["abcde12345", "ABCDE1234", "ABCDE123456", "ABCDE-1234", ""] {
        assert_error(
            post(with("key_id", json!(bad_key_id))).await,
            400,
            "invalid_key_id",
        )
        .await;
    }
    for bad_issuer in ["not-a-uuid", "57246542-96fe-1a63-e053-0824d011072", ""] {
        assert_error(
            post(with("issuer_id", json!(bad_issuer))).await,
            400,
            "invalid_issuer_id",
        )
        .await;
    }
    let wrong_file = multipart(&key, "AuthKey_ZZZZZ99999.p8", Some(key.key_id.as_str()));
    assert_error(
        post_multipart(&app, &team, wrong_file).await,
        400,
        "key_id_mismatch",
    )
    .await;
    let no_key_id = multipart(&key, "key.p8", None);
    assert_error(
        post_multipart(&app, &team, no_key_id).await,
        400,
        "invalid_key_id",
    )
    .await;

    let huge = with("name", json!("x".repeat(70 * 1024)));
    assert_error(post(huge).await, 413, "payload_too_large").await;
    let response = app
        .http
        .post(app.url("/v1/keys"))
        .bearer_auth(&team.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(read(response).await, 400, "invalid_request").await;

    // Nothing was stored by any of those.
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert_eq!(list["keys"], json!([]));

    // Auth: none, or a wrong token.
    let response = app.http.get(app.url("/v1/keys")).send().await.unwrap();
    assert_error(read(response).await, 401, "unauthorized").await;
    assert_error(app.get("swt_wrong", "/v1/keys").await, 401, "unauthorized").await;
    assert_error(
        app.post_json(&team.token, "/v1/teams", &json!({"name": "x"}))
            .await,
        401,
        "unauthorized",
    )
    .await;

    // key_exists: the same key_id twice in one team.
    let (status, _) = upload(&app, &team, &key).await;
    assert_eq!(status, 202);
    assert_error(upload(&app, &team, &key).await, 409, "key_exists").await;
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert_no_key_material(&key, &shipwatch_tests::logs::captured());
}

async fn validation_outcomes_follow_the_contract(backend: Backend) {
    let (asc, app, team) = setup(backend).await;
    let cases = [
        (
            Failure::Unauthorized,
            "invalid",
            "not_authorized",
            "revoked",
        ),
        (
            Failure::ForbiddenBuilds,
            "invalid",
            "insufficient_role",
            "App Manager",
        ),
        (
            Failure::AgreementsMissing,
            "action_required",
            "agreements_required",
            "agreements",
        ),
    ];
    for (failure, status, code, hint) in cases {
        let key = TestKey::generate();
        asc.register_key(&key);
        asc.set_failure(&key.key_id, failure);
        let (created_status, created) = upload(&app, &team, &key).await;
        assert_eq!(created_status, 202);
        let settled = app
            .wait_for_key(&team.token, created["id"].as_str().unwrap(), is_settled)
            .await;
        assert_eq!(settled["status"], status, "{settled}");
        assert_eq!(settled["status_code"], code, "{settled}");
        let message = settled["status_message"].as_str().unwrap();
        assert!(
            message.contains(hint),
            "{code}: message should say what to do: {message}"
        );
    }
    // An insufficient-role message names every role that works.
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    let role_message = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status_code"] == "insufficient_role")
        .unwrap()["status_message"]
        .as_str()
        .unwrap()
        .to_owned();
    for role in ["Developer", "App Manager", "Admin"] {
        assert!(role_message.contains(role), "{role_message}");
    }
}

async fn asc_outage_keeps_validating_then_recovers(backend: Backend) {
    // One clock for shipwatch and the fake Apple, so token lifetimes stay consistent as it advances.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let asc = FakeAsc::start_with_clock(clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let stores = fresh_stores(backend, dir.path()).await;
    let app = TestApp::start_with(backend, stores, &asc.base_url(), dir, clock.clone()).await;
    let team = app.create_team("Acme").await;

    for failure in [
        Failure::ServerError,
        Failure::RateLimited {
            retry_after: Some(Duration::from_secs(120)),
        },
    ] {
        let key = TestKey::generate();
        asc.register_key(&key);
        asc.set_failure(&key.key_id, failure);
        let (_, created) = upload(&app, &team, &key).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let waiting = app.wait_for_key(&team.token, &id, is_settled).await;
        assert_eq!(waiting["status"], "validating", "{waiting}");
        assert_eq!(waiting["status_code"], "asc_unavailable");
        assert!(waiting["next_validation_at"].is_string(), "{waiting}");

        // Not due yet: nothing happens.
        app.services.validator.validate_due().await.unwrap();
        let (_, still) = app.get(&team.token, &format!("/v1/keys/{id}")).await;
        assert_eq!(still["status_code"], "asc_unavailable");

        // Apple recovers and the retry time passes: the next round validates it.
        asc.clear_failure(&key.key_id);
        clock.advance(Duration::from_secs(180));
        app.services.validator.validate_due().await.unwrap();
        let (_, recovered) = app.get(&team.token, &format!("/v1/keys/{id}")).await;
        assert_eq!(recovered["status"], "valid", "{recovered}");
        assert_eq!(recovered["status_code"], Value::Null);
    }
}

async fn revalidation_and_deletion(backend: Backend) {
    let (asc, app, team) = setup(backend).await;
    let key = TestKey::generate();
    asc.register_key(&key);
    let (_, created) = upload(&app, &team, &key).await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.wait_for_key(&team.token, &id, |k| k["status"] == "valid")
        .await;

    // The key gets revoked at Apple; validating again notices.
    asc.set_failure(&key.key_id, Failure::Unauthorized);
    let (status, again) = app
        .post_json(&team.token, &format!("/v1/keys/{id}/validate"), &json!({}))
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["status"], "validating");
    let revoked = app
        .wait_for_key(&team.token, &id, |k| k["status"] == "invalid")
        .await;
    assert_eq!(revoked["status_code"], "not_authorized");

    let (status, _) = app.delete(&team.token, &format!("/v1/keys/{id}")).await;
    assert_eq!(status, 204);
    let (status, body) = app.get(&team.token, &format!("/v1/keys/{id}")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let secret_name = SecretName::for_key(&TeamId(team.id.clone()), &KeyRecordId(id.clone()));
    assert!(
        app.services
            .stores
            .secrets
            .get_secret(&secret_name)
            .await
            .unwrap()
            .is_none()
    );
    let (status, _) = app.delete(&team.token, &format!("/v1/keys/{id}")).await;
    assert_eq!(status, 404);

    // The same key can be uploaded again after deletion.
    asc.clear_failure(&key.key_id);
    let (status, _) = upload(&app, &team, &key).await;
    assert_eq!(status, 202);
}

async fn teams_cannot_see_each_others_keys(backend: Backend) {
    let (asc, app, team_a) = setup(backend).await;
    let team_b = app.create_team("Beta").await;
    let key = TestKey::generate();
    asc.register_key(&key);
    let (_, created) = upload(&app, &team_a, &key).await;
    let path = format!("/v1/keys/{}", created["id"].as_str().unwrap());

    assert_eq!(app.get(&team_b.token, &path).await.0, 404);
    assert_eq!(
        app.post_json(&team_b.token, &format!("{path}/validate"), &json!({}))
            .await
            .0,
        404
    );
    assert_eq!(app.delete(&team_b.token, &path).await.0, 404);
    let (_, list_b) = app.get(&team_b.token, "/v1/keys").await;
    assert_eq!(list_b["keys"], json!([]));
    // Team B may hold the same Apple key id on its own: uniqueness is per team.
    assert_eq!(upload(&app, &team_b, &key).await.0, 202);
    assert_eq!(app.get(&team_a.token, &path).await.0, 200);
}

async fn failure_half_way_leaves_nothing_behind(backend: Backend) {
    let asc = FakeAsc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (stores, faults) = with_faults(fresh_stores(backend, dir.path()).await);
    let app =
        TestApp::start_with(backend, stores, &asc.base_url(), dir, Arc::new(SystemClock)).await;
    let team = app.create_team("Acme").await;
    let key = TestKey::generate();
    asc.register_key(&key);

    let secrets_of_team = |app: &TestApp| {
        let stores = app.services.stores.clone();
        let team_id = TeamId(team.id.clone());
        async move {
            let mut found = 0;
            for record in stores.keys.list_keys(&team_id).await.unwrap() {
                if stores
                    .secrets
                    .get_secret(&record.secret_name())
                    .await
                    .unwrap()
                    .is_some()
                {
                    found += 1;
                }
            }
            found
        }
    };

    // The secret write fails: 503, nothing stored.
    Faults::set(&faults.secret_put, true);
    assert_error(upload(&app, &team, &key).await, 503, "store_unavailable").await;
    Faults::set(&faults.secret_put, false);
    assert_eq!(app.count_team_secrets(&team.id).await, 0);
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert_eq!(list["keys"], json!([]));

    // The secret is written but the record write fails: 503, and the secret is removed again.
    Faults::set(&faults.key_insert, true);
    assert_error(upload(&app, &team, &key).await, 503, "store_unavailable").await;
    Faults::set(&faults.key_insert, false);
    assert_eq!(
        app.count_team_secrets(&team.id).await,
        0,
        "no orphan secret"
    );
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert_eq!(list["keys"], json!([]));

    // A retry succeeds.
    let (status, created) = upload(&app, &team, &key).await;
    assert_eq!(status, 202);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(secrets_of_team(&app).await, 1);
    assert_eq!(app.count_team_secrets(&team.id).await, 1);

    // Deletion whose record step fails: the retry finishes it, and the secret is gone either way.
    Faults::set(&faults.key_delete, true);
    assert_error(
        app.delete(&team.token, &format!("/v1/keys/{id}")).await,
        503,
        "store_unavailable",
    )
    .await;
    Faults::set(&faults.key_delete, false);
    assert_eq!(app.count_team_secrets(&team.id).await, 0);
    assert_eq!(
        app.delete(&team.token, &format!("/v1/keys/{id}")).await.0,
        204
    );
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert_eq!(list["keys"], json!([]));
}
