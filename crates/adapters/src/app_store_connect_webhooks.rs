//! App Store Connect webhooks behind the push port ([`shipwatch_service::push::WebhookAdmin`]):
//! `GET /v1/apps` (ids), `GET /v1/apps/{id}/webhooks`, `POST /v1/webhooks`,
//! `PATCH /v1/webhooks/{id}`, `DELETE /v1/webhooks/{id}`, `POST /v1/webhookPings`,
//! `GET /v1/webhooks/{id}/deliveries`, `POST /v1/webhookDeliveries`. Apple's 403 `FORBIDDEN_ERROR` on
//! these means the key's role may not manage webhooks (Admin and App Manager may). The same
//! adapter reads the feedback submissions those webhooks announce
//! ([`shipwatch_service::push::feedback::FeedbackReader`]).

use async_trait::async_trait;
use shipwatch_service::accounts::{AccountError, Credentials};
use shipwatch_service::domain::event_data::FeedbackKind;
use shipwatch_service::push::feedback::{FeedbackReader, FeedbackSubmission};
use shipwatch_service::push::{
    Delivery, DeliveryState, EVENT_TYPES, RemoteWebhook, WebhookAdmin, WebhookRepair, WebhookSpec,
};
use shipwatch_shared::asc::{AscClient, AscSession, NewWebhook, Webhook, WebhookChange};

use crate::app_store_connect::account_error;

/// The name shipwatch gives its webhooks in App Store Connect.
pub const WEBHOOK_NAME: &str = "shipwatch";

#[derive(Clone)]
pub struct AscWebhookAdmin {
    client: AscClient,
}

impl AscWebhookAdmin {
    pub fn new(client: AscClient) -> Self {
        Self { client }
    }

    /// Webhooks are App Store Connect's only; other stores' credentials never reach here
    /// (`PushService` skips their keys), and would be refused rather than sent to Apple.
    fn session(&self, credentials: &Credentials) -> Result<AscSession, AccountError> {
        let Credentials::AppStoreConnect(credentials) = credentials else {
            return Err(AccountError::Unavailable(format!(
                "credentials of {} reached the App Store Connect webhook adapter",
                credentials.platform().as_str()
            )));
        };
        Ok(self.client.session(credentials.clone()))
    }
}

fn remote(webhook: Webhook) -> RemoteWebhook {
    RemoteWebhook {
        id: webhook.id,
        url: webhook.url,
        enabled: webhook.enabled,
        event_types: webhook.event_types,
    }
}

fn event_types() -> Vec<String> {
    EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect()
}

#[async_trait]
impl WebhookAdmin for AscWebhookAdmin {
    async fn app_ids(&self, credentials: &Credentials) -> Result<Vec<String>, AccountError> {
        self.session(credentials)?
            .list_app_ids()
            .await
            .map_err(account_error)
    }

    async fn list(
        &self,
        credentials: &Credentials,
        app_id: &str,
    ) -> Result<Vec<RemoteWebhook>, AccountError> {
        let listed = self
            .session(credentials)?
            .list_app_webhooks(app_id)
            .await
            .map_err(account_error)?;
        Ok(listed.into_iter().map(remote).collect())
    }

    async fn create(
        &self,
        credentials: &Credentials,
        spec: &WebhookSpec,
    ) -> Result<RemoteWebhook, AccountError> {
        let new = NewWebhook {
            app_id: spec.app_id.clone(),
            name: WEBHOOK_NAME.to_owned(),
            url: spec.url.clone(),
            secret: spec.secret.expose().to_owned(),
            event_types: event_types(),
        };
        self.session(credentials)?
            .create_webhook(&new)
            .await
            .map(remote)
            .map_err(account_error)
    }

    async fn repair(
        &self,
        credentials: &Credentials,
        webhook_id: &str,
        repair: &WebhookRepair,
    ) -> Result<RemoteWebhook, AccountError> {
        let change = WebhookChange {
            enabled: Some(true),
            event_types: Some(event_types()),
            url: repair.rekey.as_ref().map(|(url, _)| url.clone()),
            secret: repair
                .rekey
                .as_ref()
                .map(|(_, secret)| secret.expose().to_owned()),
        };
        self.session(credentials)?
            .update_webhook(webhook_id, &change)
            .await
            .map(remote)
            .map_err(account_error)
    }

    async fn delete(
        &self,
        credentials: &Credentials,
        webhook_id: &str,
    ) -> Result<(), AccountError> {
        self.session(credentials)?
            .delete_webhook(webhook_id)
            .await
            .map_err(account_error)
    }

    async fn ping(&self, credentials: &Credentials, webhook_id: &str) -> Result<(), AccountError> {
        self.session(credentials)?
            .ping_webhook(webhook_id)
            .await
            .map_err(account_error)
    }

    async fn deliveries(
        &self,
        credentials: &Credentials,
        webhook_id: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Delivery>, AccountError> {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let listed = self
            .session(credentials)?
            .list_deliveries(webhook_id, &since)
            .await
            .map_err(account_error)?;
        Ok(listed
            .into_iter()
            .map(|d| Delivery {
                state: match d.state.as_str() {
                    "SUCCEEDED" => DeliveryState::Succeeded,
                    "FAILED" => DeliveryState::Failed,
                    _ => DeliveryState::Pending,
                },
                detail: match (d.http_status, d.error_message) {
                    (Some(status), Some(message)) => Some(format!("HTTP {status}: {message}")),
                    (Some(status), None) => Some(format!("HTTP {status}")),
                    (None, message) => message,
                },
                id: d.id,
                event_id: d.event_id,
                ping: d.ping,
            })
            .collect())
    }

    async fn redeliver(
        &self,
        credentials: &Credentials,
        delivery_id: &str,
    ) -> Result<(), AccountError> {
        self.session(credentials)?
            .redeliver(delivery_id)
            .await
            .map_err(account_error)
    }
}

#[async_trait]
impl FeedbackReader for AscWebhookAdmin {
    async fn submission(
        &self,
        credentials: &Credentials,
        kind: FeedbackKind,
        submission_id: &str,
    ) -> Result<Option<FeedbackSubmission>, AccountError> {
        let kind = match kind {
            FeedbackKind::Crash => shipwatch_shared::asc::FeedbackKind::Crash,
            FeedbackKind::Screenshot => shipwatch_shared::asc::FeedbackKind::Screenshot,
        };
        let read = self
            .session(credentials)?
            .get_feedback_submission(kind, submission_id)
            .await
            .map_err(account_error)?;
        Ok(read.map(|s| FeedbackSubmission {
            created_at: s.created_date,
            comment: s.comment,
            device_model: s.device_model,
            os_version: s.os_version,
            build_id: s.build.as_ref().map(|b| b.id.clone()),
            build_version: s.build.and_then(|b| b.version),
        }))
    }
}
