//! Lambda entry point of the scheduled status sweep: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let services = shipwatch_adapters::wiring::Services::from_env().await?;
    let sweeper = services.sweeper.clone();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let sweeper = sweeper.clone();
        async move { Ok::<_, lambda_runtime::Error>(status_sweep::handle(&sweeper, event.payload).await) }
    }))
    .await
}
