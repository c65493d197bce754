//! `shipwatch-bench requests` (second table): Google Play requests one key costs per package per
//! sweep, by the number of packages, against the fake Google Play of the test support (which
//! verifies every assertion and token). Only the count matters here.

use std::sync::Arc;

use serde_json::json;
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, fresh_stores};
use shipwatch_tests::fake_asc::FakeAsc;
use shipwatch_tests::fake_google_play::{FakeGooglePlay, KEY_A};

use crate::BenchError;
use crate::table::Table;

const EMAIL: &str = "bench@shipwatch-bench.iam.gserviceaccount.com";

pub async fn run(package_counts: &[usize]) -> Result<Table, BenchError> {
    let mut table = Table::new(
        "Google Play requests per package per sweep",
        &[
            "packages",
            "baseline per package",
            "steady per package",
            "target",
        ],
    );
    for packages in package_counts {
        let (baseline, steady) = measure(*packages).await?;
        let per = |total: usize| format!("{:.2}", total as f64 / *packages as f64);
        table.row(vec![
            packages.to_string(),
            per(baseline),
            per(steady),
            format!(
                "<= 3: {}",
                if steady <= 3 * packages {
                    "met"
                } else {
                    "MISSED"
                }
            ),
        ]);
    }
    Ok(table)
}

/// Requests of the baseline sweep and of a steady sweep of one key with `packages` packages.
async fn measure(packages: usize) -> Result<(usize, usize), BenchError> {
    let google = FakeGooglePlay::start().await;
    let asc = FakeAsc::start().await;
    let dir = tempfile::tempdir().map_err(|e| BenchError::Setup(e.to_string()))?;
    let stores = fresh_stores(Backend::Embedded, dir.path()).await;
    let settings = google.settings();
    let environment: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::start_with_settings(
        Backend::Embedded,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &environment,
    )
    .await;
    let team = app.create_team("Bench").await;
    google.add_service_account(EMAIL, &KEY_A);
    let names: Vec<String> = (0..packages)
        .map(|i| format!("com.example.app{i}"))
        .collect();
    for name in &names {
        google.add_app(name, "App");
        google.grant(name, EMAIL);
        google.set_tracks(
            name,
            vec![json!({"track": "production", "releases": [
                {"name": "1.0", "versionCodes": ["10"], "status": "completed"}]})],
        );
    }
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/keys",
            &json!({"platform": "google_play", "service_account": KEY_A.service_account_json(EMAIL),
                "package_names": names}),
        )
        .await;
    if status != 202 {
        return Err(BenchError::Setup(format!(
            "upload answered {status}: {created}"
        )));
    }
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let key = app
        .wait_for_key(&team.token, &id, |k| k["status"] != "validating")
        .await;
    if key["status"] != "valid" {
        return Err(BenchError::Setup(format!("key not valid: {key}")));
    }
    let sweeper = app.services.sweeper.clone();
    let before = google.requests().len();
    let report = sweeper.run().await;
    let baseline = google.requests().len() - before;
    let before = google.requests().len();
    let steady_report = sweeper.run().await;
    let steady = google.requests().len() - before;
    if report.keys_skipped + steady_report.keys_skipped > 0 {
        return Err(BenchError::Setup("the key was skipped".into()));
    }
    Ok((baseline, steady))
}
