//! [`SecretStore`] on AWS Secrets Manager.

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use shipwatch_service::model::{SecretName, SecretValue};
use shipwatch_service::ports::{SecretStore, StoreError, StoreResult};

const NOT_FOUND: &str = "ResourceNotFoundException";
const EXISTS: &str = "ResourceExistsException";

/// Secrets Manager secrets named by [`SecretName`] (all under `shipwatch/`), string values.
#[derive(Clone, Debug)]
pub struct AwsSecretStore {
    client: aws_sdk_secretsmanager::Client,
}

impl AwsSecretStore {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}

/// Only the operation and the error code: Secrets Manager messages may echo request fields.
fn secrets_error<E: ProvideErrorMetadata, R>(
    operation: &str,
    error: &SdkError<E, R>,
) -> StoreError {
    let reason = match error {
        SdkError::ServiceError(context) => context.err().code().unwrap_or("unknown").to_owned(),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "could not reach Secrets Manager".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        _ => "request failed".to_owned(),
    };
    StoreError::Unavailable(format!("{operation}: {reason}"))
}

#[async_trait]
impl SecretStore for AwsSecretStore {
    async fn put_secret(&self, name: &SecretName, value: &SecretValue) -> StoreResult<()> {
        let created = self
            .client
            .create_secret()
            .name(name.as_str())
            .secret_string(value.expose())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(error) if error_code(&error) == Some(EXISTS) => self
                .client
                .put_secret_value()
                .secret_id(name.as_str())
                .secret_string(value.expose())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| secrets_error("replace secret", &e)),
            Err(error) => Err(secrets_error("create secret", &error)),
        }
    }

    async fn get_secret(&self, name: &SecretName) -> StoreResult<Option<SecretValue>> {
        match self
            .client
            .get_secret_value()
            .secret_id(name.as_str())
            .send()
            .await
        {
            Ok(output) => match output.secret_string {
                Some(value) => Ok(Some(SecretValue::new(value))),
                None => Err(StoreError::Corrupt("secret has no string value".to_owned())),
            },
            Err(error) if error_code(&error) == Some(NOT_FOUND) => Ok(None),
            Err(error) => Err(secrets_error("read secret", &error)),
        }
    }

    async fn delete_secret(&self, name: &SecretName) -> StoreResult<()> {
        match self
            .client
            .delete_secret()
            .secret_id(name.as_str())
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error_code(&error) == Some(NOT_FOUND) => Ok(()),
            Err(error) => Err(secrets_error("delete secret", &error)),
        }
    }
}
