//! `shipwatch-local`: the whole system in one process on the embedded store (or AWS, if configured):
//! the HTTP API, validation after each key write, and the sweep on a timer. Wiring only.

use std::process::ExitCode;
use std::sync::Arc;

use shipwatch_adapters::wiring::{Services, admin_token};
use shipwatch_api::{ApiState, ApiWiring};
use shipwatch_service::keys::InProcessValidation;
use tokio::net::TcpListener;

mod first_run;
mod serve;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "shipwatch-local stopped");
            eprintln!("shipwatch-local: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let services = Services::from_env().await?;
    let admin = admin_token(&services.settings, &services.stores).await?;
    if let Some(token) = &admin.generated {
        // First start: a default team and the one-time link to its dashboard, printed once.
        let teams = shipwatch_service::teams::TeamService::new(
            services.stores.teams.clone(),
            services.stores.members.clone(),
            services.clock.clone(),
        );
        let members = shipwatch_service::members::MemberService::new(
            services.stores.members.clone(),
            services.stores.sign_in_failures.clone(),
            services.clock.clone(),
        );
        let setup = first_run::setup(&teams, &members, services.settings.http_addr).await?;
        eprintln!(
            "\n  shipwatch dashboard: {}\n\n  Open this one-time setup link to create your account \
             (valid 7 days):\n\n    {}\n\n  Team \"My team\" API token (shown once):  {}\n",
            setup.dashboard, setup.setup_link, setup.team_token
        );
        // Printed once, on first start; only its hash is kept.
        eprintln!(
            "\n  shipwatch admin token (shown once, keep it safe):\n\n    {token}\n\n  \
             Create a team:  curl -X POST -H 'Authorization: Bearer {token}' \
             -H 'Content-Type: application/json' -d '{{\"name\":\"My team\"}}' \
             http://{}/v1/teams\n",
            services.settings.http_addr
        );
    }
    let router = shipwatch_api::router(
        ApiState::new(ApiWiring {
            stores: services.stores.clone(),
            clock: services.clock.clone(),
            deliverer: services.deliverer.clone(),
            validation: Arc::new(InProcessValidation::new(services.validator.clone())),
            sweeps: Arc::new(services.fanout_sweep(services.shard_queue.clone())),
            admin_token_hash: admin.hash,
            allow_private_destinations: services.settings.allow_private_destinations,
        })
        .with_push(services.push.clone())
        .with_push_receiver_if(services.push_receiver(services.shard_queue.clone()))
        .with_public_url(services.settings.public_url.clone()),
    );
    let listener = TcpListener::bind(services.settings.http_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, store = ?services.settings.store,
        interval_secs = services.settings.sweep_interval.as_secs(), "shipwatch-local listening");

    let sweeper = services.sweeper.clone();
    let push = services.push.clone();
    let interval = services.settings.sweep_interval;
    let (stop_sweeps, mut stopping) = tokio::sync::watch::channel(false);
    let deliveries = tokio::spawn(delivery_worker(
        services.sweeper.outbox().clone(),
        stop_sweeps.subscribe(),
    ));
    let sweeps = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopping.changed() => break,
            }
            // A sweep that has started is finished, never cut off: a delivery sent but not yet
            // recorded would be sent again after its lease. `run` logs its own report.
            sweeper.run().await;
            // Hourly per key: webhooks exist, are enabled and point here (new apps get one).
            push.check_due().await;
            if *stopping.borrow() {
                break;
            }
        }
    });

    serve::serve(
        listener,
        router,
        serve::ServeLimits::default(),
        shutdown_signal(),
    )
    .await;
    drain(stop_sweeps, [sweeps, deliveries]).await;
    tracing::info!("shipwatch-local stopped cleanly");
    Ok(())
}

/// How long a stopping process waits for the sweep (and its deliveries) under way.
const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// How often the delivery worker looks for due deliveries (the first retry is 5 s after a
/// failure; a pass that finds nothing is one indexed query).
const DELIVERY_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends deliveries as they fall due, between sweeps too, until told to stop (it finishes the pass
/// under way first).
async fn delivery_worker(
    outbox: shipwatch_service::outbox::Outbox,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(DELIVERY_POLL) => {}
            _ = stopping.changed() => break,
        }
        outbox.deliver_due().await;
        if *stopping.borrow() {
            break;
        }
    }
}

/// Lets the sweep and the delivery pass under way finish (their deliveries recorded), starts no
/// new one, then returns.
async fn drain(stop: tokio::sync::watch::Sender<bool>, tasks: [tokio::task::JoinHandle<()>; 2]) {
    let _ = stop.send(true);
    tracing::info!("stopping: finishing the sweep and deliveries under way, if any");
    let aborts: Vec<_> = tasks.iter().map(|task| task.abort_handle()).collect();
    let finished = futures_util::future::join_all(tasks);
    if tokio::time::timeout(DRAIN_DEADLINE, finished)
        .await
        .is_err()
    {
        // Still claimed deliveries become due again when their lease runs out.
        tracing::warn!(
            deadline_secs = DRAIN_DEADLINE.as_secs(),
            "the sweep did not finish in time; stopping anyway"
        );
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

/// SIGTERM (service managers, containers) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
