//! Google Play keys end to end through the HTTP API on both store adapters, against the fake
//! Google (`shipwatch_tests::fake_google_play`): uploads (JSON and multipart), every rejected
//! upload with its code and nothing stored, one access token per key reused, every validation
//! outcome of the contract, and no key material in answers or log lines.

use std::sync::Arc;

use serde_json::{Value, json};
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, TestTeam, fresh_stores, read};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeVersion};
use shipwatch_tests::fake_google_play::{
    EC_P256, FakeGooglePlay, KEY_A, KEY_A_PKCS1, KEY_B, PlayFault, PlayTestKey,
};
use shipwatch_tests::receiver::Receiver;
use shipwatch_tests::test_keys::TestKey;

shipwatch_tests::on_both_stores!(
    play_upload_is_validated_with_one_token_and_no_edit_left_open,
    play_multipart_upload_takes_repeated_and_comma_separated_package_names,
    every_rejected_play_upload_names_its_reason_and_stores_nothing,
    play_validation_outcomes_follow_the_contract,
    play_sweep_reports_each_release_transition_once,
    play_sweep_turns_a_revoked_grant_and_a_lost_permission_into_one_key_event_each,
    an_app_store_key_and_a_play_key_in_one_team_are_routed_by_one_workflow_and_listed,
);

const EMAIL_A: &str = "watcher@shipwatch-test.iam.gserviceaccount.com";
const EMAIL_B: &str = "other@shipwatch-test.iam.gserviceaccount.com";

struct Setup {
    google: FakeGooglePlay,
    _asc: FakeAsc,
    app: TestApp,
    team: TestTeam,
}

async fn setup(backend: Backend) -> Setup {
    let google = FakeGooglePlay::start().await;
    let asc = FakeAsc::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = fresh_stores(backend, dir.path()).await;
    let settings = google.settings();
    let mut environment: Vec<(&str, &str)> =
        settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The test receivers listen on loopback.
    environment.push(("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "1"));
    let app = TestApp::start_with_settings(
        backend,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &environment,
    )
    .await;
    let team = app.create_team("Acme").await;
    Setup {
        google,
        _asc: asc,
        app,
        team,
    }
}

fn upload_body(key: &PlayTestKey, email: &str, packages: Value) -> Value {
    json!({
        "platform": "google_play",
        "service_account": key.service_account_json(email),
        "package_names": packages,
        "name": "Android",
    })
}

fn assert_no_key_material(key: &PlayTestKey, text: &str) {
    for line in key.pem_body_lines() {
        assert!(!text.contains(&line), "a line of the private key leaked");
    }
    assert!(!text.contains("ya29.fake-"), "an access token leaked");
}

fn is_settled(key: &Value) -> bool {
    key["status"] != "validating" || key["status_code"] == "store_unavailable"
}

async fn assert_error(response: (u16, Value), status: u16, code: &str, mentions: &str) {
    let (actual_status, body) = response;
    assert_eq!(actual_status, status, "{code}: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "{code}: the message should name {mentions:?}: {body}"
    );
}

async fn play_upload_is_validated_with_one_token_and_no_edit_left_open(backend: Backend) {
    let Setup {
        google, app, team, ..
    } = setup(backend).await;
    google.add_service_account(EMAIL_A, &KEY_A);
    for package in ["com.example.hello", "com.example.world"] {
        google.add_app(package, "Hello");
        google.grant(package, EMAIL_A);
    }

    let body = upload_body(
        &KEY_A,
        EMAIL_A,
        json!(["com.example.hello", "com.example.world"]),
    );
    let (status, created) = app.post_json(&team.token, "/v1/keys", &body).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["platform"], "google_play");
    assert_eq!(created["client_email"], EMAIL_A);
    assert_eq!(
        created["package_names"],
        json!(["com.example.hello", "com.example.world"])
    );
    assert!(created.get("key_id").is_none(), "{created}");
    assert_eq!(created["status"], "validating");
    assert!(
        created["public_key_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert_no_key_material(&KEY_A, &created.to_string());
    let id = created["id"].as_str().unwrap().to_owned();

    let validated = app.wait_for_key(&team.token, &id, is_settled).await;
    assert_eq!(
        validated["status"],
        "valid",
        "{validated} {:?}",
        google.rejected_assertions()
    );
    assert_eq!(validated["apps_count"], 2);
    assert_eq!(google.count("POST", "/token"), 1);
    assert_eq!(google.count("POST", "/edits"), 2);
    assert_eq!(google.count("DELETE", "/edits/"), 2);
    assert_eq!(google.open_edits(), 0, "every edit is deleted again");

    // A second validation reuses the cached access token.
    let (status, _) = app
        .post_json(&team.token, &format!("/v1/keys/{id}/validate"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let again = app
        .wait_for_key(&team.token, &id, |k| {
            k["status"] == "valid" && k["validated_at"] != validated["validated_at"]
        })
        .await;
    assert_eq!(again["status"], "valid");
    assert_eq!(
        google.count("POST", "/token"),
        1,
        "one token per key, reused"
    );
    assert_eq!(google.count("POST", "/edits"), 4);

    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert_no_key_material(&KEY_A, &list.to_string());
    assert_no_key_material(&KEY_A, &shipwatch_tests::logs::captured());
}

async fn play_multipart_upload_takes_repeated_and_comma_separated_package_names(backend: Backend) {
    let Setup {
        google, app, team, ..
    } = setup(backend).await;
    google.add_service_account(EMAIL_A, &KEY_A);
    for package in ["com.example.a", "com.example.b", "com.example.c"] {
        google.add_app(package, "App");
        google.grant(package, EMAIL_A);
    }
    let file = reqwest::multipart::Part::bytes(
        KEY_A.service_account_json(EMAIL_A).to_string().into_bytes(),
    )
    .file_name("shipwatch-test-5f1c0a3b9d2e.json")
    .mime_str("application/json")
    .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("platform", "google_play")
        .part("service_account", file)
        .text("package_names", "com.example.a, com.example.b")
        .text("package_names", "com.example.c")
        .text("name", "Play");
    let response = app
        .http
        .post(app.url("/v1/keys"))
        .bearer_auth(&team.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, created) = read(response).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(
        created["package_names"],
        json!(["com.example.a", "com.example.b", "com.example.c"])
    );
    assert_eq!(created["name"], "Play");
    let validated = app
        .wait_for_key(&team.token, created["id"].as_str().unwrap(), is_settled)
        .await;
    assert_eq!(validated["status"], "valid", "{validated}");
    assert_eq!(validated["apps_count"], 3);
}

async fn every_rejected_play_upload_names_its_reason_and_stores_nothing(backend: Backend) {
    let Setup { app, team, .. } = setup(backend).await;
    let post = |body: Value| {
        let app = &app;
        let team = &team;
        async move { app.post_json(&team.token, "/v1/keys", &body).await }
    };
    let good = || upload_body(&KEY_A, EMAIL_A, json!(["com.example.app"]));
    let with_file = |file: Value| {
        let mut body = good();
        body["service_account"] = file;
        body
    };
    let file_with = |field: &str, value: Value| {
        let mut file = KEY_A.service_account_json(EMAIL_A);
        file[field] = value;
        file
    };
    let file_without = |field: &str| {
        let mut file = KEY_A.service_account_json(EMAIL_A);
        file.as_object_mut().unwrap().remove(field);
        file
    };

    let cases: Vec<(Value, &str)> = vec![
        (
            with_file(file_with("type", json!("authorized_user"))),
            "\"type\"",
        ),
        (with_file(file_without("type")), "\"type\""),
        (with_file(file_without("client_email")), "client_email"),
        (with_file(file_without("private_key")), "private_key"),
        (with_file(file_without("private_key_id")), "private_key_id"),
        (
            with_file(
                json!({"installed": {"client_id": "1.apps.googleusercontent.com", "client_secret": "x"}}),
            ),
            "OAuth client",
        ),
        (
            with_file(file_with("private_key", json!("not a pem"))),
            "PEM",
        ),
        (
            with_file(file_with("private_key", json!(KEY_A_PKCS1))),
            "PKCS#1",
        ),
        (
            with_file(file_with("private_key", json!(EC_P256))),
            "not an RSA key",
        ),
        (
            with_file(file_with("client_email", json!("nobody"))),
            "email",
        ),
        (with_file(json!("{not json")), "not JSON"),
        (with_file(json!("x".repeat(20 * 1024))), "larger than"),
        (
            {
                let mut body = good();
                body.as_object_mut().unwrap().remove("service_account");
                body
            },
            "service_account is required",
        ),
    ];
    for (body, mentions) in cases {
        assert_error(post(body).await, 400, "invalid_service_account", mentions).await;
    }
    // The file as text works the same as the object (here: one with a wrong type).
    let as_text = with_file(json!(file_with("type", json!("user")).to_string()));
    assert_error(
        post(as_text).await,
        400,
        "invalid_service_account",
        "\"type\"",
    )
    .await;

    for (packages, mentions) in [
        (json!(["com.1app"]), "com.1app"),
        (json!("com.example.app,app"), "\"app\""),
        (json!(["com.ex-ample.app"]), "com.ex-ample.app"),
        (json!([]), "package_names is required"),
        (json!(""), "package_names is required"),
        (json!([42]), "package_names must be"),
    ] {
        let mut body = good();
        body["package_names"] = packages;
        assert_error(post(body).await, 400, "invalid_package_name", mentions).await;
    }
    let mut unknown_platform = good();
    unknown_platform["platform"] = json!("windows_store");
    assert_error(
        post(unknown_platform).await,
        400,
        "invalid_request",
        "platform",
    )
    .await;

    // Over the body limit: 413 before anything is parsed.
    let mut huge = good();
    huge["name"] = json!("x".repeat(70 * 1024));
    assert_error(post(huge).await, 413, "payload_too_large", "").await;

    // Nothing stored by any of those: no record, no secret.
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert_eq!(list["keys"], json!([]));
    assert_eq!(app.count_team_secrets(&team.id).await, 0);

    // key_exists: the same client_email again (even with another key of the account).
    let (status, created) = post(good()).await;
    assert_eq!(status, 202, "{created}");
    assert_error(
        post(upload_body(&KEY_B, EMAIL_A, json!(["com.example.other"]))).await,
        409,
        "key_exists",
        EMAIL_A,
    )
    .await;
    let (_, list) = app.get(&team.token, "/v1/keys").await;
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert_eq!(app.count_team_secrets(&team.id).await, 1);
    // Another service account in the same team is fine.
    let (status, _) = post(upload_body(&KEY_B, EMAIL_B, json!(["com.example.app"]))).await;
    assert_eq!(status, 202);

    let logs = shipwatch_tests::logs::captured();
    assert_no_key_material(&KEY_A, &logs);
    assert_no_key_material(&KEY_B, &logs);
}

async fn play_validation_outcomes_follow_the_contract(backend: Backend) {
    let Setup {
        google, app, team, ..
    } = setup(backend).await;
    google.add_app("com.example.mine", "Mine");
    google.add_app("com.example.theirs", "Theirs");
    let accounts = [
        ("valid@p.iam.gserviceaccount.com", &KEY_A),
        ("revoked@p.iam.gserviceaccount.com", &KEY_B),
        ("noaccess@p.iam.gserviceaccount.com", &KEY_A),
        ("nopackage@p.iam.gserviceaccount.com", &KEY_B),
        ("unknown@p.iam.gserviceaccount.com", &KEY_A),
    ];
    for (email, key) in accounts {
        if !email.starts_with("unknown") {
            google.add_service_account(email, key);
        }
        google.grant("com.example.mine", email);
    }
    google.revoke("revoked@p.iam.gserviceaccount.com");

    let mut expectations = Vec::new();
    for (email, key, package, status, code, mentions) in [
        (
            "valid@p.iam.gserviceaccount.com",
            &KEY_A,
            "com.example.mine",
            "valid",
            Value::Null,
            "",
        ),
        (
            "revoked@p.iam.gserviceaccount.com",
            &KEY_B,
            "com.example.mine",
            "invalid",
            json!("not_authorized"),
            "invalid_grant",
        ),
        // Unknown to Google (the key was deleted): the grant is refused too.
        (
            "unknown@p.iam.gserviceaccount.com",
            &KEY_A,
            "com.example.mine",
            "invalid",
            json!("not_authorized"),
            "invalid_grant",
        ),
        (
            "noaccess@p.iam.gserviceaccount.com",
            &KEY_A,
            "com.example.theirs",
            "invalid",
            json!("insufficient_permission"),
            "Users and permissions",
        ),
        (
            "nopackage@p.iam.gserviceaccount.com",
            &KEY_B,
            "com.example.missing",
            "invalid",
            json!("package_not_found"),
            "package name",
        ),
    ] {
        let (s, created) = app
            .post_json(
                &team.token,
                "/v1/keys",
                &upload_body(key, email, json!([package])),
            )
            .await;
        assert_eq!(s, 202, "{created}");
        expectations.push((
            created["id"].as_str().unwrap().to_owned(),
            status,
            code,
            mentions,
        ));
    }
    for (id, status, code, mentions) in expectations {
        let key = app.wait_for_key(&team.token, &id, is_settled).await;
        assert_eq!(key["status"], status, "{key}");
        assert_eq!(key["status_code"], code, "{key}");
        let message = key["status_message"].as_str().unwrap_or_default();
        assert!(message.contains(mentions), "{key}");
    }
    assert_eq!(google.open_edits(), 0);

    // Google unreachable (503 on the API, then a 429 with Retry-After): still validating with
    // store_unavailable, retried later; the grant itself is not blamed.
    google.add_service_account("outage@p.iam.gserviceaccount.com", &KEY_A);
    google.grant("com.example.mine", "outage@p.iam.gserviceaccount.com");
    google.push_fault(PlayFault::Unavailable);
    let (_, created) = app
        .post_json(
            &team.token,
            "/v1/keys",
            &upload_body(
                &KEY_A,
                "outage@p.iam.gserviceaccount.com",
                json!(["com.example.mine"]),
            ),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let key = app.wait_for_key(&team.token, &id, is_settled).await;
    assert_eq!(key["status"], "validating", "{key}");
    assert_eq!(key["status_code"], "store_unavailable", "{key}");
    assert!(key["next_validation_at"].is_string(), "{key}");
    assert!(
        key["status_message"]
            .as_str()
            .unwrap()
            .contains("Google Play is not answering")
    );

    google.push_token_fault(PlayFault::RateLimited {
        retry_after_seconds: 7200,
    });
    google.add_service_account("limited@p.iam.gserviceaccount.com", &KEY_B);
    let (_, created) = app
        .post_json(
            &team.token,
            "/v1/keys",
            &upload_body(
                &KEY_B,
                "limited@p.iam.gserviceaccount.com",
                json!(["com.example.mine"]),
            ),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let key = app.wait_for_key(&team.token, &id, is_settled).await;
    assert_eq!(key["status_code"], "store_unavailable", "{key}");
    let next: chrono::DateTime<chrono::Utc> =
        key["next_validation_at"].as_str().unwrap().parse().unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::TimeDelta::minutes(110),
        "Retry-After is honoured: {key}"
    );
}

fn release(name: &str, code: &str, status: &str, fraction: Option<f64>) -> Value {
    let mut release = json!({"name": name, "versionCodes": [code], "status": status});
    if let Some(fraction) = fraction {
        release["userFraction"] = json!(fraction);
    }
    release
}

fn production(releases: Vec<Value>) -> Vec<Value> {
    vec![
        json!({"track": "production", "releases": releases}),
        json!({"track": "internal", "releases": [release("0.9", "9", "completed", None)]}),
    ]
}

/// The Play events of the team's history, oldest first, as (old_state, new_state,
/// old_user_fraction, new_user_fraction).
async fn play_events(app: &TestApp, team: &TestTeam) -> Vec<Value> {
    let (status, history) = app.get(&team.token, "/v1/events").await;
    assert_eq!(status, 200, "{history}");
    let mut events: Vec<Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "shipwatch.play_release.state_changed")
        .cloned()
        .collect();
    events.reverse();
    events
}

async fn valid_play_key(google: &FakeGooglePlay, app: &TestApp, team: &TestTeam) -> String {
    google.add_service_account(EMAIL_A, &KEY_A);
    google.add_app("com.example.hello", "Hello Android");
    google.grant("com.example.hello", EMAIL_A);
    google.set_tracks(
        "com.example.hello",
        production(vec![release("1.0", "10", "completed", None)]),
    );
    let (_, created) = app
        .post_json(
            &team.token,
            "/v1/keys",
            &upload_body(&KEY_A, EMAIL_A, json!(["com.example.hello"])),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let key = app.wait_for_key(&team.token, &id, is_settled).await;
    assert_eq!(key["status"], "valid", "{key}");
    id
}

async fn play_sweep_reports_each_release_transition_once(backend: Backend) {
    let Setup {
        google, app, team, ..
    } = setup(backend).await;
    let id = valid_play_key(&google, &app, &team).await;
    let sweeper = app.services.sweeper.clone();

    // Baseline: silent; the listing is read once for the app's name.
    let before = google.requests().len();
    let report = sweeper.run().await;
    assert_eq!(report.events, 0, "{report:?}");
    assert_eq!(report.keys_skipped, 0, "{report:?}");
    let baseline: Vec<String> = google.requests()[before..]
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        baseline.len(),
        4,
        "insert, tracks, listings, delete: {baseline:?}"
    );
    assert!(baseline.iter().any(|r| r.ends_with("/listings")));

    let sweep = |tracks: Vec<Value>| {
        let (google, sweeper) = (&google, sweeper.clone());
        async move {
            google.set_tracks("com.example.hello", tracks);
            let before = google.requests().len();
            let report = sweeper.run().await;
            let spent = google.requests().len() - before;
            assert!(
                spent <= 3,
                "at most 3 requests per package per sweep, got {spent}"
            );
            report.events
        }
    };
    // Nothing changed: nothing to say.
    assert_eq!(
        sweep(production(vec![release("1.0", "10", "completed", None)])).await,
        0
    );
    // A new staged rollout at 10 %.
    let at = |status: &str, fraction: Option<f64>| {
        production(vec![
            release("1.0", "10", "completed", None),
            release("1.1", "11", status, fraction),
        ])
    };
    assert_eq!(sweep(at("inProgress", Some(0.1))).await, 1);
    assert_eq!(sweep(at("inProgress", Some(0.1))).await, 0);
    // 10 % -> 50 %, by two overlapping sweeps: one event.
    google.set_tracks("com.example.hello", at("inProgress", Some(0.5)));
    let (a, b) = tokio::join!(sweeper.run(), sweeper.run());
    assert_eq!(a.events + b.events, 1, "{a:?} {b:?}");
    assert_eq!(sweep(at("halted", Some(0.5))).await, 1);
    assert_eq!(sweep(at("completed", None)).await, 1);
    assert_eq!(google.open_edits(), 0);

    let events = play_events(&app, &team).await;
    let seen: Vec<(Value, Value, Value, Value)> = events
        .iter()
        .map(|e| {
            let d = &e["data"];
            (
                d["old_state"].clone(),
                d["new_state"].clone(),
                d["old_user_fraction"].clone(),
                d["new_user_fraction"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Value::Null, json!("inProgress"), Value::Null, json!(0.1)),
            (
                json!("inProgress"),
                json!("inProgress"),
                json!(0.1),
                json!(0.5)
            ),
            (json!("inProgress"), json!("halted"), json!(0.5), json!(0.5)),
            (json!("halted"), json!("completed"), json!(0.5), Value::Null),
        ]
    );
    let data = &events[0]["data"];
    assert_eq!(
        data["app"],
        json!({"id": "com.example.hello", "name": "Hello Android", "bundle_id": "com.example.hello"})
    );
    assert_eq!(data["track"], "production");
    assert_eq!(
        data["release"],
        json!({"name": "1.1", "version_codes": ["11"]})
    );
    let (_, key) = app.get(&team.token, &format!("/v1/keys/{id}")).await;
    assert_eq!(key["status"], "valid", "{key}");
    assert_no_key_material(&KEY_A, &shipwatch_tests::logs::captured());
}

async fn play_sweep_turns_a_revoked_grant_and_a_lost_permission_into_one_key_event_each(
    backend: Backend,
) {
    let Setup {
        google, app, team, ..
    } = setup(backend).await;
    let id = valid_play_key(&google, &app, &team).await;
    let sweeper = app.services.sweeper.clone();
    sweeper.run().await;

    google.revoke(EMAIL_A);
    let (a, b) = tokio::join!(sweeper.run(), sweeper.run());
    assert_eq!(
        a.events + b.events,
        1,
        "one key.status_changed: {a:?} {b:?}"
    );
    let (_, key) = app.get(&team.token, &format!("/v1/keys/{id}")).await;
    assert_eq!(key["status"], "invalid", "{key}");
    assert_eq!(key["status_code"], "not_authorized", "{key}");
    let (_, history) = app.get(&team.token, "/v1/events").await;
    let changed: Vec<&Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "shipwatch.key.status_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{history}");
    assert_eq!(changed[0]["data"]["key"]["client_email"], EMAIL_A);
    assert_eq!(changed[0]["data"]["code"], "not_authorized");

    // Another team's key loses its Play Console permission: insufficient_permission.
    let other = app.create_team("Other").await;
    google.add_service_account(EMAIL_B, &KEY_B);
    google.grant("com.example.hello", EMAIL_B);
    let (_, created) = app
        .post_json(
            &other.token,
            "/v1/keys",
            &upload_body(&KEY_B, EMAIL_B, json!(["com.example.hello"])),
        )
        .await;
    let other_id = created["id"].as_str().unwrap().to_owned();
    let key = app.wait_for_key(&other.token, &other_id, is_settled).await;
    assert_eq!(key["status"], "valid", "{key}");
    sweeper.run().await;
    google.revoke_permission("com.example.hello", EMAIL_B);
    sweeper.run().await;
    let (_, key) = app.get(&other.token, &format!("/v1/keys/{other_id}")).await;
    assert_eq!(key["status"], "invalid", "{key}");
    assert_eq!(key["status_code"], "insufficient_permission", "{key}");
    assert_eq!(google.open_edits(), 0);

    // Rate limited (429 with Retry-After): the key is skipped and paused, its status unchanged.
    let third = app.create_team("Third").await;
    let limited = "limited@shipwatch-test.iam.gserviceaccount.com";
    google.add_service_account(limited, &KEY_A);
    google.grant("com.example.hello", limited);
    let (_, created) = app
        .post_json(
            &third.token,
            "/v1/keys",
            &upload_body(&KEY_A, limited, json!(["com.example.hello"])),
        )
        .await;
    let third_id = created["id"].as_str().unwrap().to_owned();
    let key = app.wait_for_key(&third.token, &third_id, is_settled).await;
    assert_eq!(key["status"], "valid", "{key}");
    sweeper.run().await;
    google.push_fault(PlayFault::RateLimited {
        retry_after_seconds: 600,
    });
    let report = sweeper.run().await;
    assert_eq!(report.keys_skipped, 1, "{report:?}");
    assert_eq!(report.events, 0, "{report:?}");
    let before = google.requests().len();
    let report = sweeper.run().await;
    assert_eq!(
        report.keys_skipped, 1,
        "paused until Retry-After: {report:?}"
    );
    assert_eq!(google.requests().len(), before, "no request while paused");
    let (_, key) = app.get(&third.token, &format!("/v1/keys/{third_id}")).await;
    assert_eq!(key["status"], "valid", "{key}");
}

async fn an_app_store_key_and_a_play_key_in_one_team_are_routed_by_one_workflow_and_listed(
    backend: Backend,
) {
    let Setup {
        google,
        _asc: asc,
        app,
        team,
    } = setup(backend).await;
    // App Store Connect key with one app and a version.
    let asc_key = TestKey::generate();
    asc.register_key(&asc_key);
    asc.add_app(
        &asc_key.issuer_id,
        FakeApp::new("1000000001", "Hello iOS", "com.example.hello"),
    );
    asc.add_version(FakeVersion::new(
        "v1",
        "1000000001",
        "2.1",
        "IOS",
        "WAITING_FOR_REVIEW",
    ));
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/keys",
            &json!({"private_key": asc_key.pem, "issuer_id": asc_key.issuer_id.as_str(),
                "key_id": asc_key.key_id.as_str(), "name": "iOS"}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let asc_id = created["id"].as_str().unwrap().to_owned();
    let key = app
        .wait_for_key(&team.token, &asc_id, |k| k["status"] != "validating")
        .await;
    assert_eq!(key["status"], "valid", "{key}");
    valid_play_key(&google, &app, &team).await;

    // One webhook, one workflow for both stores' release events.
    let receiver = Receiver::start().await.unwrap();
    let (status, destination) = app
        .post_json(
            &team.token,
            "/v1/destinations",
            &json!({"type": "webhook", "name": "hook", "url": format!("{}/hook", receiver.url())}),
        )
        .await;
    assert_eq!(status, 201, "{destination}");
    let (status, workflow) = app
        .post_json(
            &team.token,
            "/v1/workflows",
            &json!({"name": "releases", "destination_id": destination["id"], "app_ids": ["*"],
                "event_types": ["shipwatch.app_version.state_changed",
                    "shipwatch.play_release.state_changed"]}),
        )
        .await;
    assert_eq!(status, 201, "{workflow}");

    let sweeper = app.services.sweeper.clone();
    let report = sweeper.run().await;
    assert_eq!(report.events, 0, "baseline: {report:?}");
    asc.set_version_state("v1", "IN_REVIEW");
    google.set_tracks(
        "com.example.hello",
        production(vec![
            release("1.0", "10", "completed", None),
            release("1.1", "11", "inProgress", Some(0.2)),
        ]),
    );
    let report = sweeper.run().await;
    assert_eq!(report.events, 2, "{report:?}");
    let requests = receiver.requests();
    let mut types: Vec<String> = requests
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "shipwatch.app_version.state_changed",
            "shipwatch.play_release.state_changed"
        ]
    );

    // GET /v1/apps lists both, the Play app with platform ANDROID and its tracks.
    let (status, apps) = app.get(&team.token, "/v1/apps").await;
    assert_eq!(status, 200, "{apps}");
    let apps = apps["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 2, "{apps:?}");
    let play = apps
        .iter()
        .find(|a| a["id"] == "com.example.hello" && a["platform"] == "ANDROID")
        .expect("the Play app is listed");
    assert_eq!(play["name"], "Hello Android");
    let production_track = play["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["track"] == "production")
        .unwrap();
    assert!(
        production_track["releases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "inProgress"
                && r["user_fraction"] == json!(0.2)
                && r["version_codes"] == json!(["11"])),
        "{play}"
    );
    let ios = apps.iter().find(|a| a["id"] == "1000000001").unwrap();
    assert!(ios.get("platform").is_none(), "{ios}");
}
