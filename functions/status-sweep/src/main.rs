//! Lambda entry point of the status sweep (schedule and SQS shard batches): wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shipwatch_adapters::wiring::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let services = Services::from_env().await?;
    let sweep = services.fanout_sweep(services.shard_queue.clone());
    let push = services.push.clone();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let sweep = sweep.clone();
        let push = push.clone();
        async move {
            // The schedule (not an SQS batch) also runs the hourly push health check.
            let scheduled = event.payload.get("Records").is_none();
            let answer = status_sweep::handle(&sweep, event.payload)
                .await
                .map_err(lambda_runtime::Error::from);
            if scheduled {
                push.check_due().await;
            }
            answer
        }
    }))
    .await
}
