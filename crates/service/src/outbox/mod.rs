//! The delivery outbox: every event's deliveries wait here until sent. A pass claims due
//! deliveries with a lease (a conditional write, so overlapping passes never send one twice),
//! sends each, records the attempt, and schedules the retry ([`schedule`]). It runs after each
//! sweep and can run on its own ([`Outbox::deliver_due`]).

pub mod schedule;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use shipwatch_shared::clock::Clock;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::domain::routing::destinations_for;
use crate::model::{
    DeliveryAttempt, DeliveryId, DeliveryRecord, DeliveryStatus, DestinationSecrets, EventRecord,
    SecretName, TeamId,
};
use crate::ports::{Deliverer, DeliveryOutcome, StoreError, Stores};
use schedule::RetrySchedule;

/// Tuning of the outbox; [`Default`] is what production runs.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    /// Due deliveries read per round of a pass.
    pub batch: u32,
    /// Deliveries sent at the same time.
    pub max_concurrent: usize,
    /// How long a sender holds a claimed delivery; a crashed sender's claim expires after it.
    pub lease: TimeDelta,
    pub retries: RetrySchedule,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            batch: 100,
            max_concurrent: 8,
            // Longer than one send may take (the HTTP sender gives up after 10 s), short enough
            // that a crashed sender's deliveries go out again within a minute.
            lease: TimeDelta::seconds(30),
            retries: RetrySchedule::default(),
        }
    }
}

/// The outbox service. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    stores: Stores,
    deliverer: Arc<dyn Deliverer>,
    clock: Arc<dyn Clock>,
    config: OutboxConfig,
}

/// One pending delivery per destination the team's workflows route each event to (none is
/// stored here: the caller commits them with the events).
pub async fn route(
    stores: &Stores,
    team: &TeamId,
    events: &[EventRecord],
    now: DateTime<Utc>,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let workflows = stores.workflows.list_workflows(team).await?;
    Ok(events
        .iter()
        .flat_map(|event| {
            destinations_for(event, &workflows)
                .into_iter()
                .map(move |destination_id| DeliveryRecord {
                    id: DeliveryId::generate(),
                    event_id: event.id.clone(),
                    team_id: event.team_id.clone(),
                    destination_id,
                    status: DeliveryStatus::Pending,
                    attempts: Vec::new(),
                    next_attempt_at: Some(now),
                    lease_until: None,
                    created_at: now,
                    revision: 1,
                })
        })
        .collect())
}

/// Sends through `deliverer` and records the attempt as the history shows it, timed and dated by
/// `clock`.
pub async fn attempt(
    deliverer: &dyn Deliverer,
    clock: &dyn Clock,
    destination: &crate::model::Destination,
    secrets: &DestinationSecrets,
    event: &EventRecord,
) -> (DeliveryOutcome, DeliveryAttempt) {
    let at = clock.now();
    let started = Instant::now();
    let outcome = deliverer.deliver(destination, secrets, event).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let attempt = DeliveryAttempt {
        at,
        status_code: outcome.http_status(),
        error: outcome.detail().map(str::to_owned),
        duration_ms,
    };
    (outcome, attempt)
}

impl Outbox {
    pub fn new(
        stores: Stores,
        deliverer: Arc<dyn Deliverer>,
        clock: Arc<dyn Clock>,
        config: OutboxConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                stores,
                deliverer,
                clock,
                config,
            }),
        }
    }

    /// Sends every due delivery once and records the attempt. Returns the number of attempts.
    pub async fn deliver_due(&self) -> usize {
        // Bounded rounds: every claimed delivery leaves the due set, so this only loops while a
        // backlog larger than one batch drains.
        const MAX_ROUNDS: usize = 20;
        const MAX_TRANSIENT_ROUNDS: usize = 3;
        let config = &self.inner.config;
        let mut attempts = 0;
        let mut transient_rounds = 0;
        for _ in 0..MAX_ROUNDS {
            let now = self.inner.clock.now();
            let due = match self
                .inner
                .stores
                .sweeps
                .due_deliveries(now, config.batch)
                .await
            {
                Ok(due) => due,
                Err(err) => {
                    tracing::warn!(error = %err, "could not read due deliveries");
                    break;
                }
            };
            let batch_was_full = due.len() >= config.batch as usize;
            let semaphore = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
            let mut tasks = JoinSet::new();
            for delivery in due {
                let inner = self.inner.clone();
                let semaphore = semaphore.clone();
                let span = tracing::info_span!("delivery", delivery = %delivery.id,
                    event = %delivery.event_id, destination = %delivery.destination_id);
                tasks.spawn(
                    async move {
                        let _permit = semaphore.acquire_owned().await.ok();
                        inner.deliver_one(delivery).await
                    }
                    .instrument(span),
                );
            }
            let mut attempted_this_round = 0;
            let mut postponed = 0;
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(Sent::Attempted) => attempted_this_round += 1,
                    Ok(Sent::TakenByOther) => {}
                    Ok(Sent::Postponed) => postponed += 1,
                    Err(err) => tracing::error!(error = %err, "a delivery task failed"),
                }
            }
            attempts += attempted_this_round;
            if postponed > 0 && transient_rounds < MAX_TRANSIENT_ROUNDS {
                // Store hiccups (e.g. two claims colliding in a transaction): try those again soon.
                transient_rounds += 1;
                tokio::time::sleep(Duration::from_millis(50 * transient_rounds as u64)).await;
                continue;
            }
            if !batch_was_full || attempted_this_round == 0 {
                break;
            }
        }
        attempts
    }
}

impl Outbox {
    /// A delivery pass, then more passes while a retry falls due within `horizon` (waiting for
    /// it): the fast first retries of a failed delivery happen in this process, without waiting
    /// for the next sweep. Stops after a pass that finds nothing due. Returns the attempts made.
    pub async fn deliver_due_and_soon(&self, horizon: Duration) -> usize {
        let started = Instant::now();
        let mut attempts = self.deliver_due().await;
        while let Some(left) = horizon.checked_sub(started.elapsed()) {
            let now = self.inner.clock.now();
            let Some(next) = self
                .next_due_by(now + TimeDelta::from_std(left).unwrap_or_default())
                .await
            else {
                break;
            };
            let wait = (next - now).to_std().unwrap_or_default().min(left);
            tokio::time::sleep(wait).await;
            let made = self.deliver_due().await;
            if made == 0 {
                break;
            }
            attempts += made;
        }
        attempts
    }

    /// The earliest time at or before `by` when a pending delivery may be sent.
    async fn next_due_by(&self, by: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let due = self
            .inner
            .stores
            .sweeps
            .due_deliveries(by, self.inner.config.batch)
            .await
            .ok()?;
        due.iter()
            .filter_map(|delivery| delivery.next_attempt_at.max(delivery.lease_until))
            .min()
    }
}

impl Inner {
    /// Claims one delivery, sends it and records the attempt.
    async fn deliver_one(&self, delivery: DeliveryRecord) -> Sent {
        let now = self.clock.now();
        let mut claimed = delivery.clone();
        claimed.lease_until = Some(now + self.config.lease);
        claimed.revision = delivery.revision + 1;
        match self
            .stores
            .sweeps
            .update_delivery(&claimed, delivery.revision)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Sent::TakenByOther,
            Err(err) => {
                tracing::warn!(error = %err, "could not claim a delivery");
                return Sent::Postponed;
            }
        }
        let (outcome, attempt) = match self.load_and_send(&claimed).await {
            Ok(sent) => sent,
            Err(SendSkipped::Retry(reason)) => {
                // A store hiccup: the lease expires and a later pass tries again.
                tracing::warn!(reason, "delivery postponed");
                return Sent::TakenByOther;
            }
            Err(SendSkipped::Impossible(reason)) => (
                DeliveryOutcome::Failed {
                    retryable: false,
                    detail: reason.to_owned(),
                    http_status: None,
                },
                DeliveryAttempt {
                    at: now,
                    status_code: None,
                    error: Some(reason.to_owned()),
                    duration_ms: 0,
                },
            ),
        };
        let last_outcome = crate::model::LastOutcome::of(&attempt);
        let mut settled = claimed.clone();
        settled.attempts.push(attempt);
        settled.lease_until = None;
        settled.revision = claimed.revision + 1;
        let retries = &self.config.retries;
        match &outcome {
            DeliveryOutcome::Delivered { .. } => {
                settled.status = DeliveryStatus::Delivered;
                settled.next_attempt_at = None;
            }
            DeliveryOutcome::Failed { retryable, .. }
                if !retryable || retries.is_exhausted(settled.attempts.len()) =>
            {
                settled.status = DeliveryStatus::Failed;
                settled.next_attempt_at = None;
            }
            DeliveryOutcome::Failed { .. } => {
                settled.next_attempt_at =
                    Some(self.clock.now() + retries.wait_after(settled.attempts.len()));
            }
        }
        match self
            .stores
            .sweeps
            .update_delivery(&settled, claimed.revision)
            .await
        {
            Ok(()) => tracing::info!(status = ?settled.status,
                http_status = outcome.http_status(), attempt = settled.attempts.len(), "delivery attempt recorded"),
            Err(err) => tracing::error!(error = %err,
                "could not record a delivery attempt; the lease expires and it is tried again"),
        }
        // Shown on the destinations page; losing it only leaves an older outcome there.
        if let Err(err) = self
            .stores
            .destinations
            .record_destination_outcome(&settled.team_id, &settled.destination_id, &last_outcome)
            .await
        {
            tracing::warn!(error = %err, "could not record the destination's last outcome");
        }
        Sent::Attempted
    }

    async fn load_and_send(
        &self,
        delivery: &DeliveryRecord,
    ) -> Result<(DeliveryOutcome, DeliveryAttempt), SendSkipped> {
        let retry = |_| SendSkipped::Retry("store unavailable");
        let event = self
            .stores
            .sweeps
            .get_event(&delivery.event_id)
            .await
            .map_err(retry)?
            .ok_or(SendSkipped::Impossible("the event no longer exists"))?;
        let destination = self
            .stores
            .destinations
            .get_destination(&delivery.team_id, &delivery.destination_id)
            .await
            .map_err(retry)?
            .ok_or(SendSkipped::Impossible("the destination was deleted"))?;
        let secret = self
            .stores
            .secrets
            .get_secret(&SecretName::for_destination(
                &delivery.team_id,
                &delivery.destination_id,
            ))
            .await
            .map_err(retry)?
            .ok_or(SendSkipped::Impossible("the destination's URL is missing"))?;
        let secrets: DestinationSecrets = serde_json::from_str(secret.expose())
            .map_err(|_| SendSkipped::Impossible("the destination's stored URL cannot be read"))?;
        Ok(attempt(
            self.deliverer.as_ref(),
            self.clock.as_ref(),
            &destination,
            &secrets,
            &event,
        )
        .await)
    }
}

/// What one delivery task did.
enum Sent {
    Attempted,
    /// Another sender holds it (or this one keeps its lease until a store hiccup passes).
    TakenByOther,
    /// It could not be claimed because of a store error; worth another try in this pass.
    Postponed,
}

/// Why a claimed delivery was not sent.
enum SendSkipped {
    /// Transient: try again after the lease.
    Retry(&'static str),
    /// It can never be sent: recorded as a failed attempt and given up.
    Impossible(&'static str),
}
