//! `shipwatch-bench store-writes`: DynamoDB (and Secrets Manager) requests and capacity units of
//! one sweep on the AWS adapters, with 0 %, 1 % and 100 % of the apps changed.
//!
//! The adapters talk to moto through a metering proxy on 127.0.0.1 that forwards each request
//! (one at a time: moto's transactions are not isolated, see `shipwatch_tests::moto`) and tallies
//! it by operation. moto's `ConsumedCapacity` is a constant, not a function of item size, so
//! request units are computed here from the items in the requests and answers, with DynamoDB's
//! on-demand rules:
//! - write: 1 unit per started KB of the larger of the old and new item; 2 per KB inside
//!   `TransactWriteItems`; plus 1 per KB for each `gsi1` entry written or removed (index writes are
//!   counted at the standard rate);
//! - read: 1 unit per started 4 KB read (the sum of a `Query` page), half for eventually
//!   consistent reads (always on `gsi1`), at least one 4 KB step even when nothing is found;
//!   a `ConditionCheck` inside a transaction is a transactional read (2 per 4 KB).
//!
//! Item size: attribute name bytes + value bytes (strings UTF-8, binary decoded, numbers one byte
//! per two significant digits + 1, 1 byte for booleans and nulls, 3 + elements for lists/maps).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use shipwatch_adapters::wiring::Services;
use shipwatch_service::config::Settings;
use shipwatch_shared::asc::AscConfig;
use shipwatch_shared::clock::SystemClock;

use crate::BenchError;
use crate::fake_asc::{FakeAscOptions, FakeAscServer};
use crate::fixtures::{SeedOptions, seed};
use crate::table::{Table, thousands};

/// Tally of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OperationTally {
    pub requests: u64,
    pub read_units: f64,
    pub write_units: f64,
}

/// What the proxy saw since the last [`Meter::take`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// By `X-Amz-Target` operation, e.g. `DynamoDB.PutItem`, `SecretsManager.GetSecretValue`.
    pub operations: BTreeMap<String, OperationTally>,
}

impl Tally {
    pub fn dynamodb_reads(&self) -> u64 {
        self.sum(|name, tally| is_dynamodb_read(name).then_some(tally.requests))
    }

    pub fn dynamodb_writes(&self) -> u64 {
        self.sum(|name, tally| is_dynamodb_write(name).then_some(tally.requests))
    }

    pub fn read_units(&self) -> f64 {
        self.operations.values().map(|tally| tally.read_units).sum()
    }

    pub fn write_units(&self) -> f64 {
        self.operations
            .values()
            .map(|tally| tally.write_units)
            .sum()
    }

    pub fn requests_of(&self, operation: &str) -> u64 {
        self.operations
            .get(operation)
            .map_or(0, |tally| tally.requests)
    }

    fn sum(&self, pick: impl Fn(&str, &OperationTally) -> Option<u64>) -> u64 {
        self.operations
            .iter()
            .filter_map(|(name, tally)| pick(name, tally))
            .sum()
    }
}

fn is_dynamodb_read(operation: &str) -> bool {
    matches!(
        operation,
        "DynamoDB.GetItem"
            | "DynamoDB.Query"
            | "DynamoDB.Scan"
            | "DynamoDB.BatchGetItem"
            | "DynamoDB.TransactGetItems"
    )
}

fn is_dynamodb_write(operation: &str) -> bool {
    matches!(
        operation,
        "DynamoDB.PutItem"
            | "DynamoDB.UpdateItem"
            | "DynamoDB.DeleteItem"
            | "DynamoDB.BatchWriteItem"
            | "DynamoDB.TransactWriteItems"
    )
}

/// What the meter remembers of an item it has seen, to price its replacement or deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeenItem {
    size: u64,
    index_key: Option<(String, String)>,
}

#[derive(Debug, Default)]
struct MeterState {
    tally: Tally,
    items: HashMap<(String, String), SeenItem>,
}

/// Prices DynamoDB calls from their request and answer bodies.
#[derive(Debug, Default)]
pub struct Meter {
    state: Mutex<MeterState>,
}

impl Meter {
    /// The tally since the last call, and a fresh one (item sizes are kept).
    pub fn take(&self) -> Tally {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut state.tally)
    }

    /// Records one call: `target` is the `X-Amz-Target` header.
    pub fn record(&self, target: &str, request: &Value, answer: &Value, succeeded: bool) {
        let (service, operation) = match target.split_once('.') {
            Some((service, operation)) if service.starts_with("DynamoDB") => {
                ("DynamoDB", operation)
            }
            Some((service, operation)) if service.eq_ignore_ascii_case("secretsmanager") => {
                ("SecretsManager", operation)
            }
            Some((service, operation)) => (service, operation),
            None => ("unknown", target),
        };
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (read_units, write_units) = if service == "DynamoDB" {
            price(&mut state.items, operation, request, answer, succeeded)
        } else {
            (0.0, 0.0)
        };
        let entry = state
            .tally
            .operations
            .entry(format!("{service}.{operation}"))
            .or_default();
        entry.requests += 1;
        entry.read_units += read_units;
        entry.write_units += write_units;
    }
}

const KB: u64 = 1024;
const READ_STEP: u64 = 4 * KB;

fn write_units_for(size: u64) -> f64 {
    size.div_ceil(KB).max(1) as f64
}

fn read_units_for(size: u64, consistent: bool) -> f64 {
    let steps = size.div_ceil(READ_STEP).max(1) as f64;
    if consistent { steps } else { steps / 2.0 }
}

/// `(read units, write units)` of one DynamoDB call.
fn price(
    items: &mut HashMap<(String, String), SeenItem>,
    operation: &str,
    request: &Value,
    answer: &Value,
    succeeded: bool,
) -> (f64, f64) {
    match operation {
        "GetItem" => {
            let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
            let size = answer
                .get("Item")
                .map(|item| remember(items, item))
                .unwrap_or(0);
            (read_units_for(size, consistent), 0.0)
        }
        "Query" | "Scan" => {
            let on_index = request.get("IndexName").is_some();
            let consistent = !on_index && request["ConsistentRead"].as_bool().unwrap_or(false);
            let size: u64 = answer["Items"]
                .as_array()
                .map(|found| found.iter().map(|item| remember(items, item)).sum())
                .unwrap_or(0);
            (read_units_for(size, consistent), 0.0)
        }
        "PutItem" => (0.0, put_units(items, &request["Item"], 1.0, succeeded)),
        "DeleteItem" => (0.0, delete_units(items, &request["Key"], 1.0, succeeded)),
        "TransactWriteItems" => {
            let mut read_units = 0.0;
            let mut write_units = 0.0;
            for action in request["TransactItems"].as_array().into_iter().flatten() {
                if let Some(put) = action.get("Put") {
                    write_units += put_units(items, &put["Item"], 2.0, succeeded);
                } else if let Some(delete) = action.get("Delete") {
                    write_units += delete_units(items, &delete["Key"], 2.0, succeeded);
                } else if let Some(update) = action.get("Update") {
                    let size = items
                        .get(&item_key(&update["Key"]))
                        .map_or(KB, |seen| seen.size);
                    write_units += 2.0 * write_units_for(size);
                } else if let Some(check) = action.get("ConditionCheck") {
                    let size = items
                        .get(&item_key(&check["Key"]))
                        .map_or(0, |seen| seen.size);
                    read_units += 2.0 * read_units_for(size, true);
                }
            }
            (read_units, write_units)
        }
        _ => (0.0, 0.0),
    }
}

/// A put: the larger of old and new item, times `factor`, plus its `gsi1` entry changes.
fn put_units(
    items: &mut HashMap<(String, String), SeenItem>,
    item: &Value,
    factor: f64,
    succeeded: bool,
) -> f64 {
    let key = item_key(item);
    let new = SeenItem {
        size: item_size(item),
        index_key: index_key(item),
    };
    let old = items.get(&key).cloned();
    let base = factor * write_units_for(new.size.max(old.as_ref().map_or(0, |seen| seen.size)));
    // A cancelled or refused write is charged, but changes no index.
    if !succeeded {
        return base;
    }
    // The new `gsi1` entry is written; an old one under another index key is removed.
    let mut index_units = 0.0;
    if new.index_key.is_some() {
        index_units += write_units_for(new.size);
    }
    if let Some(old) = &old
        && old.index_key.is_some()
        && old.index_key != new.index_key
    {
        index_units += write_units_for(old.size);
    }
    items.insert(key, new);
    base + index_units
}

fn delete_units(
    items: &mut HashMap<(String, String), SeenItem>,
    key_value: &Value,
    factor: f64,
    succeeded: bool,
) -> f64 {
    let key = item_key(key_value);
    let old = items.get(&key).cloned();
    let base = factor * write_units_for(old.as_ref().map_or(0, |seen| seen.size));
    if !succeeded {
        return base;
    }
    items.remove(&key);
    let index_units = match old {
        Some(SeenItem {
            size,
            index_key: Some(_),
        }) => write_units_for(size),
        _ => 0.0,
    };
    base + index_units
}

/// Remembers an item read back, and returns its size.
fn remember(items: &mut HashMap<(String, String), SeenItem>, item: &Value) -> u64 {
    let seen = SeenItem {
        size: item_size(item),
        index_key: index_key(item),
    };
    let size = seen.size;
    items.insert(item_key(item), seen);
    size
}

fn string_attribute(item: &Value, name: &str) -> Option<String> {
    item.get(name)?.get("S")?.as_str().map(str::to_owned)
}

fn item_key(item: &Value) -> (String, String) {
    (
        string_attribute(item, "pk").unwrap_or_default(),
        string_attribute(item, "sk").unwrap_or_default(),
    )
}

fn index_key(item: &Value) -> Option<(String, String)> {
    Some((
        string_attribute(item, "gsi1pk")?,
        string_attribute(item, "gsi1sk")?,
    ))
}

/// DynamoDB's size of an item in the wire (`{"name": {"S": "..."}}`) form.
pub fn item_size(item: &Value) -> u64 {
    item.as_object()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| name.len() as u64 + value_size(value))
                .sum()
        })
        .unwrap_or(0)
}

fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|typed| typed.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |text| text.len() as u64),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner
            .as_str()
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .map_or(0, |bytes| bytes.len() as u64),
        "BOOL" | "NULL" => 1,
        "SS" => inner.as_array().map_or(0, |all| {
            all.iter()
                .filter_map(Value::as_str)
                .map(|s| s.len() as u64)
                .sum()
        }),
        "NS" => inner.as_array().map_or(0, |all| {
            all.iter().filter_map(Value::as_str).map(number_size).sum()
        }),
        "BS" => inner.as_array().map_or(0, |all| {
            all.iter()
                .filter_map(Value::as_str)
                .filter_map(|encoded| STANDARD.decode(encoded).ok())
                .map(|bytes| bytes.len() as u64)
                .sum()
        }),
        "L" => {
            3 + inner.as_array().map_or(0, |all| {
                all.iter().map(|element| 1 + value_size(element)).sum()
            })
        }
        "M" => {
            3 + inner.as_object().map_or(0, |all| {
                all.iter()
                    .map(|(name, element)| 1 + name.len() as u64 + value_size(element))
                    .sum()
            })
        }
        _ => 0,
    }
}

/// One byte per two significant digits, plus one.
fn number_size(number: &str) -> u64 {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let significant = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1) as u64;
    significant.div_ceil(2) + 1
}

/// The metering proxy in front of moto.
pub struct MeteringProxy {
    pub url: String,
    pub meter: Arc<Meter>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MeteringProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    meter: Arc<Meter>,
    /// One request at a time with moto (see the module docs).
    turn: tokio::sync::Mutex<()>,
}

impl MeteringProxy {
    pub async fn start(upstream: &str) -> Result<Self, BenchError> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(BenchError::io("binding the metering proxy"))?;
        let address = listener
            .local_addr()
            .map_err(BenchError::io("reading the proxy's address"))?;
        let meter = Arc::new(Meter::default());
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|err| BenchError::setup("proxy client", err))?,
            meter: meter.clone(),
            turn: tokio::sync::Mutex::new(()),
        });
        let router = Router::new().fallback(forward).with_state(state);
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                eprintln!("metering proxy stopped: {err}");
            }
        });
        Ok(Self {
            url: format!("http://{address}"),
            meter,
            server,
        })
    }

    /// SDK settings that send every call through this proxy (static test credentials).
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "shipwatch-bench",
            )))
            .behavior_version(BehaviorVersion::latest())
            .build()
    }
}

const HOP_BY_HOP: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
];

async fn forward(
    State(state): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let mut upstream = state
        .http
        .request(method, format!("{}{path}", state.upstream));
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = {
        let _turn = state.turn.lock().await;
        match upstream.body(body.clone()).send().await {
            Ok(answer) => answer,
            Err(err) => {
                return (StatusCode::BAD_GATEWAY, format!("moto unreachable: {err}"))
                    .into_response();
            }
        }
    };
    let status = answer.status();
    let answer_headers = answer.headers().clone();
    let answer_body = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(err) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("moto answer unreadable: {err}"),
            )
                .into_response();
        }
    };
    if let Some(target) = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
    {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answered: Value = serde_json::from_slice(&answer_body).unwrap_or(Value::Null);
        state
            .meter
            .record(target, &request, &answered, status.is_success());
    }
    let mut response = Response::new(axum::body::Body::from(answer_body));
    *response.status_mut() = status;
    for (name, value) in &answer_headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// A webhook receiver that accepts everything (the deliveries' target).
struct Receiver {
    url: String,
    received: Arc<std::sync::atomic::AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    async fn start() -> Result<Self, BenchError> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(BenchError::io("binding the webhook receiver"))?;
        let address = listener
            .local_addr()
            .map_err(BenchError::io("reading the receiver's address"))?;
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = received.clone();
        let router = Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                StatusCode::NO_CONTENT
            }
        });
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                eprintln!("webhook receiver stopped: {err}");
            }
        });
        Ok(Self {
            url: format!("http://{address}/hook"),
            received,
            server,
        })
    }

    fn received(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One measured sweep.
#[derive(Debug, Clone)]
struct Scenario {
    name: String,
    apps_changed: u64,
    events: u64,
    deliveries: u64,
    delivery_attempts: u64,
    webhooks_received: u64,
    tally: Tally,
}

/// Runs the scenarios on a fresh moto table and returns the summary and per-operation tables.
pub async fn run(keys: u64, apps_per_key: usize) -> Result<Vec<Table>, BenchError> {
    let moto = shipwatch_tests::moto::moto().await;
    eprintln!("store-writes: moto at {}", moto.url);
    let table = moto.fresh_table("shipwatch-bench").await;
    let proxy = MeteringProxy::start(&moto.url).await?;
    let stores = shipwatch_adapters::aws::aws_stores(&proxy.sdk_config(), &table).await;
    let fake = FakeAscServer::start(FakeAscOptions {
        apps_per_key,
        latency: Duration::ZERO,
    })
    .await?;
    let receiver = Receiver::start().await?;
    let environment: HashMap<&str, String> = HashMap::from([
        ("SHIPWATCH_STORE", "aws".to_owned()),
        ("TABLE_NAME", table.clone()),
        ("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "1".to_owned()),
    ]);
    let settings = Settings::from_lookup(|name| environment.get(name).cloned())
        .map_err(|err| BenchError::setup("settings", err))?;
    let asc = AscConfig::new(fake.base_url()).map_err(|err| BenchError::setup("ASC url", err))?;
    let clock = Arc::new(SystemClock);
    let services = Services::assemble(settings, asc, stores.clone(), clock.clone())
        .map_err(|err| BenchError::setup("wiring", err))?;
    eprintln!("store-writes: seeding {keys} keys, each in its own team with a webhook");
    seed(
        &stores,
        services.deliverer.clone(),
        clock,
        &SeedOptions {
            keys,
            webhook_url: Some(receiver.url.clone()),
            parallelism: 8,
        },
    )
    .await?;
    proxy.meter.take();
    let total_apps = keys * apps_per_key as u64;
    let mut scenarios = Vec::new();
    for (name, change_every) in [
        ("baseline (first sweep)", None),
        ("0 % changed", None),
        ("1 % changed", Some(100)),
        ("100 % changed", Some(1)),
    ] {
        eprintln!("store-writes: sweep, {name} (moto: slow, not a timing)");
        if let Some(every) = change_every {
            fake.change_every(every);
        }
        let received_before = receiver.received();
        let report = services.sweeper.run().await;
        if report.keys as u64 != keys || report.keys_skipped != 0 {
            return Err(BenchError::Invalid(format!(
                "{name}: the sweep read {} of {keys} keys and skipped {}",
                report.keys, report.keys_skipped
            )));
        }
        let apps_changed = change_every.map_or(0, |every| total_apps.div_ceil(every));
        scenarios.push(Scenario {
            name: name.to_owned(),
            apps_changed,
            events: report.events as u64,
            deliveries: report.deliveries as u64,
            delivery_attempts: report.delivery_attempts as u64,
            webhooks_received: receiver.received() - received_before,
            tally: proxy.meter.take(),
        });
    }
    Ok(tables(keys, apps_per_key, &scenarios))
}

fn tables(keys: u64, apps_per_key: usize, scenarios: &[Scenario]) -> Vec<Table> {
    let mut summary = Table::new(
        &format!(
            "DynamoDB per sweep, {} keys x {apps_per_key} apps (one team and one webhook workflow per key; moto, request units computed from item sizes)",
            thousands(keys)
        ),
        &[
            "sweep",
            "apps changed",
            "events",
            "deliveries queued",
            "webhooks sent",
            "read requests",
            "write requests",
            "read units",
            "write units",
            "write units per changed app",
            "GetSecretValue",
        ],
    );
    for scenario in scenarios {
        let tally = &scenario.tally;
        summary.row(vec![
            scenario.name.clone(),
            thousands(scenario.apps_changed),
            thousands(scenario.events),
            thousands(scenario.deliveries),
            format!(
                "{} of {} attempts",
                thousands(scenario.webhooks_received),
                thousands(scenario.delivery_attempts)
            ),
            thousands(tally.dynamodb_reads()),
            thousands(tally.dynamodb_writes()),
            format!("{:.1}", tally.read_units()),
            format!("{:.1}", tally.write_units()),
            if scenario.apps_changed > 0 {
                format!("{:.2}", tally.write_units() / scenario.apps_changed as f64)
            } else {
                "-".into()
            },
            thousands(tally.requests_of("SecretsManager.GetSecretValue")),
        ]);
    }
    let mut operation_names: Vec<&String> = scenarios
        .iter()
        .flat_map(|scenario| scenario.tally.operations.keys())
        .collect();
    operation_names.sort();
    operation_names.dedup();
    let mut header = vec!["operation"];
    header.extend(scenarios.iter().map(|scenario| scenario.name.as_str()));
    let mut by_operation = Table::new(
        "Requests per operation and sweep (read units / write units in brackets)",
        &header,
    );
    for operation in operation_names {
        let mut cells = vec![operation.clone()];
        for scenario in scenarios {
            let tally = scenario
                .tally
                .operations
                .get(operation)
                .copied()
                .unwrap_or_default();
            cells.push(if tally.read_units + tally.write_units > 0.0 {
                format!(
                    "{} ({:.1} / {:.1})",
                    thousands(tally.requests),
                    tally.read_units,
                    tally.write_units
                )
            } else {
                thousands(tally.requests)
            });
        }
        by_operation.row(cells);
    }
    vec![summary, by_operation]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn item_sizes_follow_dynamodb_rules() {
        let item = json!({
            "pk": {"S": "KEY#1"},            // 2 + 5
            "n": {"N": "12345"},             // 1 + 3 (5 significant digits) + 1
            "b": {"B": STANDARD.encode([0u8; 10])}, // 1 + 10
            "ok": {"BOOL": true},            // 2 + 1
            "l": {"L": [{"S": "ab"}]},       // 1 + 3 + 1 + 2
            "m": {"M": {"x": {"NULL": true}}} // 1 + 3 + 1 + 1 + 1
        });
        assert_eq!(item_size(&item), 7 + 5 + 11 + 3 + 7 + 7);
        assert_eq!(number_size("1000"), 2);
        assert_eq!(number_size("0"), 2);
    }

    #[test]
    fn prices_puts_transactions_and_reads() {
        let meter = Meter::default();
        let small = json!({"pk": {"S": "KEY#1"}, "sk": {"S": "KEY"}, "gsi1pk": {"S": "KEYS"}, "gsi1sk": {"S": "1"}});
        let big = json!({"pk": {"S": "KEY#1"}, "sk": {"S": "SNAPSHOT"}, "body_gz": {"B": STANDARD.encode(vec![1u8; 1500])}});
        // Put of a 1-KB item on the index: 1 table + 1 index write unit.
        meter.record(
            "DynamoDB_20120810.PutItem",
            &json!({"Item": small}),
            &json!({}),
            true,
        );
        // Transaction: ConditionCheck of the key (2 x 1 read step) + put of a 2-KB snapshot (2 x 2).
        meter.record(
            "DynamoDB_20120810.TransactWriteItems",
            &json!({"TransactItems": [
                {"ConditionCheck": {"Key": {"pk": {"S": "KEY#1"}, "sk": {"S": "KEY"}}}},
                {"Put": {"Item": big}}
            ]}),
            &json!({}),
            true,
        );
        // Eventually consistent read of nothing: half a unit.
        meter.record("DynamoDB_20120810.GetItem", &json!({}), &json!({}), true);
        meter.record(
            "secretsmanager.GetSecretValue",
            &json!({}),
            &json!({}),
            true,
        );
        let tally = meter.take();
        assert_eq!(tally.dynamodb_writes(), 2);
        assert_eq!(tally.dynamodb_reads(), 1);
        assert_eq!(tally.write_units(), 2.0 + 4.0);
        assert_eq!(tally.read_units(), 2.0 + 0.5);
        assert_eq!(tally.requests_of("SecretsManager.GetSecretValue"), 1);
        assert_eq!(meter.take(), Tally::default());
    }
}
