//! The fake's webhook deliveries, as App Store Connect makes and reports them: every notification
//! the fake sends (the control call [`FakeAsc::deliver_notification`], a ping from
//! `POST /v1/webhookPings`, a redelivery from `POST /v1/webhookDeliveries`) is signed with the
//! webhook's secret, posted to the path of its registered URL on the delivery host (the test
//! app's address, known only after the public URL was chosen), and recorded with its outcome
//! for `GET /v1/webhooks/{id}/deliveries`. A receiver that answers non-2xx, or cannot be reached,
//! makes a `FAILED` delivery with the status or the connection error; without a delivery host
//! (a test that never receives) a delivery stays `PENDING`.

use super::*;

/// One delivery as the fake records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeDelivery {
    pub id: String,
    pub webhook_id: String,
    pub created_date: DateTime<Utc>,
    /// `SUCCEEDED`, `FAILED` or `PENDING` (not sent yet).
    pub state: String,
    pub http_status: Option<u16>,
    pub error_message: Option<String>,
    pub redelivery: bool,
    pub ping: bool,
    /// The `webhookEvents` id (the same for a delivery and its redeliveries).
    pub event_id: String,
    /// The `eventType` of the event (`None` for a ping).
    pub event_type: Option<String>,
    pub payload: Value,
}

impl FakeAsc {
    /// Where deliveries go from now on (`deliver_notification` sets it too).
    pub fn set_delivery_host(&self, host: &str) {
        self.shared.world().delivery_host = Some(host.trim_end_matches('/').to_owned());
    }

    /// Every delivery to `webhook_id`, oldest first.
    pub fn deliveries_of(&self, webhook_id: &str) -> Vec<FakeDelivery> {
        self.shared
            .world()
            .deliveries
            .iter()
            .filter(|d| d.webhook_id == webhook_id)
            .cloned()
            .collect()
    }

    /// Waits until `webhook_id` has `count` deliveries that are no longer pending.
    pub async fn wait_for_deliveries(&self, webhook_id: &str, count: usize) -> Vec<FakeDelivery> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let done: Vec<FakeDelivery> = self
                .deliveries_of(webhook_id)
                .into_iter()
                .filter(|d| d.state != "PENDING")
                .collect();
            if done.len() >= count {
                return done;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {count} deliveries to {webhook_id} were made",
                done.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The subscription spelling of a posted `data.type` (`buildUploadStateUpdated` ->
/// `BUILD_UPLOAD_STATE_UPDATED`), as `webhookEvents.eventType` shows it.
fn subscription_event_type(posted: &str) -> String {
    let mut out = String::new();
    for (i, c) in posted.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What one delivery is about to send.
pub(super) struct Outgoing {
    pub webhook_id: String,
    pub payload: Value,
    pub redelivery: bool,
    pub ping: bool,
    pub event_id: String,
    /// Overrides `x-apple-signature` (`Some("")`: none).
    pub signature: Option<String>,
}

impl Outgoing {
    pub fn new(webhook_id: &str, payload: Value) -> Self {
        let ping = payload["data"]["type"] == "webhookPingCreated";
        Self {
            webhook_id: webhook_id.to_owned(),
            payload,
            redelivery: false,
            ping,
            event_id: uuid::Uuid::new_v4().to_string(),
            signature: None,
        }
    }
}

/// Records the delivery as pending and returns its id, or `None` when no such webhook exists.
pub(super) fn record_pending(shared: &Shared, outgoing: &Outgoing) -> Option<String> {
    let now = shared.now();
    let mut world = shared.world();
    world
        .accounts
        .values()
        .flat_map(|a| a.webhooks.iter())
        .find(|w| w.id == outgoing.webhook_id)?;
    let id = uuid::Uuid::new_v4().to_string();
    let event_type = outgoing.payload["data"]["type"]
        .as_str()
        .filter(|_| !outgoing.ping)
        .map(subscription_event_type);
    world.deliveries.push(FakeDelivery {
        id: id.clone(),
        webhook_id: outgoing.webhook_id.clone(),
        created_date: now,
        state: "PENDING".to_owned(),
        http_status: None,
        error_message: None,
        redelivery: outgoing.redelivery,
        ping: outgoing.ping,
        event_id: outgoing.event_id.clone(),
        event_type,
        payload: outgoing.payload.clone(),
    });
    Some(id)
}

/// Signs and posts one delivery recorded by [`record_pending`], then records its outcome.
/// Returns the receiver's status (0 when it could not be reached) and body.
pub(super) async fn send(shared: &Shared, delivery_id: &str, outgoing: Outgoing) -> (u16, String) {
    use hmac::Mac as _;
    let (webhook, host) = {
        let world = shared.world();
        let webhook = world
            .accounts
            .values()
            .flat_map(|a| a.webhooks.iter())
            .find(|w| w.id == outgoing.webhook_id)
            .cloned();
        (webhook, world.delivery_host.clone())
    };
    let outcome = match (webhook, host) {
        (None, _) => Err("the webhook no longer exists".to_owned()),
        // Nowhere to send yet (a test that never receives): it stays pending, as a delivery
        // Apple has not made yet does.
        (Some(_), None) => return (0, String::new()),
        (Some(webhook), Some(host)) => {
            let raw = serde_json::to_vec(&outgoing.payload).expect("JSON body");
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(webhook.secret.as_bytes())
                .expect("HMAC key");
            mac.update(&raw);
            let computed = format!("hmacsha256={}", hex::encode(mac.finalize().into_bytes()));
            let path = url::Url::parse(&webhook.url)
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            let mut request = reqwest::Client::new()
                .post(format!("{host}{path}"))
                .header("content-type", "application/json")
                .timeout(Duration::from_secs(10))
                .body(raw);
            match outgoing.signature.as_deref() {
                None => request = request.header("x-apple-signature", computed),
                Some("") => {}
                Some(other) => request = request.header("x-apple-signature", other),
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    Ok((status, response.text().await.unwrap_or_default()))
                }
                Err(err) => Err(format!("the connection failed: {err}")),
            }
        }
    };
    let mut world = shared.world();
    let Some(delivery) = world.deliveries.iter_mut().find(|d| d.id == delivery_id) else {
        return (0, String::new());
    };
    match outcome {
        Ok((status, body)) => {
            delivery.http_status = Some(status);
            if (200..300).contains(&status) {
                delivery.state = "SUCCEEDED".to_owned();
            } else {
                delivery.state = "FAILED".to_owned();
                delivery.error_message = Some(format!("The endpoint answered HTTP {status}."));
            }
            (status, body)
        }
        Err(message) => {
            delivery.state = "FAILED".to_owned();
            delivery.error_message = Some(message);
            (0, String::new())
        }
    }
}

/// Records and sends `outgoing` in the background (Apple answers the API call first).
pub(super) fn send_later(shared: &Arc<Shared>, outgoing: Outgoing) -> Option<String> {
    let id = record_pending(shared, &outgoing)?;
    let (shared, delivery_id) = (shared.clone(), id.clone());
    tokio::spawn(async move {
        send(&shared, &delivery_id, outgoing).await;
    });
    Some(id)
}

fn delivery_resource(context: &Context<'_>, delivery: &FakeDelivery) -> Value {
    let event = json!({
        "data": { "type": "webhookEvents", "id": delivery.event_id },
    });
    resource(
        context.request,
        context,
        "webhookDeliveries",
        &delivery.id,
        vec![
            ("createdDate", Some(date(&delivery.created_date))),
            ("deliveryState", Some(json!(delivery.state))),
            (
                "errorMessage",
                delivery.error_message.as_ref().map(|m| json!(m)),
            ),
            ("redelivery", Some(json!(delivery.redelivery))),
            (
                "sentDate",
                (delivery.state != "PENDING").then(|| date(&delivery.created_date)),
            ),
            (
                "request",
                Some(json!({ "url": format!("{}/v1/push", context.base_url) })),
            ),
            (
                "response",
                delivery
                    .http_status
                    .map(|status| json!({ "httpStatusCode": status })),
            ),
        ],
        vec![("event", event)],
    )
}

fn event_resource(context: &Context<'_>, delivery: &FakeDelivery) -> Value {
    resource(
        context.request,
        context,
        "webhookEvents",
        &delivery.event_id,
        vec![
            ("eventType", delivery.event_type.as_ref().map(|t| json!(t))),
            ("ping", Some(json!(delivery.ping))),
            ("createdDate", Some(date(&delivery.created_date))),
            ("payload", Some(json!(delivery.payload.to_string()))),
        ],
        vec![],
    )
}

/// `GET /v1/webhooks/{id}/deliveries` of `webhook_id`, filtered and paged as the query says.
pub(super) fn deliveries_document(
    context: &Context<'_>,
    deliveries: &[FakeDelivery],
    webhook_id: &str,
) -> Value {
    let request = context.request;
    let since = request
        .filters
        .get("createdDateGreaterThanOrEqualTo")
        .and_then(|v| v.first())
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok());
    let before = request
        .filters
        .get("createdDateLessThan")
        .and_then(|v| v.first())
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok());
    let matching: Vec<&FakeDelivery> = deliveries
        .iter()
        .filter(|d| d.webhook_id == webhook_id)
        .filter(|d| request.filter_allows("deliveryState", &d.state))
        .filter(|d| since.is_none_or(|since| d.created_date >= since))
        .filter(|d| before.is_none_or(|before| d.created_date < before))
        .collect();
    let page = request.page(&matching);
    let included: Vec<Value> = if request.include.contains("event") {
        page.iter().map(|d| event_resource(context, d)).collect()
    } else {
        Vec::new()
    };
    let data: Vec<Value> = page.iter().map(|d| delivery_resource(context, d)).collect();
    let mut document = context.collection(Vec::new(), included, request.offset, request.limit);
    document["data"] = Value::Array(data);
    document["meta"]["paging"]["total"] = json!(matching.len());
    if request.offset + request.limit < matching.len() {
        document["links"]["next"] = json!(context.next_link(request.offset + request.limit));
    }
    document
}

/// The 201 answer to `POST /v1/webhookDeliveries` (the new delivery, still pending).
pub(super) fn created_delivery_document(context: &Context<'_>, delivery: &FakeDelivery) -> Value {
    json!({
        "data": delivery_resource(context, delivery),
        "links": { "self": format!("{}/v1/webhookDeliveries", context.base_url) },
    })
}
