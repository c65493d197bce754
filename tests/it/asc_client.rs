//! The App Store Connect client against the fake: data, pagination, included resources,
//! unknown enum values, rate-limit headers, every error class, and spec-valid requests.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use shipwatch_shared::asc::*;
use shipwatch_tests::fake_asc::*;
use shipwatch_tests::test_keys::TestKey;

struct Setup {
    fake: FakeAsc,
    key: TestKey,
    session: AscSession,
}

async fn setup() -> Setup {
    let fake = FakeAsc::start().await;
    let key = TestKey::generate();
    fake.register_key(&key);
    let client = AscClient::new(AscConfig::new(&fake.base_url()).unwrap()).unwrap();
    let session = client.session(Arc::new(key.credentials()));
    Setup { fake, key, session }
}

fn add_apps(setup: &Setup, count: usize) {
    for i in 0..count {
        let id = format!("{}", 1_000_000_000 + i);
        setup.fake.add_app(
            &setup.key.issuer_id,
            FakeApp::new(&id, &format!("App {i}"), &format!("com.example.app{i}")),
        );
    }
}

#[tokio::test]
async fn count_apps_reads_the_total() {
    let setup = setup().await;
    add_apps(&setup, 7);
    assert_eq!(setup.session.count_apps().await.unwrap(), 7);
    let log = setup.fake.request_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/v1/apps");
    assert_eq!(log[0].param("limit"), Some("1"));
    assert_eq!(log[0].status, 200);
    assert_eq!(setup.session.requests_sent(), 1);
}

#[tokio::test]
async fn probe_builds_succeeds_for_a_normal_key() {
    let setup = setup().await;
    setup.session.probe_builds().await.unwrap();
    assert_eq!(setup.fake.request_log()[0].path, "/v1/builds");
}

#[tokio::test]
async fn apps_are_read_across_pages_with_included_versions() {
    let setup = setup().await;
    add_apps(&setup, 450);
    let base = Utc::now() - TimeDelta::days(30);
    setup.fake.add_version(
        FakeVersion::new(
            "v-old",
            "1000000003",
            "1.0",
            "IOS",
            "READY_FOR_DISTRIBUTION",
        )
        .created(base),
    );
    setup.fake.add_version(
        FakeVersion::new("v-new", "1000000003", "1.1", "IOS", "WAITING_FOR_REVIEW")
            .created(base + TimeDelta::days(1))
            .with_release_type(Some("AFTER_APPROVAL")),
    );
    setup.fake.add_version(
        FakeVersion::new("v-mac", "1000000420", "2.0", "MAC_OS", "IN_REVIEW").created(base),
    );
    let apps = setup.session.list_apps_with_versions().await.unwrap();
    assert_eq!(apps.len(), 450);
    // 200 per page: three requests, following links.next.
    let log = setup.fake.request_log();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r.status == 200));
    assert_eq!(log[1].param("limit"), Some("200"));
    assert!(log[1].param("cursor").is_some());

    let app3 = apps.iter().find(|a| a.app.id == "1000000003").unwrap();
    assert_eq!(app3.app.name, "App 3");
    assert_eq!(app3.app.bundle_id, "com.example.app3");
    let ids: Vec<&str> = app3.versions.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["v-new", "v-old"]);
    let newest = &app3.versions[0];
    assert_eq!(newest.state, AppVersionState::WaitingForReview);
    assert_eq!(newest.platform, Platform::Ios);
    assert_eq!(newest.version_string, "1.1");
    assert_eq!(newest.release_type, Some(ReleaseType::AfterApproval));
    assert_eq!(
        newest.created_date.map(|d| d.timestamp()),
        Some((base + TimeDelta::days(1)).timestamp())
    );
    let mac = apps.iter().find(|a| a.app.id == "1000000420").unwrap();
    assert_eq!(mac.versions[0].platform, Platform::MacOs);
    assert_eq!(mac.versions[0].state, AppVersionState::InReview);
}

#[tokio::test]
async fn apps_with_more_versions_than_included_are_completed() {
    let setup = setup().await;
    add_apps(&setup, 1);
    let base = Utc::now() - TimeDelta::days(400);
    for i in 0..(MAX_INCLUDED_VERSIONS as i64 + 5) {
        setup.fake.add_version(
            FakeVersion::new(
                &format!("v{i}"),
                "1000000000",
                &format!("1.{i}"),
                "IOS",
                "READY_FOR_DISTRIBUTION",
            )
            .created(base + TimeDelta::days(i)),
        );
    }
    let apps = setup.session.list_apps_with_versions().await.unwrap();
    assert_eq!(apps[0].versions.len(), MAX_INCLUDED_VERSIONS as usize + 5);
    let log = setup.fake.request_log();
    assert_eq!(log[0].param("limit[appStoreVersions]"), Some("50"));
    assert_eq!(log[1].path, "/v1/apps/1000000000/appStoreVersions");
}

#[tokio::test]
async fn deprecated_app_store_state_is_a_fallback_only() {
    let setup = setup().await;
    add_apps(&setup, 1);
    setup.fake.add_version(
        FakeVersion::new("legacy", "1000000000", "1.0", "IOS", "IGNORED")
            .without_app_version_state()
            .with_app_store_state("READY_FOR_SALE"),
    );
    setup.fake.add_version(
        FakeVersion::new(
            "both",
            "1000000000",
            "1.1",
            "IOS",
            "PENDING_DEVELOPER_RELEASE",
        )
        .with_app_store_state("READY_FOR_SALE")
        .created(Utc::now() + TimeDelta::seconds(5)),
    );
    let apps = setup.session.list_apps_with_versions().await.unwrap();
    let versions = &apps[0].versions;
    let legacy = versions.iter().find(|v| v.id == "legacy").unwrap();
    assert_eq!(legacy.state, AppVersionState::ReadyForDistribution);
    assert_eq!(legacy.app_store_state, Some(AppStoreState::ReadyForSale));
    let both = versions.iter().find(|v| v.id == "both").unwrap();
    assert_eq!(both.state, AppVersionState::PendingDeveloperRelease);
}

#[tokio::test]
async fn unknown_future_enum_values_pass_through() {
    let setup = setup().await;
    add_apps(&setup, 1);
    setup.fake.add_version(FakeVersion::new(
        "future",
        "1000000000",
        "9.0",
        "WATCH_OS",
        "WAITING_FOR_HOLOGRAM_REVIEW",
    ));
    setup.fake.add_build(
        FakeBuild::new("b-future", "1000000000", "42", "9.0")
            .processing_state("QUANTUM")
            .external_state(Some("IN_ORBIT"))
            .beta_review_state(Some("ESCALATED")),
    );
    let apps = setup.session.list_apps_with_versions().await.unwrap();
    let version = &apps[0].versions[0];
    assert_eq!(
        version.state,
        AppVersionState::Unknown("WAITING_FOR_HOLOGRAM_REVIEW".into())
    );
    assert_eq!(version.state.as_str(), "WAITING_FOR_HOLOGRAM_REVIEW");
    assert_eq!(version.platform.as_str(), "WATCH_OS");
    let builds = setup.session.list_recent_builds(10).await.unwrap();
    assert_eq!(builds[0].processing_state.as_str(), "QUANTUM");
    assert_eq!(
        builds[0].external_build_state,
        Some(ExternalBetaState::Unknown("IN_ORBIT".into()))
    );
    assert_eq!(
        serde_json::to_value(&builds[0].beta_review_state).unwrap(),
        serde_json::json!("ESCALATED")
    );
}

#[tokio::test]
async fn recent_builds_resolve_included_resources_newest_first() {
    let setup = setup().await;
    add_apps(&setup, 2);
    let now = Utc::now();
    setup.fake.add_build(
        FakeBuild::new("b1", "1000000000", "100", "1.0")
            .uploaded(now - TimeDelta::hours(3))
            .processing_state("VALID")
            .external_state(Some("IN_BETA_TESTING"))
            .internal_state(Some("IN_BETA_TESTING"))
            .beta_review_state(Some("APPROVED")),
    );
    setup.fake.add_build(
        FakeBuild::new("b2", "1000000001", "7", "2.3")
            .uploaded(now - TimeDelta::hours(1))
            .platform("VISION_OS"),
    );
    setup.fake.add_build(
        FakeBuild::new("b3", "1000000000", "99", "1.0")
            .uploaded(now - TimeDelta::hours(9))
            .processing_state("VALID")
            .expired(true)
            .external_state(Some("EXPIRED")),
    );
    let builds = setup.session.list_recent_builds(2).await.unwrap();
    assert_eq!(
        builds.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        ["b2", "b1"]
    );
    let b2 = &builds[0];
    assert_eq!(b2.app_id, "1000000001");
    assert_eq!(b2.processing_state, BuildProcessingState::Processing);
    assert_eq!(
        b2.pre_release_version.as_ref().unwrap().platform,
        Platform::VisionOs
    );
    assert_eq!(b2.pre_release_version.as_ref().unwrap().version, "2.3");
    assert_eq!(b2.beta_review_state, None);
    assert_eq!(b2.app.as_ref().unwrap().name, "App 1");
    let b1 = &builds[1];
    assert_eq!(b1.version, "100");
    assert_eq!(b1.processing_state, BuildProcessingState::Valid);
    assert_eq!(
        b1.external_build_state,
        Some(ExternalBetaState::InBetaTesting)
    );
    assert_eq!(
        b1.internal_build_state,
        Some(InternalBetaState::InBetaTesting)
    );
    assert_eq!(b1.beta_review_state, Some(BetaReviewState::Approved));
    assert!(!b1.expired);
    assert_eq!(
        b1.uploaded_date.map(|d| d.timestamp()),
        Some((now - TimeDelta::hours(3)).timestamp())
    );
    // One request, one page, at most the spec's maximum.
    let all = setup.session.list_recent_builds(5000).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[2].expired);
    let log = setup.fake.request_log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].param("limit"), Some("200"));
    assert_eq!(log[1].param("sort"), Some("-uploadedDate"));
}

#[tokio::test]
async fn phased_release_is_read_or_absent() {
    let setup = setup().await;
    add_apps(&setup, 1);
    setup.fake.add_version(FakeVersion::new(
        "v1",
        "1000000000",
        "1.0",
        "IOS",
        "READY_FOR_DISTRIBUTION",
    ));
    assert_eq!(setup.session.get_phased_release("v1").await.unwrap(), None);
    setup
        .fake
        .set_phased_release("v1", Some(FakePhasedRelease::new("pr1", "ACTIVE", Some(3))));
    let phased = setup
        .session
        .get_phased_release("v1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(phased.id, "pr1");
    assert_eq!(phased.state, PhasedReleaseState::Active);
    assert_eq!(phased.current_day_number, Some(3));
    assert_eq!(
        setup.fake.request_log()[1].path,
        "/v1/appStoreVersions/v1/appStoreVersionPhasedRelease"
    );
    // An unknown version reads as "no phased release" rather than failing the sweep.
    assert_eq!(
        setup.session.get_phased_release("nope").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn review_submissions_are_listed_per_app() {
    let setup = setup().await;
    add_apps(&setup, 2);
    setup.fake.add_review_submission(FakeReviewSubmission {
        id: "rs1".into(),
        app_id: "1000000001".into(),
        platform: "IOS".into(),
        state: "UNRESOLVED_ISSUES".into(),
        submitted_date: Some(Utc::now()),
        version_id: Some("v9".into()),
    });
    let submissions = setup
        .session
        .list_review_submissions("1000000001")
        .await
        .unwrap();
    assert_eq!(submissions.len(), 1);
    assert_eq!(
        submissions[0].state,
        Some(ReviewSubmissionState::UnresolvedIssues)
    );
    assert_eq!(submissions[0].app_store_version_id.as_deref(), Some("v9"));
    assert!(
        setup
            .session
            .list_review_submissions("1000000000")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn rate_limit_header_is_exposed_and_decreases() {
    let setup = setup().await;
    assert_eq!(setup.session.last_rate_limit(), None);
    setup.session.count_apps().await.unwrap();
    let first = setup.session.last_rate_limit().unwrap();
    assert_eq!(first.hourly_limit, 3600);
    setup.session.count_apps().await.unwrap();
    let second = setup.session.last_rate_limit().unwrap();
    assert_eq!(second.hourly_remaining, first.hourly_remaining - 1);
}

#[tokio::test]
async fn revoked_key_is_not_authorized() {
    let setup = setup().await;
    setup
        .fake
        .set_failure(&setup.key.key_id, FailureMode::Unauthorized);
    let error = setup.session.count_apps().await.unwrap_err();
    assert!(
        matches!(&error, AscError::NotAuthorized { code, .. } if code == "NOT_AUTHORIZED"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn unregistered_key_is_not_authorized() {
    let fake = FakeAsc::start().await;
    let key = TestKey::generate();
    let client = AscClient::new(AscConfig::new(&fake.base_url()).unwrap()).unwrap();
    let error = client
        .session(Arc::new(key.credentials()))
        .count_apps()
        .await
        .unwrap_err();
    assert!(matches!(error, AscError::NotAuthorized { .. }), "{error:?}");
    assert_eq!(fake.requests_for(&key.key_id), 1);
}

#[tokio::test]
async fn sales_role_is_forbidden_on_builds_only() {
    let setup = setup().await;
    add_apps(&setup, 1);
    setup
        .fake
        .set_failure(&setup.key.key_id, FailureMode::ForbiddenBuilds);
    assert_eq!(setup.session.count_apps().await.unwrap(), 1);
    let error = setup.session.probe_builds().await.unwrap_err();
    assert!(
        matches!(&error, AscError::Forbidden { code, .. } if code == "FORBIDDEN_ERROR"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn missing_agreements_are_their_own_class() {
    let setup = setup().await;
    setup
        .fake
        .set_failure(&setup.key.key_id, FailureMode::AgreementsMissing);
    let error = setup.session.list_apps_with_versions().await.unwrap_err();
    assert!(
        matches!(error, AscError::AgreementsRequired { detail: Some(_) }),
        "{error:?}"
    );
    assert!(error.to_string().contains("agreements"));
}

#[tokio::test]
async fn rate_limited_answer_carries_retry_after_and_header() {
    let setup = setup().await;
    setup.fake.set_failure(
        &setup.key.key_id,
        FailureMode::RateLimited {
            retry_after: Some(Duration::from_secs(42)),
        },
    );
    let error = setup.session.count_apps().await.unwrap_err();
    assert_eq!(
        error,
        AscError::RateLimited {
            retry_after: Some(Duration::from_secs(42)),
            rate_limit: Some(RateLimit {
                hourly_limit: 3600,
                hourly_remaining: 0
            }),
        }
    );
    assert!(error.is_retryable());
    assert_eq!(setup.session.last_rate_limit().unwrap().hourly_remaining, 0);
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let setup = setup().await;
    for (failure, status) in [
        (Failure::ServerError, 500),
        (Failure::ServiceUnavailable, 503),
    ] {
        setup.fake.set_failure(&setup.key.key_id, failure);
        let error = setup.session.count_apps().await.unwrap_err();
        assert!(
            matches!(error, AscError::Server { status: s, .. } if s == status),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }
    setup.fake.clear_failure(&setup.key.key_id);
    assert_eq!(setup.session.count_apps().await.unwrap(), 0);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let fake = FakeAsc::start().await;
    let key = TestKey::generate();
    fake.register_key(&key);
    fake.set_failure(&key.key_id, FailureMode::Delay(Duration::from_secs(5)));
    let config = AscConfig::new(&fake.base_url())
        .unwrap()
        .with_timeouts(Duration::from_secs(1), Duration::from_millis(200));
    let session = AscClient::new(config)
        .unwrap()
        .session(Arc::new(key.credentials()));
    let error = session.count_apps().await.unwrap_err();
    assert_eq!(error, AscError::Timeout);
    assert!(error.is_retryable());
}

#[tokio::test]
async fn unreachable_host_is_a_transport_error() {
    // Bind then drop a listener so the port is very likely closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let key = TestKey::generate();
    let session = AscClient::new(AscConfig::new(&format!("http://127.0.0.1:{port}")).unwrap())
        .unwrap()
        .session(Arc::new(key.credentials()));
    let error = session.count_apps().await.unwrap_err();
    assert!(matches!(error, AscError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
    assert!(!error.to_string().contains(&port.to_string()), "{error}");
}

#[tokio::test]
async fn non_json_success_is_a_decode_error() {
    use axum::Router;
    let app = Router::new().fallback(|| async { "<html>maintenance</html>" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let key = TestKey::generate();
    let session = AscClient::new(AscConfig::new(&format!("http://{address}")).unwrap())
        .unwrap()
        .session(Arc::new(key.credentials()));
    let error = session.count_apps().await.unwrap_err();
    assert!(matches!(error, AscError::Decode(_)), "{error:?}");
    assert!(!error.is_retryable());
    server.abort();
}

#[tokio::test]
async fn fake_rejects_requests_that_break_the_spec() {
    let setup = setup().await;
    let token = mint_token(&setup.key.credentials(), Utc::now()).unwrap();
    let http = reqwest::Client::new();
    let base = setup.fake.base_url();
    let cases = [
        ("/v1/apps?limit=201", "limit"),
        (
            "/v1/apps?include=appStoreVersions&limit%5BappStoreVersions%5D=51",
            "limit[appStoreVersions]",
        ),
        (
            "/v1/apps?fields%5Bapps%5D=name,favouriteColour",
            "fields[apps]",
        ),
        ("/v1/apps?bogus=1", "bogus"),
        ("/v1/builds?sort=-createdDate", "sort"),
        (
            "/v1/builds?filter%5BprocessingState%5D=DONE",
            "filter[processingState]",
        ),
    ];
    for (path, parameter) in cases {
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["code"], "PARAMETER_ERROR.INVALID",
            "{path}"
        );
        assert_eq!(
            body["errors"][0]["source"]["parameter"], parameter,
            "{path}"
        );
    }
}

#[tokio::test]
async fn every_request_the_client_sends_is_valid_under_the_spec() {
    let setup = setup().await;
    add_apps(&setup, 3);
    setup.fake.add_version(FakeVersion::new(
        "v1",
        "1000000000",
        "1.0",
        "IOS",
        "IN_REVIEW",
    ));
    setup
        .fake
        .add_build(FakeBuild::new("b1", "1000000000", "1", "1.0"));
    setup.session.count_apps().await.unwrap();
    setup.session.probe_builds().await.unwrap();
    setup.session.list_apps_with_versions().await.unwrap();
    setup.session.list_versions_of("1000000000").await.unwrap();
    setup.session.list_recent_builds(200).await.unwrap();
    setup.session.get_phased_release("v1").await.unwrap();
    setup
        .session
        .list_review_submissions("1000000000")
        .await
        .unwrap();
    let log = setup.fake.request_log();
    assert_eq!(log.len(), 7);
    for request in &log {
        // 404 is the fake's "no phased release"; any 400 would mean an invalid request.
        assert!(matches!(request.status, 200 | 404), "{request:?}");
        let operation = shipwatch_tests::spec::find_operation("GET", &request.path).unwrap();
        shipwatch_tests::spec::validate_query(&operation, &request.query).unwrap();
    }
    assert_eq!(setup.session.requests_sent(), 7);
}
