//! App Store Connect webhooks (`/v1/webhooks`, `/v1/apps/{id}/webhooks`): what push
//! provisioning reads and writes. Paths, bodies and enums follow the 4.4.1 OpenAPI spec
//! (`webhooks_createInstance`, `webhooks_updateInstance`, `webhooks_deleteInstance`,
//! `apps_webhooks_getToManyRelated`, `webhookPings_createInstance`,
//! `webhooks_deliveries_getToManyRelated`, `webhookDeliveries_createInstance`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::client::AscSession;
use super::error::AscError;
use super::jsonapi::{PrimaryData, Resource};

/// `fields[webhooks]` read back (never the secret: Apple does not return it).
const WEBHOOK_FIELDS: &str = "enabled,eventTypes,name,url,app";
/// The spec's maximum `limit` of `GET /v1/apps/{id}/webhooks` (and of a webhook's deliveries).
const WEBHOOKS_PAGE_LIMIT: &str = "200";
/// `fields[webhookDeliveries]` read back (not the request or response bodies).
const DELIVERY_FIELDS: &str = "createdDate,deliveryState,errorMessage,redelivery,response,event";

/// One delivery of a webhook's notification, as App Store Connect reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: String,
    /// The `webhookEvents` id: a delivery and its redeliveries share it.
    pub event_id: Option<String>,
    /// `SUCCEEDED`, `FAILED` or `PENDING`, as Apple spells it.
    pub state: String,
    pub created_date: Option<String>,
    pub error_message: Option<String>,
    /// The HTTP status the receiver answered, when it answered at all.
    pub http_status: Option<u16>,
    /// This delivery was itself a redelivery.
    pub redelivery: bool,
    /// The delivered event was a ping (from the included `webhookEvents`).
    pub ping: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryAttributes {
    delivery_state: Option<String>,
    created_date: Option<String>,
    error_message: Option<String>,
    #[serde(default)]
    redelivery: Option<bool>,
    response: Option<DeliveryResponse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryResponse {
    http_status_code: Option<u16>,
}

#[derive(Deserialize)]
struct EventAttributes {
    ping: Option<bool>,
}

/// One webhook as Apple shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub url: String,
    pub enabled: bool,
    /// `WebhookEventType` values, as Apple spells them.
    pub event_types: Vec<String>,
}

/// What a new webhook is made of. `Debug` hides the secret.
#[derive(Clone)]
pub struct NewWebhook {
    pub app_id: String,
    pub name: String,
    pub url: String,
    pub secret: String,
    pub event_types: Vec<String>,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("app_id", &self.app_id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .finish_non_exhaustive()
    }
}

/// A change to one of our webhooks (`None` leaves an attribute as it is).
#[derive(Clone, Default)]
pub struct WebhookChange {
    pub enabled: Option<bool>,
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChange")
            .field("enabled", &self.enabled)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAttributes {
    name: Option<String>,
    url: Option<String>,
    enabled: Option<bool>,
    #[serde(default)]
    event_types: Vec<String>,
}

fn webhook_from(resource: &Resource) -> Result<Webhook, AscError> {
    let attributes: WebhookAttributes = resource.attributes()?;
    Ok(Webhook {
        id: resource.id.clone(),
        name: attributes.name.unwrap_or_default(),
        url: attributes.url.unwrap_or_default(),
        enabled: attributes.enabled.unwrap_or(false),
        event_types: attributes.event_types,
    })
}

fn one_webhook(document: Option<super::jsonapi::Document>) -> Result<Webhook, AscError> {
    match document.map(|d| d.data) {
        Some(PrimaryData::One(resource)) => webhook_from(&resource),
        _ => Err(AscError::Decode("expected one webhook in `data`".into())),
    }
}

impl AscSession {
    /// `GET /v1/apps?fields[apps]=name&limit=200`, all pages: the ids of the key's apps.
    pub async fn list_app_ids(&self) -> Result<Vec<String>, AscError> {
        let url = self.endpoint("/v1/apps", &[("fields[apps]", "name"), ("limit", "200")]);
        let (resources, _) = self.get_all_pages(url).await?;
        Ok(resources.into_iter().map(|r| r.id).collect())
    }

    /// `GET /v1/apps/{id}/webhooks`: every webhook of the app (ours and others'), all pages.
    pub async fn list_app_webhooks(&self, app_id: &str) -> Result<Vec<Webhook>, AscError> {
        let mut url = self.endpoint_with_segments(&["v1", "apps", app_id, "webhooks"]);
        url.query_pairs_mut()
            .append_pair("fields[webhooks]", WEBHOOK_FIELDS)
            .append_pair("limit", WEBHOOKS_PAGE_LIMIT);
        let (resources, _) = self.get_all_pages(url).await?;
        resources.iter().map(webhook_from).collect()
    }

    /// `POST /v1/webhooks`, enabled, for one app.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<Webhook, AscError> {
        let url = self.endpoint("/v1/webhooks", &[]);
        let body = json!({
            "data": {
                "type": "webhooks",
                "attributes": {
                    "name": new.name,
                    "url": new.url,
                    "secret": new.secret,
                    "eventTypes": new.event_types,
                    "enabled": true,
                },
                "relationships": {
                    "app": { "data": { "type": "apps", "id": new.app_id } }
                }
            }
        });
        one_webhook(
            self.send_document(reqwest::Method::POST, &url, Some(&body))
                .await?,
        )
    }

    /// `PATCH /v1/webhooks/{id}` (the app of a webhook cannot change).
    pub async fn update_webhook(
        &self,
        webhook_id: &str,
        change: &WebhookChange,
    ) -> Result<Webhook, AscError> {
        let url = self.endpoint_with_segments(&["v1", "webhooks", webhook_id]);
        let mut attributes = serde_json::Map::new();
        if let Some(enabled) = change.enabled {
            attributes.insert("enabled".into(), Value::Bool(enabled));
        }
        if let Some(url) = &change.url {
            attributes.insert("url".into(), Value::String(url.clone()));
        }
        if let Some(event_types) = &change.event_types {
            attributes.insert("eventTypes".into(), json!(event_types));
        }
        if let Some(secret) = &change.secret {
            attributes.insert("secret".into(), Value::String(secret.clone()));
        }
        let body = json!({
            "data": { "type": "webhooks", "id": webhook_id, "attributes": attributes }
        });
        one_webhook(
            self.send_document(reqwest::Method::PATCH, &url, Some(&body))
                .await?,
        )
    }

    /// `POST /v1/webhookPings`: App Store Connect sends the webhook a ping.
    pub async fn ping_webhook(&self, webhook_id: &str) -> Result<(), AscError> {
        let url = self.endpoint("/v1/webhookPings", &[]);
        let body = json!({
            "data": {
                "type": "webhookPings",
                "relationships": {
                    "webhook": { "data": { "type": "webhooks", "id": webhook_id } }
                }
            }
        });
        self.send_document(reqwest::Method::POST, &url, Some(&body))
            .await
            .map(|_| ())
    }

    /// `GET /v1/webhooks/{id}/deliveries` created at or after `since` (RFC 3339), all pages,
    /// with the event each delivered (its id, and whether it was a ping).
    pub async fn list_deliveries(
        &self,
        webhook_id: &str,
        since: &str,
    ) -> Result<Vec<WebhookDelivery>, AscError> {
        let mut url = self.endpoint_with_segments(&["v1", "webhooks", webhook_id, "deliveries"]);
        url.query_pairs_mut()
            .append_pair("filter[createdDateGreaterThanOrEqualTo]", since)
            .append_pair("fields[webhookDeliveries]", DELIVERY_FIELDS)
            .append_pair("include", "event")
            .append_pair("fields[webhookEvents]", "ping")
            .append_pair("limit", WEBHOOKS_PAGE_LIMIT);
        let (resources, included) = self.get_all_pages(url).await?;
        resources
            .iter()
            .map(|resource| {
                let attributes: DeliveryAttributes = resource.attributes()?;
                let event = resource.to_one("event");
                let ping = event
                    .and_then(|link| included.get(link))
                    .map(|event| event.attributes::<EventAttributes>())
                    .transpose()?
                    .and_then(|event| event.ping)
                    .unwrap_or(false);
                Ok(WebhookDelivery {
                    id: resource.id.clone(),
                    event_id: event.map(|link| link.id.clone()),
                    state: attributes.delivery_state.unwrap_or_default(),
                    created_date: attributes.created_date,
                    error_message: attributes.error_message,
                    http_status: attributes.response.and_then(|r| r.http_status_code),
                    redelivery: attributes.redelivery.unwrap_or(false),
                    ping,
                })
            })
            .collect()
    }

    /// `POST /v1/webhookDeliveries` with `template`: App Store Connect sends that delivery's
    /// notification again (same `data.id`).
    pub async fn redeliver(&self, delivery_id: &str) -> Result<(), AscError> {
        let url = self.endpoint("/v1/webhookDeliveries", &[]);
        let body = json!({
            "data": {
                "type": "webhookDeliveries",
                "relationships": {
                    "template": { "data": { "type": "webhookDeliveries", "id": delivery_id } }
                }
            }
        });
        self.send_document(reqwest::Method::POST, &url, Some(&body))
            .await
            .map(|_| ())
    }

    /// `DELETE /v1/webhooks/{id}`; a webhook already gone counts as deleted.
    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<(), AscError> {
        let url = self.endpoint_with_segments(&["v1", "webhooks", webhook_id]);
        match self
            .send_document(reqwest::Method::DELETE, &url, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(AscError::NotFound { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }
}
