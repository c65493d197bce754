//! Lambda entry point of the status sweep (schedule and SQS shard batches): wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shipwatch_adapters::wiring::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let services = Services::from_env().await?;
    let sweep = services.fanout_sweep(services.shard_queue.clone());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let sweep = sweep.clone();
        async move {
            status_sweep::handle(&sweep, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
