//! `HttpDeliverer` against a real local receiver: bodies and content types per kind, Standard
//! Webhooks signatures checked by the independent verifier, failures recorded, redirects not
//! followed, and private targets refused (by URL and by DNS) unless allowed. No attempt error and
//! no log line carries the URL's secret path or the signing secret.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use shipwatch_adapters::delivery::{
    GuardedResolver, HostLookup, HttpDeliverer, LookupFuture, ResolveRefusal, USER_AGENT,
};
use shipwatch_service::domain::diff::{AppRef, VersionRef};
use shipwatch_service::domain::event_data::{AppVersionStateChanged, EventData};
use shipwatch_service::domain::{render, signing};
use shipwatch_service::model::{
    Destination, DestinationId, DestinationKind, DestinationSecrets, EventId, EventRecord,
    KeyRecordId, TeamId,
};
use shipwatch_service::ports::{Deliverer, DeliveryOutcome};
use shipwatch_tests::receiver::{Receiver, ScriptedAnswer};
use shipwatch_tests::standard_webhooks;

const TIMEOUT: Duration = Duration::from_secs(10);
/// The secret part of every destination URL used here; it must never come back in an error.
const SECRET_PATH: &str = "T0SECRET/B0SECRET/PathTokenXYZ";

fn destination(kind: DestinationKind) -> Destination {
    Destination {
        id: DestinationId("dest-1".into()),
        team_id: TeamId("team-1".into()),
        kind,
        name: "ops".into(),
        url_hint: "hint".into(),
        created_at: Utc::now(),
        last_outcome: None,
    }
}

fn secrets(url: String, kind: DestinationKind) -> DestinationSecrets {
    DestinationSecrets {
        url,
        signing_secret: (kind == DestinationKind::Webhook).then(signing::generate_signing_secret),
    }
}

fn event() -> EventRecord {
    EventRecord {
        id: EventId("evt-delivery-1".into()),
        team_id: TeamId("team-1".into()),
        key_record_id: Some(KeyRecordId("key-1".into())),
        app_id: Some("1234567890".into()),
        event_type: "shipwatch.app_version.state_changed".into(),
        time: Utc::now(),
        data: EventData::AppVersionStateChanged(AppVersionStateChanged {
            app: AppRef {
                id: "1234567890".into(),
                name: "Weather Pro".into(),
                bundle_id: "com.example.weather".into(),
            },
            version: VersionRef {
                id: "v1".into(),
                version_string: "2.0".into(),
                platform: "IOS".into(),
            },
            old_state: Some("WAITING_FOR_REVIEW".into()),
            new_state: "IN_REVIEW".into(),
            time_in_previous_state_seconds: None,
        }),
        summary: "Weather Pro 2.0 (iOS): Waiting for Review -> In Review".into(),
    }
}

fn secret_url(base: &str) -> String {
    format!("{base}/{SECRET_PATH}?token=QuerySecret99")
}

/// The outcome's failure detail (if any), and its `Debug` form, name neither the URL nor its
/// secret parts nor the signing secret.
fn assert_no_secrets(outcome: &DeliveryOutcome, secrets: &DestinationSecrets) {
    let error = format!("{outcome:?} {}", outcome.detail().unwrap_or_default());
    let mut forbidden = vec![
        secrets.url.clone(),
        "T0SECRET".to_owned(),
        "PathTokenXYZ".to_owned(),
        "QuerySecret99".to_owned(),
    ];
    if let Some(secret) = &secrets.signing_secret {
        forbidden.push(secret.clone());
        forbidden.push(secret.trim_start_matches("whsec_").to_owned());
    }
    for part in forbidden {
        assert!(
            !error.contains(&part),
            "attempt error leaks {part:?}: {error}"
        );
    }
}

fn allowing_deliverer() -> HttpDeliverer {
    HttpDeliverer::new(true, TIMEOUT).expect("client builds")
}

#[tokio::test]
async fn each_kind_posts_its_rendered_body_with_its_content_type() {
    let receiver = Receiver::start().await.expect("receiver");
    let deliverer = allowing_deliverer();
    let event = event();
    let kinds = [
        (
            DestinationKind::Slack,
            "application/json",
            render::slack(&event),
        ),
        (
            DestinationKind::Discord,
            "application/json",
            render::discord(&event),
        ),
        (
            DestinationKind::Teams,
            "application/json",
            render::teams(&event),
        ),
        (
            DestinationKind::Webhook,
            "application/cloudevents+json",
            render::cloud_event(&event),
        ),
    ];
    for (index, (kind, content_type, expected_body)) in kinds.into_iter().enumerate() {
        let secrets = secrets(secret_url(&receiver.url()), kind);
        let attempt = deliverer
            .deliver(&destination(kind), &secrets, &event)
            .await;
        assert_eq!(attempt.detail(), None, "{kind:?}");
        assert_eq!(attempt.http_status(), Some(200), "{kind:?}");
        let requests = receiver.requests();
        let request = &requests[index];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/{SECRET_PATH}?token=QuerySecret99"));
        assert_eq!(
            request.header("content-type"),
            Some(content_type),
            "{kind:?}"
        );
        assert_eq!(request.header("user-agent"), Some(USER_AGENT));
        assert!(USER_AGENT.starts_with("shipwatch/"));
        assert_eq!(request.json(), expected_body, "{kind:?}");
        let has_signature = request.header("webhook-signature").is_some();
        assert_eq!(has_signature, kind == DestinationKind::Webhook, "{kind:?}");
    }
}

#[tokio::test]
async fn the_webhook_signature_is_dated_by_the_deliverers_signing_clock() {
    let receiver = Receiver::start().await.expect("receiver");
    let signed_at = DateTime::from_timestamp(1_900_000_000, 0).expect("a valid time");
    let clock = Arc::new(shipwatch_shared::clock::ManualClock::new(signed_at));
    let deliverer = allowing_deliverer().with_signing_clock(clock);
    let secrets = secrets(secret_url(&receiver.url()), DestinationKind::Webhook);
    let signing_secret = secrets.signing_secret.clone().expect("webhook secret");
    let outcome = deliverer
        .deliver(&destination(DestinationKind::Webhook), &secrets, &event())
        .await;
    assert_eq!(outcome.http_status(), Some(200));
    let requests = receiver.requests();
    let request = requests.first().expect("one request");
    assert_eq!(request.header("webhook-timestamp"), Some("1900000000"));
    assert_eq!(
        standard_webhooks::verify_headers(
            &signing_secret,
            &request.headers,
            &request.body,
            signed_at.timestamp()
        ),
        Ok(())
    );
}

#[tokio::test]
async fn webhooks_are_signed_verifiably_with_an_id_stable_across_retries() {
    let receiver = Receiver::start().await.expect("receiver");
    receiver.fail_next(1, 500);
    let deliverer = allowing_deliverer();
    let event = event();
    let secrets = secrets(secret_url(&receiver.url()), DestinationKind::Webhook);
    let signing_secret = secrets.signing_secret.clone().expect("webhook secret");
    let destination = destination(DestinationKind::Webhook);

    let first = deliverer.deliver(&destination, &secrets, &event).await;
    assert_eq!(first.http_status(), Some(500));
    assert!(first.detail().is_some());
    let second = deliverer.deliver(&destination, &secrets, &event).await;
    assert_eq!(
        (second.http_status(), second.detail().map(str::to_owned)),
        (Some(200), None)
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.header("webhook-id"), Some("evt-delivery-1"));
        let timestamp: i64 = request
            .header("webhook-timestamp")
            .and_then(|stamp| stamp.parse().ok())
            .expect("numeric webhook-timestamp");
        assert!(
            request
                .header("webhook-signature")
                .is_some_and(|s| s.starts_with("v1,"))
        );
        assert_eq!(
            standard_webhooks::verify_headers(
                &signing_secret,
                &request.headers,
                &request.body,
                Utc::now().timestamp()
            ),
            Ok(())
        );
        // Verification is bound to the signed timestamp and body.
        assert!(
            standard_webhooks::verify_headers(&signing_secret, &request.headers, b"{}", timestamp)
                .is_err()
        );
        let body = request.json();
        assert_eq!(body["specversion"], json!("1.0"));
        assert_eq!(body["id"], json!("evt-delivery-1"));
        assert_eq!(body["type"], json!("shipwatch.app_version.state_changed"));
        assert_eq!(body["subject"], json!("1234567890"));
        assert_eq!(body["source"], json!("/shipwatch/keys/key-1"));
        assert_eq!(body["datacontenttype"], json!("application/json"));
        assert_eq!(
            body["data"],
            json!({
                "app": {"id": "1234567890", "name": "Weather Pro", "bundle_id": "com.example.weather"},
                "version": {"id": "v1", "version_string": "2.0", "platform": "IOS"},
                "old_state": "WAITING_FOR_REVIEW",
                "new_state": "IN_REVIEW",
            })
        );
    }
    assert_no_secrets(&first, &secrets);
}

#[tokio::test]
async fn error_answers_are_failed_attempts_with_their_status_and_a_safe_reason() {
    let receiver = Receiver::start().await.expect("receiver");
    let deliverer = allowing_deliverer();
    let event = event();
    let kind = DestinationKind::Slack;
    let secrets = secrets(secret_url(&receiver.url()), kind);

    receiver.fail_next(1, 503);
    let attempt = deliverer
        .deliver(&destination(kind), &secrets, &event)
        .await;
    assert_eq!(attempt.http_status(), Some(503));
    assert_eq!(attempt.detail(), Some("the destination answered HTTP 503"));

    // What Slack says about a bad hook is kept: it tells the user what is wrong.
    receiver.respond_next(ScriptedAnswer::status(404).with_body("no_service"));
    let attempt = deliverer
        .deliver(&destination(kind), &secrets, &event)
        .await;
    assert_eq!(attempt.http_status(), Some(404));
    assert_eq!(
        attempt.detail(),
        Some("the destination answered HTTP 404: no_service")
    );

    // A body that echoes the request line back is dropped rather than leaking the URL.
    receiver.respond_next(
        ScriptedAnswer::status(400).with_body(&format!("bad request for POST /{SECRET_PATH}")),
    );
    let attempt = deliverer
        .deliver(&destination(kind), &secrets, &event)
        .await;
    assert_eq!(attempt.http_status(), Some(400));
    assert_eq!(attempt.detail(), Some("the destination answered HTTP 400"));
    assert_no_secrets(&attempt, &secrets);
}

#[tokio::test]
async fn redirects_are_failed_attempts_and_never_followed() {
    let receiver = Receiver::start().await.expect("receiver");
    let deliverer = allowing_deliverer();
    let kind = DestinationKind::Webhook;
    let secrets = secrets(secret_url(&receiver.url()), kind);
    for status in [301, 302, 307, 308] {
        receiver.respond_next(
            ScriptedAnswer::status(status)
                .with_header("location", &format!("{}/elsewhere", receiver.url())),
        );
    }
    for (index, status) in [301u16, 302, 307, 308].into_iter().enumerate() {
        let attempt = deliverer
            .deliver(&destination(kind), &secrets, &event())
            .await;
        assert_eq!(attempt.http_status(), Some(status));
        let error = attempt
            .detail()
            .map(str::to_owned)
            .expect("a redirect is a failure");
        assert!(error.contains("redirect"), "{error}");
        assert_no_secrets(&attempt, &secrets);
        // Only the original request reached the receiver; /elsewhere was never asked for.
        let requests = receiver.requests();
        assert_eq!(requests.len(), index + 1);
        assert!(
            requests
                .iter()
                .all(|request| !request.path.starts_with("/elsewhere"))
        );
    }
}

#[tokio::test]
async fn literal_private_targets_are_refused_before_connecting_unless_allowed() {
    let receiver = Receiver::start().await.expect("receiver");
    let strict = HttpDeliverer::new(false, TIMEOUT).expect("client builds");
    let kind = DestinationKind::Discord;
    for base in [
        receiver.url(),                                   // http and loopback
        format!("https://127.0.0.1:{}", receiver.port()), // https but loopback
        format!("https://localhost:{}", receiver.port()),
        format!("https://[::ffff:127.0.0.1]:{}", receiver.port()),
    ] {
        let secrets = secrets(secret_url(&base), kind);
        let attempt = strict.deliver(&destination(kind), &secrets, &event()).await;
        assert_eq!(attempt.http_status(), None, "{base}");
        let error = attempt.detail().map(str::to_owned).expect("refused");
        assert!(error.starts_with("the destination URL"), "{error}");
        assert_no_secrets(&attempt, &secrets);
    }
    assert!(receiver.requests().is_empty());

    let secrets = secrets(secret_url(&receiver.url()), kind);
    let attempt = allowing_deliverer()
        .deliver(&destination(kind), &secrets, &event())
        .await;
    assert_eq!((attempt.http_status(), attempt.detail()), (Some(200), None));
    assert_eq!(receiver.requests().len(), 1);
}

/// Resolves every name to the given addresses, and counts the names asked for.
struct FixedLookup {
    addresses: Vec<IpAddr>,
    asked: Mutex<Vec<String>>,
}

impl FixedLookup {
    fn new(addresses: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            addresses: addresses.iter().map(|a| a.parse().expect("ip")).collect(),
            asked: Mutex::new(Vec::new()),
        })
    }
}

impl HostLookup for FixedLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        self.asked.lock().expect("lock").push(host);
        let addresses = self
            .addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect();
        Box::pin(async move { Ok(addresses) })
    }
}

struct FailingLookup;

impl HostLookup for FailingLookup {
    fn lookup(&self, _host: String) -> LookupFuture {
        Box::pin(async { Err(io::Error::new(io::ErrorKind::NotFound, "no such host")) })
    }
}

#[tokio::test]
async fn the_resolver_drops_forbidden_addresses_unless_allowed() {
    let mixed = FixedLookup::new(&[
        "127.0.0.1",
        "10.1.2.3",
        "93.184.216.34",
        "::1",
        "2606:4700::1",
    ]);
    let strict = GuardedResolver::new(mixed.clone(), false);
    let kept: Vec<IpAddr> = strict
        .resolve_host("hooks.example.test")
        .await
        .expect("public addresses remain")
        .iter()
        .map(SocketAddr::ip)
        .collect();
    let expected: Vec<IpAddr> = ["93.184.216.34", "2606:4700::1"]
        .iter()
        .map(|a| a.parse().expect("ip"))
        .collect();
    assert_eq!(kept, expected);

    let permissive = GuardedResolver::new(mixed.clone(), true);
    assert_eq!(
        permissive
            .resolve_host("hooks.example.test")
            .await
            .map(|a| a.len()),
        Ok(5)
    );

    let rebound = FixedLookup::new(&["127.0.0.1", "169.254.169.254", "::ffff:10.0.0.1"]);
    assert_eq!(
        GuardedResolver::new(rebound, false)
            .resolve_host("hooks.example.test")
            .await,
        Err(ResolveRefusal::OnlyForbiddenAddresses)
    );
    assert_eq!(
        GuardedResolver::new(Arc::new(FailingLookup), true)
            .resolve_host("nowhere.test")
            .await,
        Err(ResolveRefusal::NotResolved)
    );

    // The same filter, through the trait reqwest calls.
    let name: reqwest::dns::Name = "hooks.example.test".parse().expect("name");
    let resolved = reqwest::dns::Resolve::resolve(&strict, name)
        .await
        .expect("resolves")
        .count();
    assert_eq!(resolved, 2);
}

#[tokio::test]
async fn a_public_name_resolving_to_loopback_is_refused_unless_allowed() {
    let receiver = Receiver::start().await.expect("receiver");
    let to_loopback = FixedLookup::new(&["127.0.0.1"]);
    let kind = DestinationKind::Webhook;

    // https, public-looking name: passes URL validation, then DNS answers loopback.
    let strict = HttpDeliverer::with_lookup(false, TIMEOUT, to_loopback.clone()).expect("client");
    let secrets_https = secrets(
        secret_url(&format!("https://hooks.example.test:{}", receiver.port())),
        kind,
    );
    let attempt = strict
        .deliver(&destination(kind), &secrets_https, &event())
        .await;
    assert_eq!(attempt.http_status(), None);
    assert_eq!(
        attempt.detail(),
        Some(ResolveRefusal::OnlyForbiddenAddresses.to_string().as_str())
    );
    assert_no_secrets(&attempt, &secrets_https);
    assert_eq!(
        *to_loopback.asked.lock().expect("lock"),
        vec!["hooks.example.test".to_owned()]
    );
    assert!(receiver.requests().is_empty());

    // Allowed: the same kind of name reaches the local receiver.
    let permissive = HttpDeliverer::with_lookup(true, TIMEOUT, to_loopback).expect("client");
    let secrets_http = secrets(
        secret_url(&format!("http://hooks.example.test:{}", receiver.port())),
        kind,
    );
    let attempt = permissive
        .deliver(&destination(kind), &secrets_http, &event())
        .await;
    assert_eq!((attempt.http_status(), attempt.detail()), (Some(200), None));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("host"),
        Some(format!("hooks.example.test:{}", receiver.port()).as_str())
    );
}

#[tokio::test]
async fn unreachable_destinations_and_missing_secrets_fail_without_leaking() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let deliverer = allowing_deliverer();
    let kind = DestinationKind::Teams;
    let secrets_closed = secrets(secret_url(&format!("http://127.0.0.1:{closed_port}")), kind);
    let attempt = deliverer
        .deliver(&destination(kind), &secrets_closed, &event())
        .await;
    assert_eq!(attempt.http_status(), None);
    let error = attempt
        .detail()
        .map(str::to_owned)
        .expect("connection fails");
    assert!(
        error.starts_with("could not connect to the destination"),
        "{error}"
    );
    assert!(!error.contains(&closed_port.to_string()), "{error}");
    assert_no_secrets(&attempt, &secrets_closed);

    let receiver = Receiver::start().await.expect("receiver");
    let unsigned = DestinationSecrets {
        url: secret_url(&receiver.url()),
        signing_secret: None,
    };
    let attempt = deliverer
        .deliver(&destination(DestinationKind::Webhook), &unsigned, &event())
        .await;
    assert_eq!(attempt.http_status(), None);
    assert!(
        attempt
            .detail()
            .is_some_and(|e| e.contains("signing secret"))
    );
    assert!(receiver.requests().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn delivery_logs_name_neither_the_url_nor_the_secret() {
    // The process-wide capture (a scoped subscriber can miss events whose callsite interest another
    // test thread cached first).
    shipwatch_tests::logs::install();
    let receiver = Receiver::start().await.expect("receiver");
    receiver.fail_next(1, 500);
    let deliverer = allowing_deliverer();
    let kind = DestinationKind::Webhook;
    let secrets = secrets(secret_url(&receiver.url()), kind);
    for _ in 0..2 {
        deliverer
            .deliver(&destination(kind), &secrets, &event())
            .await;
    }
    let logged = shipwatch_tests::logs::captured();
    assert!(
        logged.contains("delivery attempt"),
        "the attempt is logged: {logged}"
    );
    let signing_secret = secrets.signing_secret.clone().expect("secret");
    for part in [
        "T0SECRET",
        "PathTokenXYZ",
        "QuerySecret99",
        signing_secret.as_str(),
    ] {
        assert!(!logged.contains(part), "log leaks {part}: {logged}");
    }
}
