//! Every document shape the fake serves validates against the matching response schema of
//! Apple's OpenAPI spec, using the small validator in `shipwatch_tests::spec`.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use shipwatch_shared::asc::{AscClient, AscConfig, mint_token};
use shipwatch_tests::fake_asc::*;
use shipwatch_tests::spec::{self, find_operation, validate_against};
use shipwatch_tests::test_keys::TestKey;

/// Replays a logged request with a fresh token and returns (status, body).
async fn replay(fake: &FakeAsc, key: &TestKey, request: &RecordedRequest) -> (u16, Value) {
    let token = mint_token(&key.credentials(), Utc::now()).unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}{}", fake.base_url(), request.path))
        .query(&request.query)
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn assert_valid(path: &str, status: u16, body: &Value) -> &'static str {
    let operation =
        find_operation("GET", path).unwrap_or_else(|| panic!("no operation for {path}"));
    let schema = operation
        .response_schema_name(status)
        .unwrap_or_else(|| panic!("{} declares no {status} response", operation.template));
    if let Err(errors) = validate_against(schema, body) {
        panic!(
            "{path} ({status}) is not a valid {schema}:\n{}",
            errors.join("\n")
        );
    }
    schema
}

#[tokio::test]
async fn success_documents_match_their_response_schemas() {
    let fake = FakeAsc::start().await;
    let key = TestKey::generate();
    fake.register_key(&key);
    for i in 0..3 {
        fake.add_app(
            &key.issuer_id,
            FakeApp::new(
                &format!("10{i}"),
                &format!("App {i}"),
                &format!("com.example.{i}"),
            ),
        );
    }
    let now = Utc::now();
    fake.add_version(
        FakeVersion::new("v1", "100", "1.0", "IOS", "READY_FOR_DISTRIBUTION")
            .with_app_store_state("READY_FOR_SALE")
            .created(now - TimeDelta::days(9)),
    );
    fake.add_version(
        FakeVersion::new("v2", "100", "1.1", "IOS", "WAITING_FOR_REVIEW")
            .with_release_type(Some("SCHEDULED")),
    );
    fake.add_version(
        FakeVersion::new("v3", "101", "3.0", "TV_OS", "PREPARE_FOR_SUBMISSION")
            .with_release_type(None),
    );
    fake.set_phased_release(
        "v1",
        Some(FakePhasedRelease {
            start_date: Some(now),
            ..FakePhasedRelease::new("p1", "PAUSED", Some(4))
        }),
    );
    fake.add_build(
        FakeBuild::new("b1", "100", "12", "1.1")
            .processing_state("VALID")
            .beta_review_state(Some("IN_REVIEW"))
            .external_state(Some("IN_BETA_REVIEW")),
    );
    fake.add_build(
        FakeBuild::new("b2", "101", "3", "3.0")
            .platform("TV_OS")
            .external_state(None)
            .internal_state(None),
    );
    fake.add_review_submission(FakeReviewSubmission {
        id: "r1".into(),
        app_id: "100".into(),
        platform: "IOS".into(),
        state: "WAITING_FOR_REVIEW".into(),
        submitted_date: Some(now),
        version_id: Some("v2".into()),
    });

    let session = AscClient::new(AscConfig::new(&fake.base_url()).unwrap())
        .unwrap()
        .session(Arc::new(key.credentials()));
    session.count_apps().await.unwrap();
    session.probe_builds().await.unwrap();
    session.list_apps_with_versions().await.unwrap();
    session.list_versions_of("100").await.unwrap();
    session.list_recent_builds(50).await.unwrap();
    session.get_phased_release("v1").await.unwrap();
    session.list_review_submissions("100").await.unwrap();

    let mut schemas = Vec::new();
    for request in fake.request_log() {
        let (status, body) = replay(&fake, &key, &request).await;
        assert_eq!(status, 200, "{request:?}");
        schemas.push(assert_valid(&request.path, status, &body));
        // The shapes the monitor depends on really are present, not vacuously valid.
        if request.path == "/v1/apps" && request.param("include").is_some() {
            assert_eq!(body["included"].as_array().unwrap().len(), 3);
            assert_eq!(
                body["data"][0]["relationships"]["appStoreVersions"]["meta"]["paging"]["total"],
                2
            );
        }
        if request.path == "/v1/builds" && request.param("include").is_some() {
            let kinds: Vec<&str> = body["included"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["type"].as_str().unwrap())
                .collect();
            for kind in [
                "apps",
                "preReleaseVersions",
                "buildBetaDetails",
                "betaAppReviewSubmissions",
            ] {
                assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
            }
        }
    }
    for expected in [
        "AppsResponse",
        "BuildsResponse",
        "AppStoreVersionsResponse",
        "AppStoreVersionPhasedReleaseWithoutIncludesResponse",
        "ReviewSubmissionsResponse",
    ] {
        assert!(
            schemas.contains(&expected),
            "{expected} not exercised: {schemas:?}"
        );
    }
}

#[tokio::test]
async fn error_documents_match_error_response() {
    let fake = FakeAsc::start().await;
    let key = TestKey::generate();
    fake.register_key(&key);
    let token = mint_token(&key.credentials(), Utc::now()).unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", fake.base_url()))
            .bearer_auth(token.expose())
            .send()
    };
    let mut seen = Vec::new();
    let mut check = |status: u16, body: Value| {
        if let Err(errors) = validate_against("ErrorResponse", &body) {
            panic!("{status}: {}", errors.join("\n"));
        }
        seen.push((
            status,
            body["errors"][0]["code"].as_str().unwrap().to_owned(),
        ));
    };
    let response = get("/v1/apps?limit=500").await.unwrap();
    check(response.status().as_u16(), response.json().await.unwrap());
    let response = get("/v1/appStoreVersions/none/appStoreVersionPhasedRelease")
        .await
        .unwrap();
    check(response.status().as_u16(), response.json().await.unwrap());
    for failure in [
        FailureMode::Unauthorized,
        FailureMode::ForbiddenBuilds,
        FailureMode::AgreementsMissing,
        FailureMode::RateLimited { retry_after: None },
        FailureMode::ServerError,
        FailureMode::ServiceUnavailable,
    ] {
        fake.set_failure(&key.key_id, failure);
        let response = get("/v1/builds?limit=1").await.unwrap();
        check(response.status().as_u16(), response.json().await.unwrap());
    }
    let codes: Vec<(u16, &str)> = seen.iter().map(|(s, c)| (*s, c.as_str())).collect();
    assert_eq!(
        codes,
        [
            (400, "PARAMETER_ERROR.INVALID"),
            (404, "NOT_FOUND"),
            (401, "NOT_AUTHORIZED"),
            (403, "FORBIDDEN_ERROR"),
            (403, "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED"),
            (429, "RATE_LIMIT_EXCEEDED"),
            (500, "UNEXPECTED_ERROR"),
            (503, "SERVICE_UNAVAILABLE"),
        ]
    );
}

#[test]
fn validator_catches_documents_that_break_the_schema() {
    let valid = json!({
        "data": [{"type": "apps", "id": "1", "attributes": {"name": "A", "bundleId": "b"}}],
        "links": {"self": "http://x/v1/apps"},
        "meta": {"paging": {"total": 1, "limit": 1}}
    });
    assert_eq!(validate_against("AppsResponse", &valid), Ok(()));
    let broken = [
        json!({"data": [], "meta": {"paging": {"total": 0, "limit": 1}}}),
        json!({"data": [{"type": "builds", "id": "1"}], "links": {"self": "x"}}),
        json!({"data": [{"type": "apps", "id": 1}], "links": {"self": "x"}}),
        json!({"data": [{"type": "apps", "id": "1", "attributes": {"name": 5}}], "links": {"self": "x"}}),
        json!({"data": [], "links": {"self": "x"}, "included": [{"type": "appStoreVersions", "id": "v", "attributes": {"platform": "WATCH_OS"}}]}),
        json!({"data": [], "links": {"self": "x"}, "meta": {"paging": {"total": 0}}}),
    ];
    for document in broken {
        assert!(
            validate_against("AppsResponse", &document).is_err(),
            "{document}"
        );
    }
    assert!(
        validate_against(
            "ErrorResponse",
            &json!({"errors": [{"status": "401", "title": "t"}]})
        )
        .is_err()
    );
    assert!(spec::spec()["paths"]["/v1/apps"]["get"].is_object());
}
