//! What the API shows of each record: never a private key, a destination URL or a token hash.

use chrono::{DateTime, Utc};
use serde::Serialize;

use shipwatch_service::model::{ApiKeyRecord, Destination, PushStatus, Workflow};

#[derive(Serialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub platform: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_id: Option<String>,
    /// Google Play keys: the service account and the packages it watches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_names: Option<Vec<String>>,
    pub status: &'static str,
    pub status_code: Option<&'static str>,
    pub status_message: Option<String>,
    pub public_key_fingerprint: String,
    pub apps_count: Option<u32>,
    pub validated_at: Option<DateTime<Utc>>,
    pub last_swept_at: Option<DateTime<Utc>>,
    pub next_validation_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// `off` | `unavailable` | `active` | `degraded` (`off` until provisioning has run).
    pub push: &'static str,
    pub push_message: Option<String>,
    /// When shipwatch last provisioned or checked the key's webhooks.
    pub push_checked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKeyRecord> for KeyView {
    fn from(k: &ApiKeyRecord) -> Self {
        use shipwatch_service::model::AccountRef;
        let (key_id, issuer_id, client_email, package_names) = match &k.account {
            AccountRef::AppStoreConnect { key_id, issuer_id } => (
                Some(key_id.to_string()),
                Some(issuer_id.to_string()),
                None,
                None,
            ),
            AccountRef::GooglePlay {
                client_email,
                package_names,
                ..
            } => (
                None,
                None,
                Some(client_email.clone()),
                Some(package_names.clone()),
            ),
        };
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            platform: k.account.platform().as_str(),
            key_id,
            issuer_id,
            client_email,
            package_names,
            status: k.status.as_str(),
            status_code: k.status_code.map(|c| c.as_str()),
            status_message: k.status_message.clone(),
            public_key_fingerprint: k.public_key_fingerprint.clone(),
            apps_count: k.apps_count,
            validated_at: k.validated_at,
            last_swept_at: k.last_swept_at,
            next_validation_at: k.next_validation_at,
            created_at: k.created_at,
            push: match k.push.as_ref().map(|p| p.status) {
                None | Some(PushStatus::Off) => "off",
                Some(PushStatus::Unavailable) => "unavailable",
                Some(PushStatus::Active) => "active",
                Some(PushStatus::Degraded) => "degraded",
            },
            push_message: k.push.as_ref().and_then(|p| p.message.clone()),
            push_checked_at: k.push.as_ref().map(|p| p.checked_at),
        }
    }
}

#[derive(Serialize)]
pub struct DestinationView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub url_hint: String,
    pub created_at: DateTime<Utc>,
    /// How the latest send to it ended (`null` before the first).
    pub last_outcome: Option<LastOutcomeView>,
    /// Shown once, in the answer to the creation of a webhook destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

#[derive(Serialize)]
pub struct LastOutcomeView {
    /// `delivered` or `failed`.
    pub status: &'static str,
    pub at: DateTime<Utc>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
}

impl From<&Destination> for DestinationView {
    fn from(d: &Destination) -> Self {
        Self {
            id: d.id.to_string(),
            kind: d.kind.as_str(),
            name: d.name.clone(),
            url_hint: d.url_hint.clone(),
            created_at: d.created_at,
            last_outcome: d.last_outcome.as_ref().map(|o| LastOutcomeView {
                status: if o.delivered { "delivered" } else { "failed" },
                at: o.at,
                http_status: o.http_status,
                error: o.error.clone(),
            }),
            signing_secret: None,
        }
    }
}

#[derive(Serialize)]
pub struct WorkflowView {
    pub id: String,
    pub name: String,
    pub destination_id: String,
    pub app_ids: Vec<String>,
    pub event_types: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Workflow> for WorkflowView {
    fn from(w: &Workflow) -> Self {
        Self {
            id: w.id.to_string(),
            name: w.name.clone(),
            destination_id: w.destination_id.to_string(),
            app_ids: w.app_ids.clone(),
            event_types: w.event_types.clone(),
            created_at: w.created_at,
        }
    }
}
