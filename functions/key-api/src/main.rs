//! Lambda entry point of the HTTP API (API Gateway HTTP API): wiring only. Key writes are validated
//! by the key-validator function, which the table's stream triggers.

use std::sync::Arc;

use shipwatch_adapters::wiring::{Services, admin_token};
use shipwatch_service::keys::StreamTriggersValidation;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = Services::from_env().await?;
    let admin = admin_token(&services.settings, &services.stores).await?;
    let router = shipwatch_service::api::router(
        services.api_state(&admin.hash, Arc::new(StreamTriggersValidation)),
    );
    lambda_http::run(router).await
}
