//! `docs/openapi.yaml` describes exactly the routes the router serves: a route added to the code
//! without its documentation (or documented but not served) fails here.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request};
use tower::ServiceExt;
use yaml_rust2::YamlLoader;

fn documented_routes() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml is readable");
    let docs = YamlLoader::load_from_str(&text).expect("docs/openapi.yaml is valid YAML");
    let doc = &docs[0];
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    let paths = doc["paths"].as_hash().expect("paths");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path keys are strings").to_owned();
        for (method, _) in item.as_hash().expect("path item") {
            let method = method.as_str().unwrap_or_default().to_ascii_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                routes.insert((method, path.clone()));
            }
        }
    }
    routes
}

fn served_routes() -> BTreeSet<(String, String)> {
    shipwatch_api::served_routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect()
}

#[test]
fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let documented = documented_routes();
    let served = served_routes();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but missing from docs/openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
}

#[test]
fn documented_error_codes_include_every_contract_code() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"))
            .unwrap();
    for code in [
        "invalid_private_key",
        "invalid_key_id",
        "invalid_issuer_id",
        "key_id_mismatch",
        "payload_too_large",
        "key_exists",
        "invalid_destination_url",
        "unauthorized",
        "not_found",
    ] {
        assert!(
            text.contains(code),
            "docs/openapi.yaml does not mention {code}"
        );
    }
}

/// The list `served_routes()` reports is what the router really routes: each answers with something
/// other than the router's own 404/405 (401 without a token, since every /v1 route needs one).
#[tokio::test]
async fn the_route_list_matches_the_real_router() {
    let asc = shipwatch_tests::fake_asc::FakeAsc::start().await;
    let app = shipwatch_tests::app::TestApp::start(
        shipwatch_tests::app::Backend::Embedded,
        &asc.base_url(),
    )
    .await;
    let router = shipwatch_tests::app::api_router(
        &app.services,
        "0".repeat(64).as_str(),
        std::sync::Arc::new(shipwatch_service::keys::StreamTriggersValidation),
    );
    for (method, path) in served_routes() {
        let uri = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let expected = if path == "/health" { 200 } else { 401 };
        assert_eq!(response.status().as_u16(), expected, "{method} {uri}");
    }
    let unknown = Request::builder()
        .uri("/v1/nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(router.clone().oneshot(unknown).await.unwrap().status(), 404);
}
