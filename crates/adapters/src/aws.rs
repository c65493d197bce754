//! The AWS store: one DynamoDB table (the fixed `pk`/`sk` + `gsi1` schema) for records and
//! Secrets Manager for secret values. `docs/data-model.md` describes the item design.

mod codec;
mod members;
mod secrets;
mod sign_in_failures;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValue,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, TransactWriteItem,
};
use chrono::{DateTime, Utc};
use shipwatch_service::model::*;
use shipwatch_service::ports::*;
use tokio::task::JoinSet;

pub use secrets::AwsSecretStore;

use crate::store_support::{
    EventPosition, KeyListPosition, check_next_revision, due_key, due_upper_bound, effective_limit,
    event_position, key_list_sort_key, search_needle, search_text, time_key, to_json,
};
use codec::*;

/// Name of the one global secondary index.
pub const GSI1_INDEX: &str = GSI1;

/// Concurrent single-item requests one call may have in flight.
const MAX_PARALLEL_REQUESTS: usize = 16;
/// Events (with their deliveries) per outbox part before size-based splitting.
const EVENTS_PER_OUTBOX_PART: usize = 25;
/// Keys one `BatchGetItem` may name.
const MAX_BATCH_GET_KEYS: usize = 100;
/// `BatchGetItem` calls per chunk while DynamoDB keeps answering with `UnprocessedKeys`
/// (it does under throttling), before the read is reported unavailable.
const MAX_BATCH_GET_ROUNDS: u32 = 6;

/// DynamoDB-backed [`TeamStore`], [`KeyStore`], [`DestinationStore`], [`WorkflowStore`] and
/// [`SweepStore`] on one table.
#[derive(Clone, Debug)]
pub struct AwsStore {
    client: Client,
    table: String,
}

/// The whole bundle on AWS (or anything speaking its APIs, such as moto): DynamoDB `table` and
/// Secrets Manager, both configured from `sdk_config`.
pub async fn aws_stores(sdk_config: &aws_config::SdkConfig, table: &str) -> Stores {
    let store = std::sync::Arc::new(AwsStore::new(Client::new(sdk_config), table.to_owned()));
    let secrets = std::sync::Arc::new(AwsSecretStore::new(aws_sdk_secretsmanager::Client::new(
        sdk_config,
    )));
    Stores {
        teams: store.clone(),
        keys: store.clone(),
        secrets,
        destinations: store.clone(),
        workflows: store.clone(),
        sweeps: store.clone(),
        members: store.clone(),
        push: store.clone(),
        sign_in_failures: store,
    }
}

/// Creates the table exactly as `template.yaml` declares it (on-demand, `pk`/`sk`, `gsi1` with
/// projection ALL, stream NEW_AND_OLD_IMAGES) and waits until it is active. An existing table
/// with that name is left as it is.
pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
    let operation = "create table";
    let built = build_error(operation);
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(&built)
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(&built)
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?)
        .attribute_definitions(attribute(GSI1PK)?)
        .attribute_definitions(attribute(GSI1SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI1)
                .key_schema(key(GSI1PK, KeyType::Hash)?)
                .key_schema(key(GSI1SK, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(&built)?,
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(&built)?,
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(dynamo_error(operation, error)),
    }
    // On AWS a new table takes a few seconds; moto answers ACTIVE at once.
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| dynamo_error("describe table", e))?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return enable_ttl(client, table).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {table} did not become active"
    )))
}

/// Turns on DynamoDB's expiry on the [`TTL`] attribute, as `template.yaml` declares it (records
/// with an end of life, such as remembered push notification ids, carry it).
async fn enable_ttl(client: &Client, table: &str) -> StoreResult<()> {
    let built = build_error("enable ttl");
    let specification = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
        .attribute_name(TTL)
        .enabled(true)
        .build()
        .map_err(&built)?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Already enabled (an existing table).
        Err(error)
            if error
                .as_service_error()
                .and_then(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::message(e))
                .is_some_and(|m| m.contains("already enabled")) =>
        {
            Ok(())
        }
        Err(error) => Err(dynamo_error("enable ttl", error)),
    }
}

/// The table's expiry attribute (epoch seconds); DynamoDB deletes an item some time after it.
pub const TTL: &str = "ttl";

/// Events and deliveries of one outbox part: written in the sweep's transaction as one item,
/// expanded into their own items right after.
#[derive(serde::Serialize, serde::Deserialize)]
struct OutboxPart {
    events: Vec<EventRecord>,
    deliveries: Vec<DeliveryRecord>,
}

/// An outbox item written by a transaction, to expand and then delete.
struct PendingOutbox {
    pk: String,
    sk: String,
    part: OutboxPart,
}

/// How a batch of history goes into a transaction.
struct HistoryWrites {
    writes: Vec<TransactWriteItem>,
    outbox: Vec<PendingOutbox>,
}

fn delivery_status(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}

fn team_item(team: &Team) -> StoreResult<Item> {
    let mut item = primary_key(keys::team(&team.id.0), keys::TEAM_SK);
    item.insert(ENTITY.into(), s("team"));
    item.insert(BODY.into(), s(to_json("team", team)?));
    Ok(item)
}

fn token_item(team: &Team) -> Item {
    let mut item = primary_key(keys::token(&team.token_hash), keys::TOKEN_SK);
    item.insert(ENTITY.into(), s("team_token"));
    item.insert(TEAM_ID.into(), s(team.id.0.clone()));
    item
}

fn key_item(key: &ApiKeyRecord) -> StoreResult<Item> {
    let mut item = primary_key(keys::key(&key.id.0), keys::KEY_SK);
    item.insert(ENTITY.into(), s("key"));
    item.insert("id".into(), s(key.id.0.clone()));
    item.insert(TEAM_ID.into(), s(key.team_id.0.clone()));
    item.insert("key_id".into(), s(key.account.identity()));
    // Top-level for the validator's stream filter.
    item.insert("status".into(), s(key.status.as_str()));
    item.insert(
        "validation_attempts".into(),
        n(u64::from(key.validation_attempts)),
    );
    item.insert(REVISION.into(), n(key.revision));
    item.insert(BODY.into(), s(to_json("key", key)?));
    item.insert(GSI1PK.into(), s(keys::key_index_partition(&key.id.0)));
    item.insert(GSI1SK.into(), s(key_list_sort_key(key)));
    Ok(item)
}

fn key_id_guard_item(key: &ApiKeyRecord) -> Item {
    let mut item = primary_key(
        keys::team(&key.team_id.0),
        keys::key_id_guard(key.account.identity()),
    );
    item.insert(ENTITY.into(), s("key_id_guard"));
    item.insert("key_record_id".into(), s(key.id.0.clone()));
    item
}

fn snapshot_item(snapshot: &StoredSnapshot) -> StoreResult<Item> {
    let mut item = primary_key(keys::key(&snapshot.key_record_id.0), keys::SNAPSHOT_SK);
    item.insert(ENTITY.into(), s("snapshot"));
    item.insert(TEAM_ID.into(), s(snapshot.team_id.0.clone()));
    item.insert(VERSION.into(), n(snapshot.version));
    item.insert(BODY_GZ.into(), compress("snapshot", snapshot)?);
    Ok(item)
}

fn destination_item(destination: &Destination) -> StoreResult<Item> {
    let mut item = primary_key(
        keys::team(&destination.team_id.0),
        keys::destination(&destination.id.0),
    );
    item.insert(ENTITY.into(), s("destination"));
    item.insert(BODY.into(), s(to_json("destination", destination)?));
    Ok(item)
}

fn workflow_item(workflow: &Workflow) -> StoreResult<Item> {
    let mut item = primary_key(
        keys::team(&workflow.team_id.0),
        keys::workflow(&workflow.id.0),
    );
    item.insert(ENTITY.into(), s("workflow"));
    item.insert(BODY.into(), s(to_json("workflow", workflow)?));
    Ok(item)
}

fn event_item(event: &EventRecord) -> StoreResult<Item> {
    let mut item = primary_key(keys::event(&event.id.0), keys::EVENT_SK);
    item.insert(ENTITY.into(), s("event"));
    item.insert(TEAM_ID.into(), s(event.team_id.0.clone()));
    item.insert("event_type".into(), s(event.event_type.clone()));
    if let Some(app_id) = &event.app_id {
        item.insert("app_id".into(), s(app_id.clone()));
    }
    item.insert("search".into(), s(search_text(event)));
    item.insert(BODY.into(), s(to_json("event", event)?));
    item.insert(GSI1PK.into(), s(keys::team_events(&event.team_id.0)));
    item.insert(GSI1SK.into(), s(event_position(event).sort_key()));
    Ok(item)
}

fn delivery_item(delivery: &DeliveryRecord) -> StoreResult<Item> {
    let mut item = primary_key(
        keys::event(&delivery.event_id.0),
        keys::delivery(&delivery.id.0),
    );
    item.insert(ENTITY.into(), s("delivery"));
    item.insert(TEAM_ID.into(), s(delivery.team_id.0.clone()));
    item.insert("status".into(), s(delivery_status(delivery.status)));
    item.insert(REVISION.into(), n(delivery.revision));
    item.insert(BODY.into(), s(to_json("delivery", delivery)?));
    // Sparse index: only pending deliveries are in the due partition.
    if let Some(due) = due_key(delivery) {
        item.insert(GSI1PK.into(), s(keys::DUE));
        item.insert(GSI1SK.into(), s(due));
    }
    Ok(item)
}

fn sort_by_creation<T>(records: &mut [T], key: impl Fn(&T) -> (DateTime<Utc>, String)) {
    records.sort_by_cached_key(key);
}

impl AwsStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    fn put_if_absent(&self, item: Item) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error("transaction put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete_write(&self, pk: String, sk: &str) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(primary_key(pk, sk)))
            .build()
            .map_err(build_error("transaction delete"))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    async fn transact(&self, operation: &str, writes: Vec<TransactWriteItem>) -> StoreResult<()> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| transaction_error(operation, e))
    }

    async fn get_item(&self, operation: &str, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map(|output| output.item)
            .map_err(|e| dynamo_error(operation, e))
    }

    /// The items stored under `keys` (consistent reads), in no particular order; absent ones are
    /// left out. Chunks of [`MAX_BATCH_GET_KEYS`] run in parallel.
    async fn batch_get(&self, operation: &'static str, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let chunks: Vec<Vec<Item>> = keys
            .chunks(MAX_BATCH_GET_KEYS)
            .map(<[Item]>::to_vec)
            .collect();
        let answers = self
            .in_parallel(chunks, move |store, chunk| async move {
                store.batch_get_chunk(operation, chunk).await
            })
            .await?;
        let mut items = Vec::with_capacity(keys.len());
        for answer in answers {
            items.extend(answer?);
        }
        Ok(items)
    }

    /// One `BatchGetItem`, asking again for the `UnprocessedKeys` with a growing pause.
    async fn batch_get_chunk(&self, operation: &str, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut items = Vec::with_capacity(keys.len());
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(build_error(operation))?;
        for round in 1..=MAX_BATCH_GET_ROUNDS {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| dynamo_error(operation, e))?;
            if let Some(found) = output.responses.and_then(|mut r| r.remove(&self.table)) {
                items.extend(found);
            }
            match output
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
            {
                Some(rest) if !rest.keys().is_empty() => pending = rest,
                _ => return Ok(items),
            }
            if round < MAX_BATCH_GET_ROUNDS {
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
        }
        Err(StoreError::Unavailable(format!(
            "{operation}: keys still unprocessed after {MAX_BATCH_GET_ROUNDS} attempts"
        )))
    }

    /// Deletes one item; whether it was there.
    async fn delete_item(&self, operation: &str, pk: String, sk: String) -> StoreResult<bool> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(pk, sk)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map(|output| output.attributes.is_some())
            .map_err(|e| dynamo_error(operation, e))
    }

    /// Every item of a query, following `LastEvaluatedKey`.
    async fn query_all(
        &self,
        operation: &str,
        query: QueryFluentBuilder,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error(operation, e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Every item of one gsi1 partition, in its sort key order.
    fn query_gsi1_partition(&self, partition: String) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#gpk = :gpk")
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_values(":gpk", s(partition))
    }

    /// Items of one partition whose sort key starts with `prefix` (strongly consistent).
    fn query_prefix(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
    }

    /// Bodies of the team-partition items under `prefix`, oldest first by `created_at`.
    async fn list_team_records<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        team: &TeamId,
        prefix: &str,
        created: impl Fn(&T) -> (DateTime<Utc>, String),
    ) -> StoreResult<Vec<T>> {
        let items = self
            .query_all(what, self.query_prefix(keys::team(&team.0), prefix))
            .await?;
        let mut records = items
            .iter()
            .map(|item| body(what, item))
            .collect::<StoreResult<Vec<T>>>()?;
        sort_by_creation(&mut records, created);
        Ok(records)
    }

    /// Runs `requests` at most [`MAX_PARALLEL_REQUESTS`] at a time; results in input order.
    async fn in_parallel<T, F, Fut>(
        &self,
        inputs: Vec<T>,
        request: F,
    ) -> StoreResult<Vec<Fut::Output>>
    where
        T: Send + 'static,
        F: Fn(Self, T) -> Fut,
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let mut results: Vec<Option<Fut::Output>> = Vec::with_capacity(inputs.len());
        results.resize_with(inputs.len(), || None);
        let mut running = JoinSet::new();
        for (index, input) in inputs.into_iter().enumerate() {
            if running.len() >= MAX_PARALLEL_REQUESTS
                && let Some(done) = running.join_next().await
            {
                let (done_index, output) = done.map_err(task_failed)?;
                results[done_index] = Some(output);
            }
            let future = request(self.clone(), input);
            running.spawn(async move { (index, future.await) });
        }
        while let Some(done) = running.join_next().await {
            let (done_index, output) = done.map_err(task_failed)?;
            results[done_index] = Some(output);
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| StoreError::Unavailable("a parallel request was lost".into())))
            .collect()
    }

    /// Puts each item unless one with its key is already stored (idempotent outbox expansion).
    async fn put_all_if_absent(&self, items: Vec<Item>) -> StoreResult<()> {
        let results = self
            .in_parallel(items, |store, item| async move {
                let put = store
                    .client
                    .put_item()
                    .table_name(&store.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await;
                match put {
                    Ok(_) => Ok(()),
                    Err(e) => match dynamo_error("expand outbox", e) {
                        StoreError::Conflict(_) => Ok(()),
                        other => Err(other),
                    },
                }
            })
            .await?;
        results.into_iter().collect()
    }

    /// Transaction writes for `events` and `deliveries` next to `reserved` other writes: the items
    /// themselves when they fit one transaction, else outbox parts (expanded after the commit).
    fn history_writes(
        &self,
        reserved: usize,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<HistoryWrites> {
        if reserved + events.len() + deliveries.len() <= MAX_TRANSACTION_ITEMS {
            let mut writes = Vec::with_capacity(events.len() + deliveries.len());
            for event in events {
                writes.push(self.put_if_absent(event_item(event)?)?);
            }
            for delivery in deliveries {
                writes.push(self.put_if_absent(delivery_item(delivery)?)?);
            }
            return Ok(HistoryWrites {
                writes,
                outbox: Vec::new(),
            });
        }
        let parts = outbox_parts(events, deliveries)?;
        if reserved + parts.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Unavailable(format!(
                "{} events do not fit one sweep commit",
                events.len()
            )));
        }
        let batch = uuid::Uuid::new_v4().to_string();
        // Dated by the sweep's own clock (the events' time), so the oldest batch drains first.
        let dated = time_key(
            events
                .iter()
                .map(|event| event.time)
                .min()
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        );
        let mut writes = Vec::with_capacity(parts.len());
        let mut outbox = Vec::with_capacity(parts.len());
        for (index, (part, compressed)) in parts.into_iter().enumerate() {
            let (pk, sk) = (keys::outbox(&batch), keys::outbox_part(index));
            let mut item = primary_key(pk.clone(), sk.clone());
            item.insert(ENTITY.into(), s("outbox"));
            item.insert(BODY_GZ.into(), compressed);
            item.insert(GSI1PK.into(), s(keys::OUTBOX));
            item.insert(GSI1SK.into(), s(format!("{dated}#{batch}#{sk}")));
            writes.push(self.put_if_absent(item)?);
            outbox.push(PendingOutbox { pk, sk, part });
        }
        Ok(HistoryWrites { writes, outbox })
    }

    /// Writes the events and deliveries of outbox parts as their own items, then drops the parts.
    async fn expand_outbox(&self, outbox: Vec<PendingOutbox>) -> StoreResult<()> {
        for pending in outbox {
            let mut items = Vec::new();
            for event in &pending.part.events {
                items.push(event_item(event)?);
            }
            for delivery in &pending.part.deliveries {
                items.push(delivery_item(delivery)?);
            }
            self.put_all_if_absent(items).await?;
            self.delete_item("expand outbox", pending.pk, pending.sk)
                .await?;
        }
        Ok(())
    }

    /// Finishes outbox batches a crashed writer left unexpanded.
    async fn drain_outbox(&self) -> StoreResult<()> {
        let items = self
            .query_all(
                "drain outbox",
                self.query_gsi1_partition(keys::OUTBOX.to_owned()),
            )
            .await?;
        let mut outbox = Vec::with_capacity(items.len());
        for item in &items {
            outbox.push(PendingOutbox {
                pk: string_attr(item, PK)?.to_owned(),
                sk: string_attr(item, SK)?.to_owned(),
                part: compressed_body("outbox part", item)?,
            });
        }
        self.expand_outbox(outbox).await
    }

    /// Writes `history` (after the transaction committed it); a failed expansion is left to
    /// [`Self::drain_outbox`] because the commit itself has happened.
    async fn finish_history(&self, outbox: Vec<PendingOutbox>) {
        if outbox.is_empty() {
            return;
        }
        if let Err(error) = self.expand_outbox(outbox).await {
            tracing::warn!(%error, "outbox expansion failed; the next delivery run finishes it");
        }
    }

    async fn deliveries_of(&self, event: EventId) -> StoreResult<Vec<DeliveryRecord>> {
        let items = self
            .query_all(
                "list deliveries",
                self.query_prefix(keys::event(&event.0), keys::DELIVERY_PREFIX),
            )
            .await?;
        let mut deliveries = items
            .iter()
            .map(|item| body("delivery", item))
            .collect::<StoreResult<Vec<DeliveryRecord>>>()?;
        sort_by_creation(&mut deliveries, |d| (d.created_at, d.id.0.clone()));
        Ok(deliveries)
    }
}

fn task_failed(error: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("request task failed: {error}"))
}

/// Splits history into outbox parts that each fit one item once compressed.
fn outbox_parts(
    events: &[EventRecord],
    deliveries: &[DeliveryRecord],
) -> StoreResult<Vec<(OutboxPart, aws_sdk_dynamodb::types::AttributeValue)>> {
    let mut by_event: HashMap<&EventId, Vec<DeliveryRecord>> = HashMap::new();
    let mut unmatched = Vec::new();
    let event_ids: std::collections::HashSet<&EventId> = events.iter().map(|e| &e.id).collect();
    for delivery in deliveries {
        if event_ids.contains(&delivery.event_id) {
            by_event
                .entry(&delivery.event_id)
                .or_default()
                .push(delivery.clone());
        } else {
            unmatched.push(delivery.clone());
        }
    }
    let mut groups: Vec<OutboxPart> = events
        .chunks(EVENTS_PER_OUTBOX_PART)
        .map(|chunk| OutboxPart {
            events: chunk.to_vec(),
            deliveries: chunk
                .iter()
                .flat_map(|e| by_event.remove(&e.id).unwrap_or_default())
                .collect(),
        })
        .collect();
    if !unmatched.is_empty() {
        groups.push(OutboxPart {
            events: Vec::new(),
            deliveries: unmatched,
        });
    }
    let mut parts = Vec::with_capacity(groups.len());
    while let Some(group) = groups.pop() {
        match compress("outbox part", &group) {
            Ok(compressed) if compressed_len(&compressed) <= MAX_COMPRESSED_BODY => {
                parts.push((group, compressed));
            }
            // Too big for one item: halve it, unless it is a single event already.
            Err(StoreError::Unavailable(_)) if group.events.len() > 1 => {
                let half = group.events.len() / 2;
                let (first, second) = group.events.split_at(half);
                let first_ids: std::collections::HashSet<&EventId> =
                    first.iter().map(|e| &e.id).collect();
                let (first_deliveries, second_deliveries): (Vec<_>, Vec<_>) = group
                    .deliveries
                    .iter()
                    .cloned()
                    .partition(|d| first_ids.contains(&d.event_id));
                groups.push(OutboxPart {
                    events: first.to_vec(),
                    deliveries: first_deliveries,
                });
                groups.push(OutboxPart {
                    events: second.to_vec(),
                    deliveries: second_deliveries,
                });
            }
            Ok(_) => {
                return Err(StoreError::Unavailable(
                    "outbox part does not fit one item".to_owned(),
                ));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(parts)
}

#[async_trait]
impl TeamStore for AwsStore {
    async fn insert_team(&self, team: &Team) -> StoreResult<()> {
        let writes = vec![
            self.put_if_absent(team_item(team)?)?,
            self.put_if_absent(token_item(team))?,
        ];
        self.transact("insert team", writes).await
    }

    async fn get_team(&self, id: &TeamId) -> StoreResult<Option<Team>> {
        self.get_item("get team", keys::team(&id.0), keys::TEAM_SK)
            .await?
            .map(|item| body("team", &item))
            .transpose()
    }

    async fn find_team_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Team>> {
        let Some(token) = self
            .get_item("find team", keys::token(token_hash), keys::TOKEN_SK)
            .await?
        else {
            return Ok(None);
        };
        let team_id = TeamId(string_attr(&token, TEAM_ID)?.to_owned());
        let team = self.get_team(&team_id).await?;
        Ok(team.filter(|t| t.token_hash == token_hash))
    }
}

#[async_trait]
impl KeyStore for AwsStore {
    async fn insert_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let writes = vec![
            self.put_if_absent(key_item(key)?)?,
            self.put_if_absent(key_id_guard_item(key))?,
        ];
        self.transact("insert key", writes)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the team already has a key with this Key ID".to_owned())
                }
                other => other,
            })
    }

    async fn get_key(&self, team: &TeamId, id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>> {
        let key = self.get_key_by_id(id).await?;
        Ok(key.filter(|k| &k.team_id == team))
    }

    async fn get_key_by_id(&self, id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>> {
        self.get_item("get key", keys::key(&id.0), keys::KEY_SK)
            .await?
            .map(|item| body("key", &item))
            .transpose()
    }

    async fn list_keys(&self, team: &TeamId) -> StoreResult<Vec<ApiKeyRecord>> {
        // The Key ID guards in the team partition name the team's keys (strongly consistent).
        let guards = self
            .query_all(
                "list keys",
                self.query_prefix(keys::team(&team.0), keys::KEY_ID_GUARD_PREFIX),
            )
            .await?;
        let ids = guards
            .iter()
            .map(|guard| string_attr(guard, "key_record_id").map(|id| KeyRecordId(id.to_owned())))
            .collect::<StoreResult<Vec<_>>>()?;
        let fetched = self
            .in_parallel(
                ids,
                |store, id| async move { store.get_key_by_id(&id).await },
            )
            .await?;
        let mut keys = Vec::with_capacity(fetched.len());
        for key in fetched {
            if let Some(key) = key?
                && &key.team_id == team
            {
                keys.push(key);
            }
        }
        sort_by_creation(&mut keys, |k| (k.created_at, k.id.0.clone()));
        Ok(keys)
    }

    async fn list_keys_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ApiKeyRecord>> {
        let limit = limit.max(1);
        let mut position = match cursor {
            Some(cursor) => KeyListPosition::from_cursor(cursor)?,
            None => KeyListPosition {
                partition: 0,
                after: None,
            },
        };
        let mut items = Vec::with_capacity(limit);
        // The index partitions are read one after the other; a page may span several.
        while let Some(partition) = keys::key_index_partition_name(position.partition) {
            let wanted = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
            let start = position.after.as_ref().map(|after| {
                // A GSI query resumes from the index key and the table key of the last item.
                let id = after.split_once('#').map(|(_, id)| id).unwrap_or_default();
                let mut start = primary_key(keys::key(id), keys::KEY_SK);
                start.insert(GSI1PK.into(), s(partition.clone()));
                start.insert(GSI1SK.into(), s(after.clone()));
                start
            });
            let page = self
                .query_gsi1_partition(partition)
                .limit(wanted)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("list all keys", e))?;
            for item in page.items.unwrap_or_default() {
                items.push(body::<ApiKeyRecord>("key", &item)?);
            }
            let partition_done = page.last_evaluated_key.is_none_or(|key| key.is_empty());
            position = if partition_done {
                KeyListPosition {
                    partition: position.partition + 1,
                    after: None,
                }
            } else {
                KeyListPosition {
                    partition: position.partition,
                    after: items.last().map(key_list_sort_key),
                }
            };
            if items.len() >= limit {
                break;
            }
        }
        let next_cursor = keys::key_index_partition_name(position.partition)
            .is_some()
            .then(|| position.to_cursor());
        Ok(Page { items, next_cursor })
    }

    async fn update_key(&self, key: &ApiKeyRecord, expected_revision: u64) -> StoreResult<()> {
        check_next_revision("key", key.revision, expected_revision)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_item(key)?))
            .condition_expression("#rev = :expected AND #team = :team")
            .expression_attribute_names("#rev", REVISION)
            .expression_attribute_names("#team", TEAM_ID)
            .expression_attribute_values(":expected", n(expected_revision))
            .expression_attribute_values(":team", s(key.team_id.0.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match dynamo_error("update key", e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the key was changed or deleted meanwhile".to_owned())
                }
                other => other,
            })
    }

    async fn update_key_announcing(
        &self,
        key: &ApiKeyRecord,
        expected_revision: u64,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<()> {
        check_next_revision("key", key.revision, expected_revision)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(key_item(key)?))
            .condition_expression("#rev = :expected AND #team = :team")
            .expression_attribute_names("#rev", REVISION)
            .expression_attribute_names("#team", TEAM_ID)
            .expression_attribute_values(":expected", n(expected_revision))
            .expression_attribute_values(":team", s(key.team_id.0.clone()))
            .build()
            .map_err(build_error("update key"))?;
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        let history = self.history_writes(writes.len(), events, deliveries)?;
        writes.extend(history.writes);
        self.transact("update key", writes)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the key was changed or deleted meanwhile".to_owned())
                }
                other => other,
            })?;
        self.finish_history(history.outbox).await;
        Ok(())
    }

    async fn delete_key(&self, team: &TeamId, id: &KeyRecordId) -> StoreResult<bool> {
        let Some(key) = self.get_key(team, id).await? else {
            return Ok(false);
        };
        let delete_key = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(primary_key(keys::key(&id.0), keys::KEY_SK)))
            .condition_expression("#team = :team")
            .expression_attribute_names("#team", TEAM_ID)
            .expression_attribute_values(":team", s(team.0.clone()))
            .build()
            .map_err(build_error("delete key"))?;
        let writes = vec![
            TransactWriteItem::builder().delete(delete_key).build(),
            self.delete_write(
                keys::team(&team.0),
                &keys::key_id_guard(key.account.identity()),
            )?,
            self.delete_write(keys::key(&id.0), keys::SNAPSHOT_SK)?,
        ];
        match self.transact("delete key", writes).await {
            Ok(()) => Ok(true),
            // Deleted by someone else meanwhile.
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

#[async_trait]
impl DestinationStore for AwsStore {
    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()> {
        let write = self.put_if_absent(destination_item(destination)?)?;
        self.transact("insert destination", vec![write]).await
    }

    async fn get_destination(
        &self,
        team: &TeamId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>> {
        self.get_item(
            "get destination",
            keys::team(&team.0),
            &keys::destination(&id.0),
        )
        .await?
        .map(|item| body("destination", &item))
        .transpose()
    }

    async fn list_destinations(&self, team: &TeamId) -> StoreResult<Vec<Destination>> {
        self.list_team_records(
            "destination",
            team,
            keys::DESTINATION_PREFIX,
            |d: &Destination| (d.created_at, d.id.0.clone()),
        )
        .await
    }

    async fn delete_destination(&self, team: &TeamId, id: &DestinationId) -> StoreResult<bool> {
        self.delete_item(
            "delete destination",
            keys::team(&team.0),
            keys::destination(&id.0),
        )
        .await
    }

    async fn record_destination_outcome(
        &self,
        team: &TeamId,
        id: &DestinationId,
        outcome: &LastOutcome,
    ) -> StoreResult<bool> {
        let Some(mut destination) = self.get_destination(team, id).await? else {
            return Ok(false);
        };
        if !outcome.replaces(destination.last_outcome.as_ref()) {
            return Ok(true);
        }
        destination.last_outcome = Some(outcome.clone());
        // Only while it exists: a deletion in between must not bring the destination back.
        let write = self.put_write(
            destination_item(&destination)?,
            Some("attribute_exists(pk)"),
        )?;
        match self
            .transact("record destination outcome", vec![write])
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

#[async_trait]
impl WorkflowStore for AwsStore {
    async fn insert_workflow(&self, workflow: &Workflow) -> StoreResult<()> {
        let write = self.put_if_absent(workflow_item(workflow)?)?;
        self.transact("insert workflow", vec![write]).await
    }

    async fn get_workflow(&self, team: &TeamId, id: &WorkflowId) -> StoreResult<Option<Workflow>> {
        self.get_item("get workflow", keys::team(&team.0), &keys::workflow(&id.0))
            .await?
            .map(|item| body("workflow", &item))
            .transpose()
    }

    async fn list_workflows(&self, team: &TeamId) -> StoreResult<Vec<Workflow>> {
        self.list_team_records("workflow", team, keys::WORKFLOW_PREFIX, |w: &Workflow| {
            (w.created_at, w.id.0.clone())
        })
        .await
    }

    async fn delete_workflow(&self, team: &TeamId, id: &WorkflowId) -> StoreResult<bool> {
        self.delete_item(
            "delete workflow",
            keys::team(&team.0),
            keys::workflow(&id.0),
        )
        .await
    }
}

#[async_trait]
impl SweepStore for AwsStore {
    async fn get_snapshot(&self, key: &KeyRecordId) -> StoreResult<Option<StoredSnapshot>> {
        self.get_item("get snapshot", keys::key(&key.0), keys::SNAPSHOT_SK)
            .await?
            .map(|item| compressed_body("snapshot", &item))
            .transpose()
    }

    async fn get_snapshots(&self, ids: &[KeyRecordId]) -> StoreResult<Vec<StoredSnapshot>> {
        // BatchGetItem refuses a request that names one key twice.
        let unique: std::collections::BTreeSet<&str> = ids.iter().map(|id| id.0.as_str()).collect();
        let item_keys = unique
            .into_iter()
            .map(|key| primary_key(keys::key(key), keys::SNAPSHOT_SK))
            .collect();
        self.batch_get("get snapshots", item_keys)
            .await?
            .iter()
            .map(|item| compressed_body("snapshot", item))
            .collect()
    }

    async fn commit_sweep(&self, commit: &SweepCommit) -> StoreResult<()> {
        let operation = "commit sweep";
        check_next_revision("snapshot", commit.snapshot.version, commit.expected_version)?;
        let key_pk = keys::key(&commit.snapshot.key_record_id.0);
        // The key must still exist, so a sweep of a key deleted meanwhile leaves nothing behind.
        let key_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(primary_key(key_pk, keys::KEY_SK)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_error(operation))?;
        let snapshot = Put::builder()
            .table_name(&self.table)
            .set_item(Some(snapshot_item(&commit.snapshot)?));
        let snapshot = if commit.expected_version == 0 {
            snapshot.condition_expression("attribute_not_exists(pk)")
        } else {
            snapshot
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":expected", n(commit.expected_version))
        }
        .build()
        .map_err(build_error(operation))?;
        let mut writes = vec![
            TransactWriteItem::builder()
                .condition_check(key_exists)
                .build(),
            TransactWriteItem::builder().put(snapshot).build(),
        ];
        let history = self.history_writes(writes.len(), &commit.events, &commit.deliveries)?;
        writes.extend(history.writes);
        self.transact(operation, writes).await?;
        self.finish_history(history.outbox).await;
        Ok(())
    }

    async fn append_events(
        &self,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<()> {
        if events.is_empty() && deliveries.is_empty() {
            return Ok(());
        }
        let history = self.history_writes(0, events, deliveries)?;
        self.transact("append events", history.writes).await?;
        self.finish_history(history.outbox).await;
        Ok(())
    }

    async fn list_events(
        &self,
        team: &TeamId,
        query: &EventQuery,
    ) -> StoreResult<Page<EventWithDeliveries>> {
        let limit = effective_limit(query.limit);
        let after = query
            .cursor
            .as_deref()
            .map(EventPosition::from_cursor)
            .transpose()?;
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .scan_index_forward(false)
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_values(":gpk", s(keys::team_events(&team.0)));
        request = match &after {
            Some(after) => request
                .key_condition_expression("#gpk = :gpk AND #gsk < :after")
                .expression_attribute_names("#gsk", GSI1SK)
                .expression_attribute_values(":after", s(after.sort_key())),
            None => request.key_condition_expression("#gpk = :gpk"),
        };
        let mut filters = Vec::new();
        if let Some(app_id) = &query.app_id {
            filters.push("#app = :app");
            request = request
                .expression_attribute_names("#app", "app_id")
                .expression_attribute_values(":app", s(app_id.clone()));
        }
        if let Some(event_type) = &query.event_type {
            filters.push("#type = :type");
            request = request
                .expression_attribute_names("#type", "event_type")
                .expression_attribute_values(":type", s(event_type.clone()));
        }
        if let Some(needle) = search_needle(query.text.as_deref()) {
            filters.push("contains(#search, :needle)");
            request = request
                .expression_attribute_names("#search", "search")
                .expression_attribute_values(":needle", s(needle));
        }
        // DynamoDB applies Limit before the filter: read wider pages when filtering.
        let page_size = if filters.is_empty() { limit + 1 } else { 200 };
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        let request = request.limit(page_size as i32);

        let mut events: Vec<EventRecord> = Vec::with_capacity(limit + 1);
        let mut start = None;
        // One more than asked tells whether another page follows.
        while events.len() <= limit {
            let page = request
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("list events", e))?;
            for item in page.items.unwrap_or_default() {
                events.push(body("event", &item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        let more = events.len() > limit;
        events.truncate(limit);
        let next_cursor = match events.last() {
            Some(last) if more => Some(event_position(last).to_cursor()),
            _ => None,
        };
        let ids = events.iter().map(|e| e.id.clone()).collect();
        let deliveries = self
            .in_parallel(
                ids,
                |store, id| async move { store.deliveries_of(id).await },
            )
            .await?;
        let items = events
            .into_iter()
            .zip(deliveries)
            .map(|(event, deliveries)| {
                Ok(EventWithDeliveries {
                    event,
                    deliveries: deliveries?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        self.get_item("get event", keys::event(&id.0), keys::EVENT_SK)
            .await?
            .map(|item| body("event", &item))
            .transpose()
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        if let Err(error) = self.drain_outbox().await {
            tracing::warn!(%error, "could not finish a pending outbox batch");
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit as usize;
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#gpk = :gpk AND #gsk < :upper")
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_names("#gsk", GSI1SK)
            .expression_attribute_values(":gpk", s(keys::DUE))
            .expression_attribute_values(":upper", s(due_upper_bound(now)))
            .limit(limit.min(1000) as i32);
        let mut due = Vec::with_capacity(limit);
        let mut start = None;
        while due.len() < limit {
            let page = request
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("due deliveries", e))?;
            for item in page.items.unwrap_or_default() {
                due.push(body("delivery", &item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        due.truncate(limit);
        Ok(due)
    }

    async fn update_delivery(
        &self,
        delivery: &DeliveryRecord,
        expected_revision: u64,
    ) -> StoreResult<()> {
        check_next_revision("delivery", delivery.revision, expected_revision)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(delivery_item(delivery)?))
            .condition_expression("#rev = :expected")
            .expression_attribute_names("#rev", REVISION)
            .expression_attribute_values(":expected", n(expected_revision))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match dynamo_error("update delivery", e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the delivery was changed meanwhile".to_owned())
                }
                other => other,
            })
    }
}

/// Remembered push notification ids: one item per `(webhook, data.id)` under `PUSH#{webhook}`,
/// with a [`TTL`]. DynamoDB deletes expired items only eventually, so the condition treats an
/// item whose `ttl` has passed as absent.
#[async_trait]
impl PushStore for AwsStore {
    async fn remember_notification(
        &self,
        webhook: &str,
        data_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut item = primary_key(push_pk(webhook), push_sk(data_id));
        item.insert(ENTITY.to_owned(), s("push_notification"));
        item.insert(TTL.to_owned(), n(expires_at.timestamp().max(0) as u64));
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":now", n(now.timestamp().max(0) as u64))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(error) => match dynamo_error("remember notification", error) {
                StoreError::Conflict(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn forget_notification(&self, webhook: &str, data_id: &str) -> StoreResult<()> {
        self.delete_item("forget notification", push_pk(webhook), push_sk(data_id))
            .await
            .map(|_| ())
    }
}

fn push_pk(webhook: &str) -> String {
    format!("PUSH#{webhook}")
}

fn push_sk(data_id: &str) -> String {
    format!("NOTIFICATION#{data_id}")
}
