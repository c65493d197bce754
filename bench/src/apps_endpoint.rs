//! `GET /v1/apps` under load (`apps-endpoint`): one team whose key sees A apps (snapshots written
//! by a real baseline sweep against the in-process fake App Store Connect), the real API router
//! served on loopback, C clients each listing every page one after the other. Reports latency
//! per page request (p50, p99), bytes per page and pages per listing, on the embedded store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shipwatch_api::{ApiState, ApiWiring};
use shipwatch_service::keys::StreamTriggersValidation;

use crate::BenchError;
use crate::fake_asc::{FakeAscOptions, FakeAscServer};
use crate::fixtures::{SeedOptions, embedded_services, seed};
use crate::table::{Table, thousands};

/// The team token [`seed`] gives its first team.
const TEAM_TOKEN: &str = "bench-team-token-0";

/// Options of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppsEndpointOptions {
    pub apps: Vec<usize>,
    pub clients: usize,
    /// Full listings each client makes.
    pub listings: usize,
    /// `limit` of each page request (0: the server's default).
    pub page_size: usize,
}

pub async fn run(options: &AppsEndpointOptions) -> Result<Table, BenchError> {
    let mut table = Table::new(
        &format!(
            "GET /v1/apps, embedded store, {} concurrent clients listing every page {} times, limit={} (release build)",
            options.clients,
            options.listings,
            if options.page_size == 0 {
                "default".to_owned()
            } else {
                options.page_size.to_string()
            }
        ),
        &[
            "apps",
            "pages per listing",
            "bytes per page",
            "requests",
            "p50 ms",
            "p99 ms",
            "max ms",
        ],
    );
    for &apps in &options.apps {
        let measured = measure(apps, options).await?;
        table.row(vec![
            thousands(apps as u64),
            measured.pages_per_listing.to_string(),
            thousands(measured.bytes_per_page),
            thousands(measured.latencies.len() as u64),
            format!("{:.1}", percentile(&measured.latencies, 0.50)),
            format!("{:.1}", percentile(&measured.latencies, 0.99)),
            format!("{:.1}", percentile(&measured.latencies, 1.0)),
        ]);
    }
    Ok(table)
}

struct Measured {
    pages_per_listing: usize,
    bytes_per_page: u64,
    /// Milliseconds, sorted.
    latencies: Vec<f64>,
}

async fn measure(apps: usize, options: &AppsEndpointOptions) -> Result<Measured, BenchError> {
    eprintln!("apps-endpoint: {apps} apps, {} clients", options.clients);
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
    let baseline = services.sweeper.run().await;
    if baseline.apps != apps {
        return Err(BenchError::Invalid(format!(
            "the baseline sweep saw {} of {apps} apps",
            baseline.apps
        )));
    }
    let router = shipwatch_api::router(ApiState::new(ApiWiring {
        stores: services.stores.clone(),
        clock: services.clock.clone(),
        deliverer: services.deliverer.clone(),
        validation: Arc::new(StreamTriggersValidation),
        sweeps: Arc::new(services.fanout_sweep(None)),
        admin_token_hash: String::new(),
        allow_private_destinations: false,
    }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(BenchError::io("binding the API"))?;
    let address = listener
        .local_addr()
        .map_err(BenchError::io("reading the API's address"))?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let base = format!("http://{address}/v1/apps");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .build()
        .map_err(|err| BenchError::setup("HTTP client", err))?;

    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..options.clients.max(1) {
        let http = http.clone();
        let base = base.clone();
        let listings = options.listings.max(1);
        let page_size = options.page_size;
        clients
            .spawn(async move { list_repeatedly(&http, &base, listings, page_size, apps).await });
    }
    let mut latencies = Vec::new();
    let mut pages_per_listing = 0;
    let mut bytes = 0u64;
    while let Some(joined) = clients.join_next().await {
        let client = joined.map_err(|err| BenchError::setup("client task", err))??;
        pages_per_listing = client.pages_per_listing;
        bytes += client.bytes;
        latencies.extend(client.latencies);
    }
    server.abort();
    latencies.sort_by(f64::total_cmp);
    let bytes_per_page = bytes / (latencies.len().max(1) as u64);
    Ok(Measured {
        pages_per_listing,
        bytes_per_page,
        latencies,
    })
}

struct ClientRun {
    pages_per_listing: usize,
    bytes: u64,
    latencies: Vec<f64>,
}

async fn list_repeatedly(
    http: &reqwest::Client,
    base: &str,
    listings: usize,
    page_size: usize,
    apps: usize,
) -> Result<ClientRun, BenchError> {
    let mut run = ClientRun {
        pages_per_listing: 0,
        bytes: 0,
        latencies: Vec::new(),
    };
    for _ in 0..listings {
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        let mut seen = 0;
        loop {
            let mut request = http.get(base).bearer_auth(TEAM_TOKEN);
            if page_size > 0 {
                request = request.query(&[("limit", page_size.to_string())]);
            }
            if let Some(cursor) = &cursor {
                request = request.query(&[("cursor", cursor)]);
            }
            let started = Instant::now();
            let response = request
                .send()
                .await
                .map_err(|err| BenchError::setup("GET /v1/apps", err))?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|err| BenchError::setup("reading /v1/apps", err))?;
            run.latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            if !status.is_success() {
                return Err(BenchError::Invalid(format!(
                    "GET /v1/apps answered {status}"
                )));
            }
            run.bytes += body.len() as u64;
            pages += 1;
            let page: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|err| BenchError::setup("decoding /v1/apps", err))?;
            seen += page["apps"].as_array().map_or(0, Vec::len);
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        if seen != apps {
            return Err(BenchError::Invalid(format!(
                "a listing returned {seen} of {apps} apps"
            )));
        }
        run.pages_per_listing = pages;
    }
    Ok(run)
}

/// The `p` quantile (0..=1) of sorted values, nearest rank.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
