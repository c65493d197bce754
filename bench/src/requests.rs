//! `shipwatch-bench requests`: App Store Connect requests one key costs per sweep, by the number of
//! apps it sees, when nothing is in flight (no phased release to follow). The fake answers at
//! once; only the count matters here.

use std::time::Duration;

use shipwatch_shared::asc::MAX_PAGE_LIMIT;

use crate::BenchError;
use crate::fake_asc::{FakeAscOptions, FakeAscServer};
use crate::fixtures::{SeedOptions, embedded_services, seed};
use crate::table::{Table, thousands};

/// Requests of one key's baseline and steady sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRequests {
    pub apps: usize,
    pub baseline: u64,
    pub steady: u64,
}

pub async fn run(app_counts: &[usize]) -> Result<Table, BenchError> {
    let mut table = Table::new(
        "App Store Connect requests per key per sweep (nothing in flight)",
        &[
            "apps",
            "baseline sweep",
            "steady sweep",
            "app pages",
            "build pages",
            "target",
        ],
    );
    for apps in app_counts {
        let measured = measure(*apps).await?;
        let app_pages = apps.div_ceil(MAX_PAGE_LIMIT as usize).max(1);
        table.row(vec![
            thousands(*apps as u64),
            measured.baseline.to_string(),
            measured.steady.to_string(),
            app_pages.to_string(),
            "1".into(),
            if *apps <= 200 {
                format!(
                    "<= 3: {}",
                    if measured.steady <= 3 {
                        "met"
                    } else {
                        "MISSED"
                    }
                )
            } else {
                "(none above 200 apps)".into()
            },
        ]);
    }
    Ok(table)
}

/// One key with `apps` apps: its baseline sweep, then a steady sweep.
pub async fn measure(apps: usize) -> Result<KeyRequests, BenchError> {
    eprintln!("requests: one key with {apps} apps");
    let fake = FakeAscServer::start(FakeAscOptions {
        apps_per_key: apps,
        latency: Duration::ZERO,
    })
    .await?;
    let world = embedded_services(fake.base_url(), &[], |_| {}).await?;
    let services = &world.services;
    seed(
        &services.stores,
        services.deliverer.clone(),
        services.clock.clone(),
        &SeedOptions {
            keys: 1,
            webhook_url: None,
            parallelism: 1,
        },
    )
    .await?;
    let mut counts = [0u64; 2];
    for count in &mut counts {
        let before = fake.requests();
        let report = services.sweeper.run().await;
        if report.keys != 1 || report.apps != apps {
            return Err(BenchError::Invalid(format!(
                "the sweep read {} keys and {} apps, expected 1 and {apps}",
                report.keys, report.apps
            )));
        }
        *count = fake.requests() - before;
    }
    Ok(KeyRequests {
        apps,
        baseline: counts[0],
        steady: counts[1],
    })
}
