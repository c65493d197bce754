//! The sweep's fan-out through SQS, against moto's SQS: the scheduled invocation plans shards and
//! queues them (the real `SqsShardQueue`), the messages received from moto are handed to the
//! status-sweep handler as the SQS Lambda event the event source mapping would send, and the
//! keys' accounts are served by the fake App Store Connect. Records live in the embedded store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipwatch_adapters::app_store_connect::AppStoreConnectAccounts;
use shipwatch_adapters::delivery::HttpDeliverer;
use shipwatch_adapters::queue::SqsShardQueue;
use shipwatch_service::domain::event_data::EventData;
use shipwatch_service::fanout::{FanoutConfig, FanoutSweep, ShardQueue, SweepShard};
use shipwatch_service::model::*;
use shipwatch_service::ports::{StoreError, StoreResult, Stores, SweepCommit, SweepStore};
use shipwatch_service::sweep::{SweepConfig, SweepService};
use shipwatch_shared::asc::{AscClient, AscConfig};
use shipwatch_shared::clock::{Clock, ManualClock};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeVersion};
use shipwatch_tests::moto::moto;
use shipwatch_tests::test_keys::TestKey;

/// Fails `commit_sweep` for one key while `failures_left` > 0 (a store outage in the middle of
/// a shard); everything else goes to the real store.
struct FlakyCommits {
    inner: Arc<dyn SweepStore>,
    key: std::sync::Mutex<Option<KeyRecordId>>,
    failures_left: AtomicUsize,
}

#[async_trait]
impl SweepStore for FlakyCommits {
    async fn get_snapshot(&self, key: &KeyRecordId) -> StoreResult<Option<StoredSnapshot>> {
        self.inner.get_snapshot(key).await
    }
    async fn get_snapshots(&self, keys: &[KeyRecordId]) -> StoreResult<Vec<StoredSnapshot>> {
        self.inner.get_snapshots(keys).await
    }
    async fn commit_sweep(&self, commit: &SweepCommit) -> StoreResult<()> {
        let targeted = self
            .key
            .lock()
            .map(|key| key.as_ref() == Some(&commit.snapshot.key_record_id))
            .unwrap_or(false);
        if targeted
            && self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(StoreError::Unavailable(
                "injected fault: commit_sweep".into(),
            ));
        }
        self.inner.commit_sweep(commit).await
    }
    async fn append_events(
        &self,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<()> {
        self.inner.append_events(events, deliveries).await
    }
    async fn list_events(
        &self,
        team: &TeamId,
        query: &EventQuery,
    ) -> StoreResult<Page<EventWithDeliveries>> {
        self.inner.list_events(team, query).await
    }
    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        self.inner.get_event(id).await
    }
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.inner.due_deliveries(now, limit).await
    }
    async fn update_delivery(
        &self,
        delivery: &DeliveryRecord,
        expected_revision: u64,
    ) -> StoreResult<()> {
        self.inner
            .update_delivery(delivery, expected_revision)
            .await
    }
}

/// One watched key: its record id and the version whose state the test changes.
struct WatchedKey {
    id: KeyRecordId,
    app_id: String,
    version_id: String,
}

struct Harness {
    asc: FakeAsc,
    clock: Arc<ManualClock>,
    stores: Stores,
    flaky: Arc<FlakyCommits>,
    team: TeamId,
    keys: Vec<WatchedKey>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    fanout: FanoutSweep,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(key_count: usize, shard_size: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::starting_now());
        let asc = FakeAsc::start_with_clock(clock.clone()).await;
        let real = shipwatch_adapters::embedded::stores(dir.path()).expect("embedded store");
        let flaky = Arc::new(FlakyCommits {
            inner: real.sweeps.clone(),
            key: std::sync::Mutex::new(None),
            failures_left: AtomicUsize::new(0),
        });
        let stores = Stores {
            sweeps: flaky.clone(),
            ..real
        };
        let team = TeamId::generate();
        stores
            .teams
            .insert_team(&Team {
                id: team.clone(),
                name: "Fan-out".into(),
                token_hash: format!("{:064x}", rand::random::<u128>()),
                created_at: clock.now(),
            })
            .await
            .expect("team");
        let mut keys = Vec::new();
        for index in 0..key_count {
            keys.push(add_key(&asc, &stores, &team, clock.now(), index).await);
        }

        let moto = moto().await;
        let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config());
        let created = sqs
            .create_queue()
            .queue_name(shipwatch_tests::moto::unique_table_name("shards"))
            .attributes(QueueAttributeName::VisibilityTimeout, "120")
            .send()
            .await
            .expect("moto creates the queue");
        let queue_url = created.queue_url().expect("queue url").to_owned();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn).cloned())
            .expect("queue arn");
        let queue: Arc<dyn ShardQueue> = Arc::new(SqsShardQueue::new(sqs.clone(), &queue_url));

        let client = AscClient::with_clock(
            AscConfig::new(&asc.base_url()).expect("fake url"),
            clock.clone(),
        )
        .expect("client");
        let accounts = AppStoreConnectAccounts::port(client.clone());
        let sweeper = SweepService::new(
            stores.clone(),
            accounts.clone(),
            Arc::new(HttpDeliverer::new(true, Duration::from_secs(5)).expect("deliverer")),
            clock.clone(),
            SweepConfig::default(),
        );
        let feedback = shipwatch_service::push::feedback::FeedbackService::new(
            stores.clone(),
            accounts,
            Arc::new(shipwatch_adapters::app_store_connect_webhooks::AscWebhookAdmin::new(client)),
            clock.clone(),
        );
        let fanout = FanoutSweep::new(
            sweeper,
            Some(queue),
            clock.clone(),
            FanoutConfig {
                shard_size,
                ..FanoutConfig::default()
            },
        )
        .with_feedback(feedback);
        Self {
            asc,
            clock,
            stores,
            flaky,
            team,
            keys,
            sqs,
            queue_url,
            queue_arn,
            fanout,
            _dir: dir,
        }
    }

    /// The status-sweep handler, as the EventBridge schedule invokes it.
    async fn scheduled(&self) -> Value {
        let event = json!({"version": "0", "id": "test", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-26T16:01:00Z",
            "region": "us-east-1", "resources": [], "detail": {}});
        status_sweep::handle(&self.fanout, event)
            .await
            .expect("a readable event")
    }

    /// Receives until `count` messages are in hand (moto answers at most 10 per call).
    async fn receive(&self, count: usize) -> Vec<aws_sdk_sqs::types::Message> {
        let mut messages = Vec::new();
        for _ in 0..20 {
            if messages.len() >= count {
                break;
            }
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            messages.extend(received.messages().iter().cloned());
        }
        assert_eq!(messages.len(), count, "messages on the queue");
        messages
    }

    /// The SQS event the event source mapping would invoke the function with.
    fn lambda_event(&self, messages: &[aws_sdk_sqs::types::Message]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|message| {
                let attributes: HashMap<String, String> = message
                    .attributes()
                    .map(|attributes| {
                        attributes
                            .iter()
                            .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": message.message_id(),
                    "receiptHandle": message.receipt_handle(),
                    "body": message.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": message.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// Hands the messages to the handler and, as the event source mapping does, deletes those not
    /// reported as failures. Returns the failed message ids.
    async fn consume(&self, messages: &[aws_sdk_sqs::types::Message]) -> Vec<String> {
        let response = status_sweep::handle(&self.fanout, self.lambda_event(messages))
            .await
            .expect("a readable event");
        let failed: Vec<String> = response["batchItemFailures"]
            .as_array()
            .unwrap_or_else(|| panic!("an SQS batch response: {response}"))
            .iter()
            .map(|failure| {
                failure["itemIdentifier"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        for message in messages {
            if !failed
                .iter()
                .any(|id| Some(id.as_str()) == message.message_id())
            {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        failed
    }

    /// Events recorded for one key, oldest first.
    async fn events_of(&self, key: &KeyRecordId) -> Vec<EventRecord> {
        let page = self
            .stores
            .sweeps
            .list_events(
                &self.team,
                &EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .await
            .expect("events");
        let mut events: Vec<EventRecord> = page
            .items
            .into_iter()
            .map(|item| item.event)
            .filter(|event| event.key_record_id.as_ref() == Some(key))
            .collect();
        events.reverse();
        events
    }

    /// One planned, queued and consumed sweep; returns the shards it was split into.
    async fn sweep_through_the_queue(&self, expected_shards: usize) -> Vec<SweepShard> {
        let outcome = self.scheduled().await;
        assert_eq!(outcome["mode"], "fanned_out", "{outcome}");
        assert_eq!(outcome["shards"], expected_shards, "{outcome}");
        assert_eq!(outcome["shards_enqueued"], expected_shards, "{outcome}");
        let messages = self.receive(expected_shards).await;
        let failed = self.consume(&messages).await;
        assert!(failed.is_empty(), "no shard fails: {failed:?}");
        shards_of(&messages)
    }
}

fn shards_of(messages: &[aws_sdk_sqs::types::Message]) -> Vec<SweepShard> {
    messages
        .iter()
        .map(|message| {
            serde_json::from_str(message.body().unwrap_or_default()).expect("a shard body")
        })
        .collect()
}

/// A `valid` key with one app and one version, its `.p8` in the secret store, known to the fake.
async fn add_key(
    asc: &FakeAsc,
    stores: &Stores,
    team: &TeamId,
    now: DateTime<Utc>,
    index: usize,
) -> WatchedKey {
    let test_key = TestKey::generate();
    asc.register_key(&test_key);
    let app_id =
        (6_400_000_000u64 + index as u64 + u64::from(rand::random::<u32>()) * 100).to_string();
    let version_id = format!("version-{app_id}");
    asc.add_app(
        &test_key.issuer_id,
        FakeApp::new(
            &app_id,
            &format!("App {index}"),
            &format!("com.example.app{index}"),
        ),
    );
    asc.add_version(FakeVersion::new(
        &version_id,
        &app_id,
        "1.0",
        "IOS",
        "PREPARE_FOR_SUBMISSION",
    ));
    let record = test_key
        .seed_valid(stores, team, &format!("key {index}"), now)
        .await;
    WatchedKey {
        id: record.id,
        app_id,
        version_id,
    }
}

#[tokio::test]
async fn a_scheduled_sweep_fans_out_through_sqs_and_records_each_change_once() {
    let harness = Harness::start(5, 2).await;

    // Baseline: 5 keys at most 2 per shard are 3 shards, disjoint and complete.
    let shards = harness.sweep_through_the_queue(3).await;
    let mut planned: Vec<KeyRecordId> = shards.iter().flat_map(|s| s.key_ids.clone()).collect();
    let distinct: HashSet<KeyRecordId> = planned.iter().cloned().collect();
    assert_eq!(distinct.len(), planned.len(), "no key in two shards");
    planned.sort();
    let mut all: Vec<KeyRecordId> = harness.keys.iter().map(|k| k.id.clone()).collect();
    all.sort();
    assert_eq!(planned, all, "every key in a shard");
    assert!(shards.iter().all(|s| s.key_ids.len() <= 2));
    let numbers: HashSet<u32> = shards.iter().map(|s| s.shard).collect();
    assert_eq!(numbers, HashSet::from([1, 2, 3]), "shards numbered 1..=3");
    assert_eq!(
        shards
            .iter()
            .map(|s| s.sweep_id.as_str())
            .collect::<HashSet<_>>()
            .len(),
        1,
        "one sweep"
    );
    for key in &harness.keys {
        assert!(
            harness.events_of(&key.id).await.is_empty(),
            "the first sweep is a silent baseline"
        );
        let snapshot = harness
            .stores
            .sweeps
            .get_snapshot(&key.id)
            .await
            .expect("read");
        assert!(snapshot.is_some(), "each key's shard stored its baseline");
    }

    // Every key's version moves on; one fanned-out sweep records each change once.
    for key in &harness.keys {
        harness
            .asc
            .set_version_state(&key.version_id, "WAITING_FOR_REVIEW");
    }
    harness.clock.advance(Duration::from_secs(60));
    let outcome = harness.scheduled().await;
    let messages = harness.receive(3).await;
    assert_eq!(outcome["shards"], 3);
    assert!(harness.consume(&messages).await.is_empty());
    for key in &harness.keys {
        let events = harness.events_of(&key.id).await;
        assert_eq!(events.len(), 1, "one event per change");
        assert_eq!(events[0].event_type, "shipwatch.app_version.state_changed");
        assert_eq!(new_version_state(&events[0]), Some("WAITING_FOR_REVIEW"));
    }

    // SQS delivers at least once: the same messages handled again record nothing new.
    let again = status_sweep::handle(&harness.fanout, harness.lambda_event(&messages))
        .await
        .expect("a readable event");
    assert_eq!(again["batchItemFailures"], json!([]));
    for key in &harness.keys {
        assert_eq!(
            harness.events_of(&key.id).await.len(),
            1,
            "no duplicate event"
        );
    }
}

#[tokio::test]
async fn a_failing_shard_is_reported_and_retried_without_duplicate_events() {
    let harness = Harness::start(3, 1).await;
    harness.sweep_through_the_queue(3).await;

    for key in &harness.keys {
        harness
            .asc
            .set_version_state(&key.version_id, "WAITING_FOR_REVIEW");
    }
    let failing = harness.keys[1].id.clone();
    *harness.flaky.key.lock().expect("lock") = Some(failing.clone());
    harness.flaky.failures_left.store(1, Ordering::SeqCst);
    harness.clock.advance(Duration::from_secs(60));

    let outcome = harness.scheduled().await;
    assert_eq!(outcome["shards"], 3, "{outcome}");
    let messages = harness.receive(3).await;
    let failed = harness.consume(&messages).await;
    let failing_message = messages
        .iter()
        .find(|message| {
            serde_json::from_str::<SweepShard>(message.body().unwrap_or_default())
                .is_ok_and(|shard| shard.key_ids == vec![failing.clone()])
        })
        .and_then(|message| message.message_id())
        .expect("the failing key's shard")
        .to_owned();
    assert_eq!(
        failed,
        vec![failing_message.clone()],
        "only the failed shard is reported"
    );
    assert!(
        harness.events_of(&failing).await.is_empty(),
        "nothing half-recorded"
    );
    for key in harness.keys.iter().filter(|k| k.id != failing) {
        assert_eq!(harness.events_of(&key.id).await.len(), 1);
    }

    // SQS makes the failed message visible again (here at once instead of after the visibility
    // timeout); the other shards were deleted. The retry records the change once.
    let receipt = messages
        .iter()
        .find(|m| m.message_id() == Some(failing_message.as_str()))
        .and_then(|m| m.receipt_handle())
        .expect("receipt")
        .to_owned();
    harness
        .sqs
        .change_message_visibility()
        .queue_url(&harness.queue_url)
        .receipt_handle(receipt)
        .visibility_timeout(0)
        .send()
        .await
        .expect("visible again");
    let retried = harness.receive(1).await;
    assert_eq!(retried[0].message_id(), Some(failing_message.as_str()));
    assert_eq!(
        retried[0]
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .map(String::as_str),
        Some("2"),
        "the same message, received a second time"
    );
    assert!(
        harness.consume(&retried).await.is_empty(),
        "the retry succeeds"
    );
    let events = harness.events_of(&failing).await;
    assert_eq!(events.len(), 1, "recorded once, by the retry");
    assert_eq!(new_version_state(&events[0]), Some("WAITING_FOR_REVIEW"));

    // A late duplicate of the shards that had succeeded changes nothing either.
    let duplicate = status_sweep::handle(&harness.fanout, harness.lambda_event(&messages))
        .await
        .expect("a readable event");
    assert_eq!(duplicate["batchItemFailures"], json!([]));
    for key in &harness.keys {
        assert_eq!(
            harness.events_of(&key.id).await.len(),
            1,
            "no duplicate event"
        );
    }
}

#[tokio::test]
async fn keys_that_fit_in_one_shard_are_swept_inline_without_the_queue() {
    let harness = Harness::start(2, 2).await;
    let outcome = harness.scheduled().await;
    assert_eq!(outcome["mode"], "inline", "{outcome}");
    assert_eq!(outcome["keys"], 2, "{outcome}");
    let queued = harness
        .sqs
        .receive_message()
        .queue_url(&harness.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    assert!(queued.messages().is_empty(), "nothing queued");
}

#[tokio::test]
async fn a_message_that_is_not_a_shard_is_reported_for_the_dead_letter_queue() {
    let harness = Harness::start(1, 1).await;
    let event = json!({"Records": [{
        "messageId": "not-a-shard", "receiptHandle": "r", "body": "{\"hello\": 1}",
        "attributes": {}, "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": harness.queue_arn, "awsRegion": "us-east-1"}]});
    let response = status_sweep::handle(&harness.fanout, event)
        .await
        .expect("a readable event");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "not-a-shard"}]})
    );
}

#[tokio::test]
async fn an_unreadable_batch_fails_the_invocation_so_lambda_retries_it() {
    let harness = Harness::start(1, 1).await;
    // `messageId` is not a string: the batch cannot be decoded, so no message can be named.
    let undecodable = json!({"Records": [{
        "messageId": 17, "receiptHandle": "r", "body": "{}", "eventSource": "aws:sqs",
        "eventSourceARN": harness.queue_arn, "awsRegion": "us-east-1"}]});
    let before = harness.asc.total_requests();
    let err = status_sweep::handle(&harness.fanout, undecodable)
        .await
        .expect_err("an error, not an answer without failures (which would delete the batch)");
    assert!(
        matches!(err, status_sweep::UnreadableBatch::Event(_)),
        "{err}"
    );

    let nameless = json!({"Records": [{
        "receiptHandle": "r", "body": "{}", "eventSource": "aws:sqs",
        "eventSourceARN": harness.queue_arn, "awsRegion": "us-east-1"}]});
    let err = status_sweep::handle(&harness.fanout, nameless)
        .await
        .expect_err("a message without an id fails the batch");
    assert!(
        matches!(err, status_sweep::UnreadableBatch::MessageWithoutId),
        "{err}"
    );
    assert_eq!(harness.asc.total_requests(), before, "nothing was swept");
}

#[tokio::test]
async fn a_shard_older_than_the_maximum_age_is_dropped_unswept() {
    let harness = Harness::start(3, 1).await;
    let outcome = harness.scheduled().await;
    assert_eq!(outcome["shards"], 3, "{outcome}");
    let messages = harness.receive(3).await;
    harness.clock.advance(Duration::from_secs(16 * 60));
    let before = harness.asc.total_requests();
    assert!(
        harness.consume(&messages).await.is_empty(),
        "stale shards are not failures"
    );
    assert_eq!(
        harness.asc.total_requests(),
        before,
        "no App Store Connect request"
    );
    for key in &harness.keys {
        assert!(
            harness
                .stores
                .sweeps
                .get_snapshot(&key.id)
                .await
                .expect("read")
                .is_none()
        );
    }
}

/// The new state of an App Store version event; `None` for any other event.
fn new_version_state(event: &EventRecord) -> Option<&str> {
    match &event.data {
        EventData::AppVersionStateChanged(data) => Some(data.new_state.as_str()),
        _ => None,
    }
}

/// Push on AWS: a correctly signed state notification puts a one-key shard on the SQS queue
/// (the real `SqsShardQueue` against moto), and status-sweep consumes it, recording the change
/// of that key once and reading no other key.
#[tokio::test]
async fn a_push_enqueues_a_one_key_shard_that_status_sweep_consumes() {
    use shipwatch_service::push::receiver::Received;
    let harness = Harness::start(2, 1).await;
    harness.sweep_through_the_queue(2).await;
    let pushed = &harness.keys[0];
    let other = &harness.keys[1];

    let reference = "0123456789abcdef";
    let secret = "push-secret-for-the-test";
    harness.provision_webhook(pushed, reference, secret).await;

    harness
        .asc
        .set_version_state(&pushed.version_id, "WAITING_FOR_REVIEW");
    harness
        .asc
        .set_version_state(&other.version_id, "WAITING_FOR_REVIEW");
    let receiver = harness.queued_push_receiver();
    let body = serde_json::to_vec(&shipwatch_tests::fake_asc::notification_body(
        "appStoreVersionAppVersionStateUpdated",
        "n-aws-1",
        ("appStoreVersions", &pushed.version_id),
    ))
    .unwrap();
    let signature = apple_signature(secret, &body);

    // A bad signature enqueues nothing.
    assert!(
        receiver
            .receive(&pushed.id, reference, Some("hmacsha256=00"), &body)
            .await
            .is_err()
    );
    let outcome = receiver
        .receive(&pushed.id, reference, Some(&signature), &body)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Received::SweepRequested { .. }),
        "{outcome:?}"
    );

    let messages = harness.receive(1).await;
    let shards = shards_of(&messages);
    assert_eq!(
        shards[0].key_ids,
        vec![pushed.id.clone()],
        "a one-key shard"
    );
    assert!(harness.consume(&messages).await.is_empty());
    let events = harness.events_of(&pushed.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(new_version_state(&events[0]), Some("WAITING_FOR_REVIEW"));
    assert!(
        harness.events_of(&other.id).await.is_empty(),
        "the other key waits for its poll"
    );
}

/// `x-apple-signature` for `body` as App Store Connect makes it with the webhook's `secret`.
fn apple_signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("hmacsha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Harness {
    /// The push receiver as key-api runs it on AWS: one-key shards onto the SQS queue (moto).
    fn queued_push_receiver(&self) -> shipwatch_service::push::receiver::PushReceiver {
        use shipwatch_service::push::receiver::{PushReceiver, QueuedKeySweep};
        let queue: Arc<dyn ShardQueue> =
            Arc::new(SqsShardQueue::new(self.sqs.clone(), &self.queue_url));
        PushReceiver::new(
            self.stores.clone(),
            self.clock.clone(),
            Arc::new(QueuedKeySweep::new(queue, self.clock.clone())),
        )
    }

    /// The key as provisioning leaves it: one webhook of ours for its app, the webhook's secret
    /// in the secret store.
    async fn provision_webhook(&self, key: &WatchedKey, reference: &str, secret: &str) {
        let mut record = self
            .stores
            .keys
            .get_key_by_id(&key.id)
            .await
            .unwrap()
            .unwrap();
        record.push = Some(PushState {
            status: PushStatus::Active,
            message: None,
            webhooks: vec![PushWebhook {
                reference: reference.into(),
                app_id: key.app_id.clone(),
                webhook_id: "w1".into(),
            }],
            checked_at: self.clock.now(),
        });
        let revision = record.revision;
        record.revision += 1;
        self.stores
            .keys
            .update_key(&record, revision)
            .await
            .unwrap();
        self.stores
            .secrets
            .put_secret(
                &SecretName::for_webhook(&self.team, reference),
                &SecretValue::new(secret.into()),
            )
            .await
            .unwrap();
    }
}

/// Feedback pushed on AWS: the receiver puts a feedback shard for the one key on the SQS queue
/// (moto), and status-sweep reads the submission and records one
/// `shipwatch.testflight.feedback_received`; the queue delivering the same message again adds
/// nothing.
#[tokio::test]
async fn pushed_feedback_goes_through_the_queue_and_is_recorded_once() {
    use shipwatch_service::domain::event_data::FeedbackKind;
    use shipwatch_service::push::receiver::Received;
    use shipwatch_tests::fake_asc::FakeFeedback;
    let harness = Harness::start(2, 1).await;
    harness.sweep_through_the_queue(2).await;
    let pushed = &harness.keys[0];
    let secret = "feedback-secret-for-the-test";
    harness
        .provision_webhook(pushed, "feedbackref0001", secret)
        .await;
    harness
        .asc
        .add_feedback(FakeFeedback::crash("crash-1", &pushed.app_id, None));

    let receiver = harness.queued_push_receiver();
    let body = serde_json::to_vec(&shipwatch_tests::fake_asc::notification_body(
        "betaFeedbackCrashSubmissionCreated",
        "n-feedback-1",
        ("betaFeedbackCrashSubmissions", "crash-1"),
    ))
    .unwrap();
    let outcome = receiver
        .receive(
            &pushed.id,
            "feedbackref0001",
            Some(&apple_signature(secret, &body)),
            &body,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Received::FeedbackRequested {
            kind: FeedbackKind::Crash
        }
    );

    let messages = harness.receive(1).await;
    let shards = shards_of(&messages);
    assert_eq!(shards[0].key_ids, vec![pushed.id.clone()]);
    assert_eq!(
        shards[0]
            .feedback
            .as_ref()
            .map(|f| f.submission_id.as_str()),
        Some("crash-1")
    );
    assert!(harness.consume(&messages).await.is_empty());
    // SQS may deliver a message more than once: the second consumption records nothing new.
    assert!(harness.consume(&messages).await.is_empty());
    let events = harness.events_of(&pushed.id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].event_type,
        "shipwatch.testflight.feedback_received"
    );
    match &events[0].data {
        EventData::TestflightFeedbackReceived(data) => {
            assert_eq!(data.kind, FeedbackKind::Crash);
            assert_eq!(data.app.id, pushed.app_id);
            assert_eq!(data.device_model.as_deref(), Some("iPhone16,1"));
        }
        other => panic!("unexpected data {other:?}"),
    }
}
