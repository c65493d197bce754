//! Lambda entry point of the key validator: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let services = shipwatch_adapters::wiring::Services::from_env().await?;
    let validator = services.validator.clone();
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::dynamodb::Event>| {
            let validator = validator.clone();
            async move {
                Ok::<_, lambda_runtime::Error>(
                    key_validator::handle(&validator, event.payload).await,
                )
            }
        },
    ))
    .await
}
