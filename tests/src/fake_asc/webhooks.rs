//! The fake's webhook resources (`POST/PATCH/DELETE /v1/webhooks`, `GET /v1/apps/{id}/webhooks`),
//! bodies validated against the spec's request schemas, and the role of each key: a Developer
//! key is answered `403 FORBIDDEN_ERROR` on every webhook call, as Apple answers a role that may
//! not manage webhooks. Apple allows ten webhooks per app and never returns a secret.

use super::*;

/// Apple's limit of webhooks per app.
pub const MAX_WEBHOOKS_PER_APP: usize = 10;

/// The App Store Connect role of a key (Apple does not report it; it shows in what is allowed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FakeRole {
    #[default]
    Admin,
    AppManager,
    Developer,
}

impl FakeRole {
    fn may_manage_webhooks(self) -> bool {
        matches!(self, Self::Admin | Self::AppManager)
    }
}

/// One webhook as the fake stores it (the secret included, so a test can sign as Apple does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeWebhook {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub url: String,
    pub secret: String,
    pub enabled: bool,
    pub event_types: Vec<String>,
}

impl FakeAsc {
    pub fn set_role(&self, key_id: &KeyId, role: FakeRole) {
        self.with_key(key_id, |key| key.role = role);
    }

    /// Every webhook of an app, in creation order.
    pub fn webhooks_of(&self, app_id: &str) -> Vec<FakeWebhook> {
        let world = self.shared.world();
        world
            .accounts
            .values()
            .flat_map(|a| a.webhooks.iter())
            .filter(|w| w.app_id == app_id)
            .cloned()
            .collect()
    }

    /// Adds a webhook someone else made (shipwatch must leave it alone).
    pub fn add_foreign_webhook(&self, app_id: &str, url: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut world = self.shared.world();
        account_of_app(&mut world, app_id)
            .webhooks
            .push(FakeWebhook {
                id: id.clone(),
                app_id: app_id.to_owned(),
                name: "someone else's".to_owned(),
                url: url.to_owned(),
                secret: "foreign-secret".to_owned(),
                enabled: true,
                event_types: vec!["BUILD_UPLOAD_STATE_UPDATED".to_owned()],
            });
        id
    }

    /// Changes a webhook behind shipwatch's back (as a person in App Store Connect, or Apple
    /// disabling it after failed deliveries, would).
    pub fn change_webhook(&self, webhook_id: &str, change: impl FnOnce(&mut FakeWebhook)) {
        let mut world = self.shared.world();
        let webhook = world
            .accounts
            .values_mut()
            .flat_map(|a| a.webhooks.iter_mut())
            .find(|w| w.id == webhook_id)
            .unwrap_or_else(|| panic!("no webhook {webhook_id}"));
        change(webhook);
    }

    /// Deletes a webhook behind shipwatch's back.
    pub fn remove_webhook(&self, webhook_id: &str) {
        let mut world = self.shared.world();
        for account in world.accounts.values_mut() {
            account.webhooks.retain(|w| w.id != webhook_id);
        }
    }
}

fn webhook_resource(base_url: &str, webhook: &FakeWebhook) -> Value {
    json!({
        "type": "webhooks",
        "id": webhook.id,
        "attributes": {
            "enabled": webhook.enabled,
            "eventTypes": webhook.event_types,
            "name": webhook.name,
            "url": webhook.url,
        },
        "relationships": {
            "app": { "data": { "type": "apps", "id": webhook.app_id } },
            "deliveries": { "links": {
                "self": format!("{base_url}/v1/webhooks/{}/relationships/deliveries", webhook.id),
                "related": format!("{base_url}/v1/webhooks/{}/deliveries", webhook.id),
            }},
        },
        "links": { "self": format!("{base_url}/v1/webhooks/{}", webhook.id) },
    })
}

fn invalid_body(problems: Vec<String>) -> Response {
    error_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        "ENTITY_UNPROCESSABLE",
        "The request entity is not valid.",
        &problems.join("; "),
        None,
    )
}

fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Answers the webhook paths; `None` for every other path (left to the read-only part).
pub(super) fn answer(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    key_id: &str,
    issuer_id: &str,
    body: &[u8],
) -> Option<Response> {
    let is_webhooks = path == "/v1/webhooks"
        || path == "/v1/webhookPings"
        || path == "/v1/webhookDeliveries"
        || path.starts_with("/v1/webhooks/")
        || (path.starts_with("/v1/apps/") && path.ends_with("/webhooks"));
    if !is_webhooks {
        return None;
    }
    let operation = spec::find_operation(method.as_str(), path)?;
    let role = shared
        .world()
        .keys
        .get(key_id)
        .map(|k| k.role)
        .unwrap_or_default();
    if !role.may_manage_webhooks() {
        return Some(forbidden());
    }
    if let Err(problem) = spec::validate_query(&operation, query) {
        return Some(error_response(
            StatusCode::BAD_REQUEST,
            "PARAMETER_ERROR.INVALID",
            "A parameter has an invalid value",
            &problem.detail,
            Some(&problem.parameter),
        ));
    }
    let parsed_body = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => value,
            Err(e) => return Some(invalid_body(vec![format!("not JSON: {e}")])),
        }
    };
    let base_url = shared.base_url.clone();
    if let Some(answer) = delivery_answer(
        shared,
        method.as_str(),
        &operation.template,
        path,
        query,
        issuer_id,
        &parsed_body,
    ) {
        return Some(answer);
    }
    let mut world = shared.world();
    let Some(account) = world.accounts.get_mut(issuer_id) else {
        return Some(not_found("There is no resource with this id."));
    };
    Some(match (method.as_str(), operation.template.as_str()) {
        ("GET", "/v1/apps/{id}/webhooks") => {
            let app_id = path_id(path, 3);
            if !account.apps.iter().any(|a| a.id == app_id) {
                return Some(not_found("There is no app with this id."));
            }
            let request = ParsedQuery::new(query);
            let all: Vec<Value> = account
                .webhooks
                .iter()
                .filter(|w| w.app_id == app_id)
                .map(|w| webhook_resource(&base_url, w))
                .collect();
            let context = Context {
                base_url: &base_url,
                path,
                query,
                request: &request,
            };
            let page = request.page(&all);
            let mut document = context.collection(all, Vec::new(), request.offset, request.limit);
            document["data"] = Value::Array(page);
            (StatusCode::OK, axum::Json(document)).into_response()
        }
        ("POST", "/v1/webhooks") => {
            if let Err(problems) = spec::validate_against("WebhookCreateRequest", &parsed_body) {
                return Some(invalid_body(problems));
            }
            let data = &parsed_body["data"];
            let attributes = &data["attributes"];
            let app_id = data["relationships"]["app"]["data"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !account.apps.iter().any(|a| a.id == app_id) {
                return Some(not_found("There is no app with this id."));
            }
            if account
                .webhooks
                .iter()
                .filter(|w| w.app_id == app_id)
                .count()
                >= MAX_WEBHOOKS_PER_APP
            {
                return Some(error_response(
                    StatusCode::CONFLICT,
                    "ENTITY_ERROR",
                    "The request entity is not valid.",
                    "An app can have at most ten webhooks.",
                    None,
                ));
            }
            let webhook = FakeWebhook {
                id: uuid::Uuid::new_v4().to_string(),
                app_id,
                name: attributes["name"].as_str().unwrap_or_default().to_owned(),
                url: attributes["url"].as_str().unwrap_or_default().to_owned(),
                secret: attributes["secret"].as_str().unwrap_or_default().to_owned(),
                enabled: attributes["enabled"].as_bool().unwrap_or(false),
                event_types: string_list(&attributes["eventTypes"]),
            };
            let resource = webhook_resource(&base_url, &webhook);
            account.webhooks.push(webhook);
            (
                StatusCode::CREATED,
                axum::Json(json!({ "data": resource, "links": { "self": format!("{base_url}/v1/webhooks") } })),
            )
                .into_response()
        }
        ("PATCH", "/v1/webhooks/{id}") => {
            if let Err(problems) = spec::validate_against("WebhookUpdateRequest", &parsed_body) {
                return Some(invalid_body(problems));
            }
            let id = path_id(path, 3);
            if parsed_body["data"]["id"].as_str() != Some(id.as_str()) {
                return Some(error_response(
                    StatusCode::CONFLICT,
                    "ENTITY_ERROR.ID.INVALID",
                    "The provided entity id is invalid",
                    "The resource id in the body does not match the path.",
                    None,
                ));
            }
            let Some(webhook) = account.webhooks.iter_mut().find(|w| w.id == id) else {
                return Some(not_found("There is no webhook with this id."));
            };
            let attributes = &parsed_body["data"]["attributes"];
            if let Some(enabled) = attributes["enabled"].as_bool() {
                webhook.enabled = enabled;
            }
            if let Some(url) = attributes["url"].as_str() {
                webhook.url = url.to_owned();
            }
            if let Some(secret) = attributes["secret"].as_str() {
                webhook.secret = secret.to_owned();
            }
            if let Some(name) = attributes["name"].as_str() {
                webhook.name = name.to_owned();
            }
            if attributes["eventTypes"].is_array() {
                webhook.event_types = string_list(&attributes["eventTypes"]);
            }
            let resource = webhook_resource(&base_url, webhook);
            (
                StatusCode::OK,
                axum::Json(json!({ "data": resource, "links": { "self": format!("{base_url}/v1/webhooks/{id}") } })),
            )
                .into_response()
        }
        ("DELETE", "/v1/webhooks/{id}") => {
            let id = path_id(path, 3);
            let before = account.webhooks.len();
            account.webhooks.retain(|w| w.id != id);
            if account.webhooks.len() == before {
                return Some(not_found("There is no webhook with this id."));
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (_, other) => not_found(&format!(
            "The fake App Store Connect does not serve {} {other}.",
            method
        )),
    })
}

/// A notification body in the shape App Store Connect posts (a JSON:API-like `data` object with
/// `type`, `id`, `version`, `attributes` and `relationships.instance`). `data.id` is what
/// receivers deduplicate on; redeliveries repeat it.
pub fn notification_body(event_type_camel: &str, data_id: &str, instance: (&str, &str)) -> Value {
    json!({
        "data": {
            "type": event_type_camel,
            "id": data_id,
            "version": 1,
            "attributes": { "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true) },
            "relationships": {
                "instance": { "data": { "type": instance.0, "id": instance.1 } }
            }
        }
    })
}

impl FakeAsc {
    /// Sends `body` as App Store Connect would to webhook `webhook_id`: `POST` with
    /// `x-apple-signature: hmacsha256=<hex HMAC-SHA256 of the body with the webhook's secret>`.
    /// It goes to the path of the registered URL on `host` (the test app's address, known only
    /// after the webhook's public URL was chosen; later pings and redeliveries go there too), and
    /// is recorded as a delivery. `signature` overrides the header (`Some("")` sends none).
    /// Returns the status and body of the answer (status 0: the host could not be reached).
    pub async fn deliver_notification(
        &self,
        webhook_id: &str,
        host: &str,
        body: &Value,
        signature: Option<&str>,
    ) -> (u16, String) {
        self.set_delivery_host(host);
        let mut outgoing = deliveries::Outgoing::new(webhook_id, body.clone());
        outgoing.signature = signature.map(str::to_owned);
        let delivery = deliveries::record_pending(&self.shared, &outgoing)
            .unwrap_or_else(|| panic!("no webhook {webhook_id}"));
        deliveries::send(&self.shared, &delivery, outgoing).await
    }
}

/// Pings, the deliveries of a webhook and redeliveries; `None` for the other webhook paths.
fn delivery_answer(
    shared: &Arc<Shared>,
    method: &str,
    template: &str,
    path: &str,
    query: &[(String, String)],
    issuer_id: &str,
    body: &Value,
) -> Option<Response> {
    let owns_webhook = |webhook_id: &str| {
        shared
            .world()
            .accounts
            .get(issuer_id)
            .is_some_and(|a| a.webhooks.iter().any(|w| w.id == webhook_id))
    };
    let request = ParsedQuery::new(query);
    let context = Context {
        base_url: &shared.base_url,
        path,
        query,
        request: &request,
    };
    Some(match (method, template) {
        ("POST", "/v1/webhookPings") => {
            if let Err(problems) = spec::validate_against("WebhookPingCreateRequest", body) {
                return Some(invalid_body(problems));
            }
            let webhook_id = body["data"]["relationships"]["webhook"]["data"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !owns_webhook(&webhook_id) {
                return Some(not_found("There is no webhook with this id."));
            }
            let ping_id = uuid::Uuid::new_v4().to_string();
            let payload = json!({
                "data": {
                    "type": "webhookPingCreated",
                    "id": ping_id,
                    "version": 1,
                    "attributes": { "timestamp": shared.now().to_rfc3339_opts(SecondsFormat::Millis, true) }
                }
            });
            deliveries::send_later(shared, deliveries::Outgoing::new(&webhook_id, payload));
            (
                StatusCode::CREATED,
                axum::Json(json!({
                    "data": {
                        "type": "webhookPings",
                        "id": ping_id,
                        "links": { "self": format!("{}/v1/webhookPings/{ping_id}", shared.base_url) }
                    },
                    "links": { "self": format!("{}/v1/webhookPings", shared.base_url) }
                })),
            )
                .into_response()
        }
        ("GET", "/v1/webhooks/{id}/deliveries") => {
            let webhook_id = path_id(path, 3);
            if !owns_webhook(&webhook_id) {
                return Some(not_found("There is no webhook with this id."));
            }
            let all = shared.world().deliveries.clone();
            let document = deliveries::deliveries_document(&context, &all, &webhook_id);
            (StatusCode::OK, axum::Json(document)).into_response()
        }
        ("POST", "/v1/webhookDeliveries") => {
            if let Err(problems) = spec::validate_against("WebhookDeliveryCreateRequest", body) {
                return Some(invalid_body(problems));
            }
            let template_id = body["data"]["relationships"]["template"]["data"]["id"]
                .as_str()
                .unwrap_or_default();
            let template = shared
                .world()
                .deliveries
                .iter()
                .find(|d| d.id == template_id)
                .cloned();
            let Some(template) = template.filter(|t| owns_webhook(&t.webhook_id)) else {
                return Some(not_found("There is no webhook delivery with this id."));
            };
            let mut outgoing = deliveries::Outgoing::new(&template.webhook_id, template.payload);
            outgoing.redelivery = true;
            outgoing.event_id = template.event_id;
            let Some(id) = deliveries::send_later(shared, outgoing) else {
                return Some(not_found("There is no webhook with this id."));
            };
            let created = shared
                .world()
                .deliveries
                .iter()
                .find(|d| d.id == id)
                .cloned()
                .expect("the delivery just recorded");
            (
                StatusCode::CREATED,
                axum::Json(deliveries::created_delivery_document(&context, &created)),
            )
                .into_response()
        }
        _ => return None,
    })
}
