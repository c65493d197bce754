//! `dashboard`: server time to render the overview (`/`) and the history (`/history`) for one
//! team with A apps (snapshots from a real baseline sweep against the in-process fake App Store
//! Connect) and E events in its history, signed in through a real invite and session, on the
//! embedded store and on DynamoDB (moto on loopback: its figures are moto's speed, not
//! DynamoDB's, but they show how many store round trips a page costs). Sequential requests over
//! loopback; the time is the whole answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shipwatch_api::{ApiState, ApiWiring};
use shipwatch_service::keys::StreamTriggersValidation;
use shipwatch_service::members::{MemberService, NewMember};
use shipwatch_service::model::TeamId;

use crate::BenchError;
use crate::fake_asc::{FakeAscOptions, FakeAscServer};
use crate::fixtures::{SeedOptions, embedded_services, seed};
use crate::table::{Table, thousands};
use shipwatch_adapters::wiring::Services;

const EVENT_TYPES: [&str; 2] = [
    "shipwatch.app_version.state_changed",
    "shipwatch.build.processing_state_changed",
];

pub async fn run(apps: usize, events: usize, requests: usize) -> Result<Table, BenchError> {
    let mut table = Table::new(
        &format!(
            "Dashboard pages, {} apps, {} events, {requests} sequential requests each",
            thousands(apps as u64),
            thousands(events as u64)
        ),
        &["store", "page", "bytes", "p50 ms", "p99 ms", "max ms"],
    );
    let fake = FakeAscServer::start(FakeAscOptions {
        apps_per_key: apps,
        latency: Duration::ZERO,
    })
    .await?;
    let embedded = embedded_services(fake.base_url(), &[], |_| {}).await?;
    measure(
        "embedded",
        &embedded.services,
        apps,
        events,
        requests,
        &mut table,
    )
    .await?;
    let moto = shipwatch_tests::moto::moto().await;
    let stores = moto.fresh_stores("bench-dashboard").await;
    let aws = crate::fixtures::services_on(fake.base_url(), stores)?;
    measure("DynamoDB (moto)", &aws, apps, events, requests, &mut table).await?;
    Ok(table)
}

async fn measure(
    store: &str,
    services: &Services,
    apps: usize,
    events: usize,
    requests: usize,
    table: &mut Table,
) -> Result<(), BenchError> {
    let keys = seed(
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
    let key = services
        .stores
        .keys
        .get_key_by_id(&keys[0])
        .await
        .map_err(|e| BenchError::setup("reading the key", e))?
        .ok_or_else(|| BenchError::Invalid("the seeded key is missing".to_owned()))?;
    let team: TeamId = key.team_id;
    eprintln!("dashboard ({store}): writing {events} events");
    let batch: Vec<_> = (0..events)
        .map(|n| {
            shipwatch_tests::store_contract::event(
                &team,
                &format!("{}", 1_000_000 + n % apps.max(1)),
                EVENT_TYPES[n % 2],
                &format!("Event {n}"),
                n as i64,
            )
        })
        .collect();
    for chunk in batch.chunks(500) {
        services
            .stores
            .sweeps
            .append_events(chunk, &[])
            .await
            .map_err(|e| BenchError::setup("writing events", e))?;
    }
    let members = MemberService::new(
        services.stores.members.clone(),
        services.stores.sign_in_failures.clone(),
        services.clock.clone(),
    );
    let invite = members
        .invite(&team, None)
        .await
        .map_err(|e| BenchError::setup("invite", e))?;
    let (_, session) = members
        .accept_invite(
            &invite.token,
            NewMember {
                email: "bench@example.com",
                password: "bench password 1234",
                name: "Bench",
            },
        )
        .await
        .map_err(|e| BenchError::setup("member", e))?;

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
    let http = reqwest::Client::new();
    let cookie = format!("sw_session={}", session.token);
    for (label, path) in [("overview /", "/"), ("history /history", "/history")] {
        let url = format!("http://{address}{path}");
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..requests.max(1) {
            let started = Instant::now();
            let response = http
                .get(&url)
                .header("cookie", &cookie)
                .send()
                .await
                .map_err(|e| BenchError::setup("GET", e))?;
            if response.status() != 200 {
                return Err(BenchError::Invalid(format!(
                    "{path} answered {}",
                    response.status()
                )));
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| BenchError::setup("reading the page", e))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            bytes = body.len();
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        table.row(vec![
            store.to_owned(),
            label.to_owned(),
            thousands(bytes as u64),
            format!("{:.1}", at(0.5)),
            format!("{:.1}", at(0.99)),
            format!("{:.1}", at(1.0)),
        ]);
    }
    server.abort();
    Ok(())
}
