//! Lambda entry point of the HTTP API (API Gateway HTTP API): wiring only. Key writes are validated
//! by the key-validator function, which the table's stream triggers.

use std::sync::Arc;

use shipwatch_adapters::wiring::{Services, admin_token};
use shipwatch_api::{ApiState, ApiWiring};
use shipwatch_service::keys::StreamTriggersValidation;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = Services::from_env().await?;
    let admin = admin_token(&services.settings, &services.stores).await?;
    let state = ApiState::new(ApiWiring {
        stores: services.stores.clone(),
        clock: services.clock.clone(),
        deliverer: services.deliverer.clone(),
        validation: Arc::new(StreamTriggersValidation),
        sweeps: Arc::new(services.fanout_sweep(services.shard_queue.clone())),
        admin_token_hash: admin.hash,
        allow_private_destinations: services.settings.allow_private_destinations,
    })
    .with_push(services.push.clone())
    .with_push_receiver_if(services.push_receiver(services.shard_queue.clone()))
    .with_public_url(services.settings.public_url.clone());
    lambda_http::run(shipwatch_api::router(state)).await
}
