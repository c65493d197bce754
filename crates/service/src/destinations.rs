//! Destinations (where notifications go) and workflows (which events go where). URLs and signing
//! secrets go to the secret store; records keep only a hint.

use std::sync::Arc;

use shipwatch_shared::clock::Clock;

use crate::domain::destination_url::{url_hint, validate_destination_url};
use crate::domain::events::test_event;
use crate::domain::routing::{ALL, is_known_event_type};
use crate::domain::signing::generate_signing_secret;
use crate::model::{
    DeliveryAttempt, DeliveryId, DeliveryRecord, DeliveryStatus, Destination, DestinationId,
    DestinationKind, DestinationSecrets, EventRecord, LastOutcome, SecretName, SecretValue, Team,
    Workflow, WorkflowId,
};
use crate::names::{InvalidName, checked_name};
use crate::ports::{Deliverer, StoreError, Stores};

/// Longest list of app ids a workflow may name.
pub const MAX_WORKFLOW_APPS: usize = 500;

/// Why a destination or workflow operation was refused. The messages say what to do; they never
/// hold a destination URL.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("type must be one of slack, discord, teams, webhook")]
    InvalidType,
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("{0}")]
    InvalidUrl(String),
    #[error("the destination could not be encoded")]
    Unencodable,
    #[error("no such destination in your team")]
    NotFound,
    #[error(
        "destination_id names no destination of your team; create one with POST /v1/destinations"
    )]
    UnknownDestination,
    #[error(
        "app_ids must be [\"*\"] or a list of App Store Connect app ids (the numeric Apple ID of each app, see GET /v1/apps)"
    )]
    InvalidAppIds,
    #[error(
        "event_types must be [\"*\"] or a list of: {}",
        crate::domain::routing::known_event_types().join(", ")
    )]
    InvalidEventTypes,
    #[error("no such workflow in your team")]
    WorkflowNotFound,
    #[error("too many test messages to this destination; try again in {retry_after_seconds} s")]
    TooManyTests { retry_after_seconds: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The body of `POST /v1/destinations`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDestination {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub url: String,
}

/// A created destination, with the webhook signing secret that is shown only now.
pub struct CreatedDestination {
    pub destination: Destination,
    pub signing_secret: Option<String>,
}

/// The body of `POST /v1/workflows`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkflow {
    pub name: String,
    pub destination_id: String,
    pub app_ids: Vec<String>,
    pub event_types: Vec<String>,
}

/// What `POST /v1/destinations/{id}/test` reports.
pub struct TestOutcome {
    pub event: EventRecord,
    pub attempt: DeliveryAttempt,
}

#[derive(Clone)]
pub struct DestinationService {
    stores: Stores,
    deliverer: Arc<dyn Deliverer>,
    clock: Arc<dyn Clock>,
    allow_private: bool,
    /// Test sends per destination (per process: test sends need no shared state to be bounded).
    test_sends: Arc<crate::throttle::LocalThrottle>,
}

impl DestinationService {
    pub fn new(
        stores: Stores,
        deliverer: Arc<dyn Deliverer>,
        clock: Arc<dyn Clock>,
        allow_private: bool,
    ) -> Self {
        Self {
            stores,
            deliverer,
            clock,
            allow_private,
            test_sends: Arc::default(),
        }
    }

    /// Checks the input, writes the secret half, then the record; a failed record write removes
    /// the secret again.
    pub async fn create(
        &self,
        team: &Team,
        new: NewDestination,
    ) -> Result<CreatedDestination, DestinationError> {
        let kind = parse_kind(&new.kind)?;
        let name = checked_name(&new.name, "destination")?;
        let url = validate_destination_url(&new.url, self.allow_private)
            .map_err(|e| DestinationError::InvalidUrl(e.to_string()))?;
        let signing_secret = (kind == DestinationKind::Webhook).then(generate_signing_secret);
        let destination = Destination {
            id: DestinationId::generate(),
            team_id: team.id.clone(),
            kind,
            name,
            url_hint: url_hint(&url),
            created_at: self.clock.now(),
            last_outcome: None,
        };
        let secrets = DestinationSecrets {
            url: url.to_string(),
            signing_secret: signing_secret.clone(),
        };
        let secret_json =
            serde_json::to_string(&secrets).map_err(|_| DestinationError::Unencodable)?;
        let secret_name = SecretName::for_destination(&team.id, &destination.id);
        if let Err(err) = self
            .stores
            .secrets
            .put_secret(&secret_name, &SecretValue::new(secret_json))
            .await
        {
            self.remove_secret(&secret_name).await;
            return Err(err.into());
        }
        if let Err(err) = self
            .stores
            .destinations
            .insert_destination(&destination)
            .await
        {
            self.remove_secret(&secret_name).await;
            return Err(err.into());
        }
        tracing::info!(destination = %destination.id, team = %team.id, kind = kind.as_str(), "destination created");
        Ok(CreatedDestination {
            destination,
            signing_secret,
        })
    }

    async fn remove_secret(&self, name: &SecretName) {
        if let Err(err) = self.stores.secrets.delete_secret(name).await {
            tracing::error!(secret = %name, error = %err, "could not remove the secret of a failed destination write");
        }
    }

    pub async fn get(
        &self,
        team: &Team,
        id: &DestinationId,
    ) -> Result<Destination, DestinationError> {
        self.stores
            .destinations
            .get_destination(&team.id, id)
            .await?
            .ok_or(DestinationError::NotFound)
    }

    pub async fn list(&self, team: &Team) -> Result<Vec<Destination>, DestinationError> {
        Ok(self.stores.destinations.list_destinations(&team.id).await?)
    }

    /// Deletes the destination, the workflows that send to it, and its secret.
    pub async fn delete(&self, team: &Team, id: &DestinationId) -> Result<(), DestinationError> {
        // Workflows first (nothing new is routed to it), then the secret, the record last: a
        // failure half-way leaves the record, so a retry finishes the job and no secret is ever
        // left without its record.
        let destination = self.get(team, id).await?;
        for workflow in self.stores.workflows.list_workflows(&team.id).await? {
            if workflow.destination_id == destination.id {
                self.stores
                    .workflows
                    .delete_workflow(&team.id, &workflow.id)
                    .await?;
            }
        }
        self.stores
            .secrets
            .delete_secret(&SecretName::for_destination(&team.id, id))
            .await?;
        self.stores
            .destinations
            .delete_destination(&team.id, id)
            .await?;
        Ok(())
    }

    /// Sends a `shipwatch.test` event now and records it, with its one attempt, in the history.
    pub async fn send_test(
        &self,
        team: &Team,
        id: &DestinationId,
    ) -> Result<TestOutcome, DestinationError> {
        let destination = self.get(team, id).await?;
        let now = self.clock.now();
        self.test_sends
            .admit(
                destination.id.as_str(),
                crate::throttle::TEST_SENDS_PER_DESTINATION,
                now,
            )
            .map_err(|wait| DestinationError::TooManyTests {
                retry_after_seconds: crate::throttle::retry_after_seconds(wait),
            })?;
        let secrets = self.secrets_of(&destination).await?;
        let event = test_event(&team.id, &destination.name, now);
        let (outcome, attempt) = crate::outbox::attempt(
            self.deliverer.as_ref(),
            self.clock.as_ref(),
            &destination,
            &secrets,
            &event,
        )
        .await;
        let delivered = outcome.is_delivered();
        let delivery = DeliveryRecord {
            id: DeliveryId::generate(),
            event_id: event.id.clone(),
            team_id: team.id.clone(),
            destination_id: destination.id.clone(),
            status: if delivered {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Failed
            },
            attempts: vec![attempt.clone()],
            next_attempt_at: None,
            lease_until: None,
            created_at: now,
            revision: 1,
        };
        self.stores
            .sweeps
            .append_events(std::slice::from_ref(&event), &[delivery])
            .await?;
        self.stores
            .destinations
            .record_destination_outcome(&team.id, &destination.id, &LastOutcome::of(&attempt))
            .await?;
        Ok(TestOutcome { event, attempt })
    }

    async fn secrets_of(
        &self,
        destination: &Destination,
    ) -> Result<DestinationSecrets, StoreError> {
        let name = SecretName::for_destination(&destination.team_id, &destination.id);
        let value = self
            .stores
            .secrets
            .get_secret(&name)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "secret of destination {} is missing",
                    destination.id
                ))
            })?;
        serde_json::from_str(value.expose()).map_err(|_| {
            StoreError::Corrupt(format!(
                "secret of destination {} is unreadable",
                destination.id
            ))
        })
    }

    pub async fn create_workflow(
        &self,
        team: &Team,
        new: NewWorkflow,
    ) -> Result<Workflow, DestinationError> {
        let name = checked_name(&new.name, "workflow")?;
        let destination_id = DestinationId(new.destination_id.trim().to_owned());
        if self
            .stores
            .destinations
            .get_destination(&team.id, &destination_id)
            .await?
            .is_none()
        {
            return Err(DestinationError::UnknownDestination);
        }
        let workflow = Workflow {
            id: WorkflowId::generate(),
            team_id: team.id.clone(),
            name,
            destination_id,
            app_ids: checked_app_ids(new.app_ids)?,
            event_types: checked_event_types(new.event_types)?,
            created_at: self.clock.now(),
        };
        self.stores.workflows.insert_workflow(&workflow).await?;
        Ok(workflow)
    }

    pub async fn get_workflow(
        &self,
        team: &Team,
        id: &WorkflowId,
    ) -> Result<Workflow, DestinationError> {
        self.stores
            .workflows
            .get_workflow(&team.id, id)
            .await?
            .ok_or(DestinationError::WorkflowNotFound)
    }

    pub async fn list_workflows(&self, team: &Team) -> Result<Vec<Workflow>, DestinationError> {
        Ok(self.stores.workflows.list_workflows(&team.id).await?)
    }

    pub async fn delete_workflow(
        &self,
        team: &Team,
        id: &WorkflowId,
    ) -> Result<(), DestinationError> {
        if self.stores.workflows.delete_workflow(&team.id, id).await? {
            Ok(())
        } else {
            Err(DestinationError::WorkflowNotFound)
        }
    }
}

fn parse_kind(raw: &str) -> Result<DestinationKind, DestinationError> {
    match raw.trim() {
        "slack" => Ok(DestinationKind::Slack),
        "discord" => Ok(DestinationKind::Discord),
        "teams" => Ok(DestinationKind::Teams),
        "webhook" => Ok(DestinationKind::Webhook),
        _ => Err(DestinationError::InvalidType),
    }
}

/// `["*"]`, or App Store Connect app ids (digits).
fn checked_app_ids(app_ids: Vec<String>) -> Result<Vec<String>, DestinationError> {
    let ids: Vec<String> = app_ids.into_iter().map(|id| id.trim().to_owned()).collect();
    if ids == [ALL] {
        return Ok(ids);
    }
    let valid = !ids.is_empty()
        && ids.len() <= MAX_WORKFLOW_APPS
        && ids
            .iter()
            .all(|id| !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()));
    if !valid {
        return Err(DestinationError::InvalidAppIds);
    }
    let mut unique = ids;
    unique.sort();
    unique.dedup();
    Ok(unique)
}

/// `["*"]`, or known event types (`domain::routing::known_event_types`).
fn checked_event_types(types: Vec<String>) -> Result<Vec<String>, DestinationError> {
    let types: Vec<String> = types.into_iter().map(|t| t.trim().to_owned()).collect();
    if types == [ALL] {
        return Ok(types);
    }
    if types.is_empty() || types.iter().any(|t| !is_known_event_type(t)) {
        return Err(DestinationError::InvalidEventTypes);
    }
    let mut unique = types;
    unique.sort();
    unique.dedup();
    Ok(unique)
}
