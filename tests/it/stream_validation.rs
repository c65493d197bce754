//! Validation on AWS is triggered by the table's stream. These tests feed the key-validator handler
//! real stream records read from moto's DynamoDB Streams, filtered by the exact pattern in
//! template.yaml, and the `events/` fixture; and show that the validator's own writes do not
//! re-trigger it.

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use serde_json::{Value, json};
use shipwatch_adapters::wiring::Services;
use shipwatch_service::config::Settings;
use shipwatch_service::keys::{KeyService, NewKey, StreamTriggersValidation};
use shipwatch_service::model::{KeyRecordId, KeyStatus, Team, TeamId};
use shipwatch_shared::asc::AscConfig;
use shipwatch_shared::clock::{Clock, SystemClock};
use shipwatch_shared::credentials::KeyId;
use shipwatch_tests::fake_asc::{Failure, FakeApp, FakeAsc};
use shipwatch_tests::test_keys::TestKey;
use yaml_rust2::YamlLoader;
use zeroize::Zeroizing;

/// The validator's event filter, read from template.yaml (what Lambda applies on AWS).
fn template_filter() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).expect("template.yaml parses");
    let pattern = docs[0]["Resources"]["KeyValidatorFunction"]["Properties"]["Events"]["KeyWrites"]
        ["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"]
        .as_str()
        .expect("the validator's filter pattern");
    serde_json::from_str(pattern).expect("the pattern is JSON")
}

/// Lambda event filtering for the pattern forms the template uses: nested objects, and arrays of
/// allowed values.
fn matches(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(name, sub)| record.get(name).is_some_and(|value| matches(sub, value))),
        Value::Array(allowed) => allowed.contains(record),
        other => other == record,
    }
}

struct StreamWorld {
    asc: FakeAsc,
    services: Services,
    keys: KeyService,
    moto_url: String,
    stream_arn: String,
    iterator: Option<String>,
    team: Team,
}

impl StreamWorld {
    async fn new() -> Self {
        let asc = FakeAsc::start().await;
        let moto = shipwatch_tests::moto::moto().await;
        let table = moto.fresh_table("stream").await;
        let stores = shipwatch_adapters::aws::aws_stores(&moto.sdk_config(), &table).await;
        let described = moto
            .dynamodb()
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .unwrap();
        let stream_arn = described
            .table()
            .unwrap()
            .latest_stream_arn()
            .unwrap()
            .to_owned();
        let settings = Settings::from_lookup(|_| None).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let services = Services::assemble(
            settings,
            AscConfig::new(&asc.base_url()).unwrap(),
            stores,
            clock.clone(),
        )
        .unwrap();
        let keys = KeyService::new(
            services.stores.clone(),
            clock,
            Arc::new(StreamTriggersValidation),
        );
        let team = Team {
            id: TeamId::generate(),
            name: "Acme".into(),
            token_hash: "0".repeat(64),
            created_at: SystemClock.now(),
        };
        services.stores.teams.insert_team(&team).await.unwrap();
        let mut world = Self {
            asc,
            services,
            keys,
            moto_url: moto.url.clone(),
            stream_arn,
            iterator: None,
            team,
        };
        world.iterator = Some(world.first_iterator().await);
        world
    }

    async fn streams_call(&self, target: &str, body: Value) -> Value {
        // moto serves DynamoDB Streams' JSON protocol; the SDK crate for it is not worth its build time.
        reqwest::Client::new()
            .post(&self.moto_url)
            .header("X-Amz-Target", format!("DynamoDBStreams_20120810.{target}"))
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn first_iterator(&self) -> String {
        let described = self
            .streams_call("DescribeStream", json!({"StreamArn": self.stream_arn}))
            .await;
        let shard = described["StreamDescription"]["Shards"][0]["ShardId"]
            .as_str()
            .unwrap()
            .to_owned();
        let iterator = self
            .streams_call(
                "GetShardIterator",
                json!({"StreamArn": self.stream_arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
            )
            .await;
        iterator["ShardIterator"].as_str().unwrap().to_owned()
    }

    /// New stream records since the last call, as Lambda would deliver them (with eventSourceARN),
    /// keeping only those the template's filter lets through.
    async fn next_filtered_event(&mut self) -> (Event, usize) {
        let page = self
            .streams_call(
                "GetRecords",
                json!({"ShardIterator": self.iterator.clone().unwrap()}),
            )
            .await;
        self.iterator = page["NextShardIterator"].as_str().map(str::to_owned);
        let filter = template_filter();
        let all: Vec<Value> = page["Records"].as_array().cloned().unwrap_or_default();
        let total = all.len();
        let records: Vec<Value> = all
            .into_iter()
            .filter(|record| matches(&filter, record))
            .map(|mut record| {
                record["eventSourceARN"] = json!(self.stream_arn);
                record
            })
            .collect();
        let event: Event =
            serde_json::from_value(json!({ "Records": records })).expect("a Lambda DynamoDB event");
        (event, total)
    }

    async fn upload(&self, key: &TestKey) -> KeyRecordId {
        let record = self
            .keys
            .upload(
                &self.team,
                NewKey {
                    name: Some("Streamed".into()),
                    key_id: Some(key.key_id.to_string()),
                    issuer_id: Some(key.issuer_id.to_string()),
                    private_key: Zeroizing::new(key.pem.clone().into_bytes()),
                    file_name: None,
                },
            )
            .await
            .unwrap();
        record.id
    }

    async fn status(&self, id: &KeyRecordId) -> KeyStatus {
        self.services
            .stores
            .keys
            .get_key_by_id(id)
            .await
            .unwrap()
            .unwrap()
            .status
    }
}

#[tokio::test]
async fn real_stream_records_trigger_validation_once_per_request() {
    let mut world = StreamWorld::new().await;
    let key = TestKey::generate();
    world.asc.register_key(&key);
    world.asc.add_app(
        &key.issuer_id,
        FakeApp::new("1000000001", "Hello", "com.example.hello"),
    );
    let id = world.upload(&key).await;

    // The upload's INSERT passes the filter and validates the key.
    let (event, total) = world.next_filtered_event().await;
    assert!(total >= 1);
    assert_eq!(
        event.records.len(),
        1,
        "exactly the key INSERT passes the filter"
    );
    assert_eq!(event.records[0].event_name, "INSERT");
    let response = key_validator::handle(&world.services.validator, event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(world.status(&id).await, KeyStatus::Valid);

    // The validator's own write (status valid) is filtered out: no loop.
    let (event, total) = world.next_filtered_event().await;
    assert!(total >= 1, "the validator's MODIFY is on the stream");
    assert!(event.records.is_empty(), "but does not pass the filter");

    // Apple is down: the re-validation request passes, the retry write (attempt 1) does not.
    world
        .asc
        .set_failure(&key.key_id, Failure::ServiceUnavailable);
    let team = world.team.clone();
    world.keys.request_validation(&team, &id).await.unwrap();
    let (event, _) = world.next_filtered_event().await;
    assert_eq!(event.records.len(), 1);
    assert_eq!(event.records[0].event_name, "MODIFY");
    key_validator::handle(&world.services.validator, event).await;
    let waiting = world
        .services
        .stores
        .keys
        .get_key_by_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiting.status, KeyStatus::Validating);
    assert_eq!(waiting.validation_attempts, 1);
    let (event, total) = world.next_filtered_event().await;
    assert!(total >= 1);
    assert!(
        event.records.is_empty(),
        "a retry write does not re-trigger the stream"
    );
}

#[tokio::test]
async fn the_stream_fixture_validates_its_key() {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/dynamodb-key-inserted.json"
    ))
    .unwrap();
    let event: Event =
        serde_json::from_str(&fixture).expect("the fixture is a DynamoDB stream event");
    let raw: Value = serde_json::from_str(&fixture).unwrap();
    assert!(
        matches(&template_filter(), &raw["Records"][0]),
        "the fixture passes the template's filter"
    );
    let id = key_validator::key_id_of(&event.records[0]).expect("the fixture names a key");

    // Put that very key in a store (its Key ID from the fixture), then hand the fixture to the handler.
    let world = StreamWorld::new().await;
    let mut key = TestKey::generate();
    key.key_id = KeyId::parse(
        raw["Records"][0]["dynamodb"]["NewImage"]["key_id"]["S"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    world.asc.register_key(&key);
    let uploaded = world.upload(&key).await;
    let mut record = world
        .services
        .stores
        .keys
        .get_key_by_id(&uploaded)
        .await
        .unwrap()
        .unwrap();
    // Re-home the uploaded record under the fixture's id, with its secret.
    let secret = world
        .services
        .stores
        .secrets
        .get_secret(&record.secret_name())
        .await
        .unwrap()
        .unwrap();
    world
        .services
        .stores
        .secrets
        .delete_secret(&record.secret_name())
        .await
        .unwrap();
    world
        .services
        .stores
        .keys
        .delete_key(&world.team.id, &record.id)
        .await
        .unwrap();
    record.id = id.clone();
    world
        .services
        .stores
        .secrets
        .put_secret(&record.secret_name(), &secret)
        .await
        .unwrap();
    world
        .services
        .stores
        .keys
        .insert_key(&record)
        .await
        .unwrap();

    let response = key_validator::handle(&world.services.validator, event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(world.status(&id).await, KeyStatus::Valid);
}
