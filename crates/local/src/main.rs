//! `shipwatch-local`: the whole system in one process on the embedded store (or AWS, if configured):
//! the HTTP API, validation after each key write, and the sweep on a timer. Wiring only.

use std::process::ExitCode;
use std::sync::Arc;

use shipwatch_adapters::wiring::{Services, admin_token};
use shipwatch_api::{ApiState, ApiWiring};
use shipwatch_service::keys::InProcessValidation;
use tokio::net::TcpListener;

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
        // Printed once, on first start; only its hash is kept.
        eprintln!(
            "\n  shipwatch admin token (shown once, keep it safe):\n\n    {token}\n\n  \
             Create a team:  curl -X POST -H 'Authorization: Bearer {token}' \
             -H 'Content-Type: application/json' -d '{{\"name\":\"My team\"}}' \
             http://{}/v1/teams\n",
            services.settings.http_addr
        );
    }
    let router = shipwatch_api::router(ApiState::new(ApiWiring {
        stores: services.stores.clone(),
        clock: services.clock.clone(),
        deliverer: services.deliverer.clone(),
        validation: Arc::new(InProcessValidation::new(services.validator.clone())),
        sweeps: Arc::new(services.fanout_sweep(services.shard_queue.clone())),
        admin_token_hash: admin.hash,
        allow_private_destinations: services.settings.allow_private_destinations,
    }));
    let listener = TcpListener::bind(services.settings.http_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, store = ?services.settings.store,
        interval_secs = services.settings.sweep_interval.as_secs(), "shipwatch-local listening");

    let sweeper = services.sweeper.clone();
    let interval = services.settings.sweep_interval;
    let sweeps = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // `run` logs its own report.
            sweeper.run().await;
        }
    });

    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    sweeps.abort();
    tracing::info!("shipwatch-local stopped cleanly");
    Ok(())
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
