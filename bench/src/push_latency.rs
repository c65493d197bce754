//! `shipwatch-bench push-latency`: detection latency from a state change at the fake App Store
//! Connect to its notification's arrival at a webhook destination, push (with polling still on, as
//! deployed) versus polling only, and App Store Connect requests per change (issue 11).
//!
//! The in-process app serves the API but runs no sweep timer, so the bench drives the scheduled
//! sweeps itself every `interval`, as `shipwatch-local` does. The receiver records no arrival
//! times, so a watcher task stamps each request when the receiver signals it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, fresh_stores};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeVersion, notification_body};
use shipwatch_tests::receiver::Receiver;
use shipwatch_tests::test_keys::TestKey;

use crate::BenchError;
use crate::table::Table;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushLatencyOptions {
    pub keys: usize,
    pub apps_per_key: usize,
    pub changes: usize,
    /// The scheduled sweep interval; changes spread over `intervals` of them.
    pub interval: Duration,
    pub intervals: u32,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Push,
    PollingOnly,
}

/// One mode's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeResult {
    pub latencies: Vec<Duration>,
    /// Requests made while the bench's scheduled sweeps ran.
    pub sweep_requests: usize,
    pub sweeps: usize,
    /// All other requests: the one-key sweeps push triggered.
    pub push_requests: usize,
}

pub async fn run(options: &PushLatencyOptions) -> Result<Table, BenchError> {
    if options.keys * options.apps_per_key < options.changes {
        return Err(BenchError::Usage(format!(
            "{} changes need at least as many app versions; {} keys x {} apps is fewer",
            options.changes, options.keys, options.apps_per_key
        )));
    }
    let mut table = Table::new(
        &format!(
            "Detection latency, {} changes, {} keys x {} apps, sweep every {} s",
            options.changes,
            options.keys,
            options.apps_per_key,
            options.interval.as_secs_f64()
        ),
        &[
            "mode",
            "p50 s",
            "p90 s",
            "p99 s",
            "max s",
            "ASC requests / change (push one-key reads)",
            "ASC requests / scheduled sweep",
            "target",
        ],
    );
    for mode in [Mode::Push, Mode::PollingOnly] {
        let result = measure(options, mode).await?;
        let mut sorted = result.latencies.clone();
        sorted.sort();
        let p99 = percentile(&sorted, 99);
        let target = match mode {
            Mode::Push => format!(
                "p99 < 5 s: {}",
                if p99 < Duration::from_secs(5) {
                    "met"
                } else {
                    "MISSED"
                }
            ),
            // Polling alone finds a change by the next scheduled sweep, at most one interval on.
            Mode::PollingOnly => format!(
                "max <= interval: {}",
                if sorted.last().copied().unwrap_or_default()
                    <= options.interval + Duration::from_secs(1)
                {
                    "met"
                } else {
                    "MISSED"
                }
            ),
        };
        table.row(vec![
            match mode {
                Mode::Push => "push + polling".into(),
                Mode::PollingOnly => "polling only".into(),
            },
            seconds(percentile(&sorted, 50)),
            seconds(percentile(&sorted, 90)),
            seconds(p99),
            seconds(sorted.last().copied().unwrap_or_default()),
            format!(
                "{:.1}",
                result.push_requests as f64 / options.changes as f64
            ),
            format!(
                "{:.1}",
                result.sweep_requests as f64 / result.sweeps.max(1) as f64
            ),
            target,
        ]);
    }
    Ok(table)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn seconds(value: Duration) -> String {
    format!("{:.2}", value.as_secs_f64())
}

/// A small seeded generator (xorshift64*), so runs are repeatable without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// Arrival instants of the receiver's requests, by index.
fn stamp_arrivals(
    receiver: Arc<Receiver>,
) -> (Arc<Mutex<Vec<Instant>>>, tokio::task::JoinHandle<()>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let stamps = arrivals.clone();
    let task = tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let Ok(requests) = receiver.wait_for(seen + 1, Duration::from_secs(3600)).await else {
                continue;
            };
            let now = Instant::now();
            let mut stamps = stamps
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            stamps.extend(std::iter::repeat_n(now, requests.len() - seen));
            seen = requests.len();
        }
    });
    (arrivals, task)
}

/// Uploads `key` through `POST /v1/keys`; its record id.
pub(crate) async fn upload_key(
    app: &TestApp,
    token: &str,
    key: &TestKey,
) -> Result<String, BenchError> {
    let (status, created) = app
        .post_json(
            token,
            "/v1/keys",
            &json!({"private_key": key.pem, "issuer_id": key.issuer_id.as_str(),
                "key_id": key.key_id.as_str()}),
        )
        .await;
    if status != 202 {
        return Err(BenchError::setup("adding a key", created));
    }
    Ok(created["id"].as_str().unwrap_or_default().to_owned())
}

/// A webhook destination at `receiver` and a workflow sending it every event of `event_type`
/// (`*`: every type) of every app.
pub(crate) async fn route_to_receiver(
    app: &TestApp,
    token: &str,
    receiver: &Receiver,
    event_type: &str,
) -> Result<(), BenchError> {
    let (status, destination) = app
        .post_json(
            token,
            "/v1/destinations",
            &json!({"type": "webhook", "name": "bench", "url": format!("{}/hook", receiver.url())}),
        )
        .await;
    if status != 201 {
        return Err(BenchError::setup("creating the destination", destination));
    }
    let (status, workflow) = app
        .post_json(
            token,
            "/v1/workflows",
            &json!({"name": "bench", "destination_id": destination["id"],
                "app_ids": ["*"], "event_types": [event_type]}),
        )
        .await;
    if status != 201 {
        return Err(BenchError::setup("creating the workflow", workflow));
    }
    Ok(())
}

fn app_id(key: usize, app: usize) -> String {
    format!("64{key:04}{app:04}")
}

async fn measure(options: &PushLatencyOptions, mode: Mode) -> Result<ModeResult, BenchError> {
    eprintln!(
        "push-latency: {mode:?}, {} keys x {} apps",
        options.keys, options.apps_per_key
    );
    let asc = FakeAsc::start().await;
    let mut keys = Vec::new();
    for k in 0..options.keys {
        let key = TestKey::generate();
        asc.register_key(&key);
        for a in 0..options.apps_per_key {
            let id = app_id(k, a);
            asc.add_app(
                &key.issuer_id,
                FakeApp::new(&id, &format!("App {id}"), &format!("com.example.a{id}")),
            );
            asc.add_version(FakeVersion::new(
                &format!("v-{id}"),
                &id,
                "1.0",
                "IOS",
                "PREPARE_FOR_SUBMISSION",
            ));
        }
        keys.push(key);
    }
    let dir = tempfile::tempdir().map_err(BenchError::io("a temporary data folder"))?;
    let stores = fresh_stores(Backend::Embedded, dir.path()).await;
    let mut settings = vec![("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "1")];
    if mode == Mode::Push {
        settings.push(("SHIPWATCH_PUBLIC_URL", "https://shipwatch.example.com"));
    }
    let app = TestApp::start_with_settings(
        Backend::Embedded,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &settings,
    )
    .await;
    let team = app.create_team("Bench").await;
    let receiver = Arc::new(
        Receiver::start()
            .await
            .map_err(BenchError::io("starting the receiver"))?,
    );
    route_to_receiver(&app, &team.token, &receiver, "*").await?;
    for key in &keys {
        let id = upload_key(&app, &team.token, key).await?;
        match mode {
            Mode::Push => {
                app.wait_for_key(&team.token, &id, |k| k["push"] == "active")
                    .await
            }
            Mode::PollingOnly => {
                app.wait_for_key(&team.token, &id, |k| k["status"] == "valid")
                    .await
            }
        };
    }
    // The silent baseline sweep, as after a start.
    app.services.sweeper.run().await;
    if !receiver.requests().is_empty() {
        return Err(BenchError::Invalid(
            "the baseline sweep notified the destination".into(),
        ));
    }
    let webhooks: HashMap<String, String> = match mode {
        Mode::Push => (0..options.keys)
            .flat_map(|k| (0..options.apps_per_key).map(move |a| app_id(k, a)))
            .map(|id| {
                let webhook = asc.webhooks_of(&id).first().map(|w| w.id.clone());
                webhook
                    .map(|w| (id.clone(), w))
                    .ok_or_else(|| BenchError::Invalid(format!("app {id} has no webhook")))
            })
            .collect::<Result<_, _>>()?,
        Mode::PollingOnly => HashMap::new(),
    };

    // Distinct versions, so each change is one event whatever the mode; seeded times.
    let mut rng = Rng::new(options.seed);
    let mut all: Vec<String> = (0..options.keys)
        .flat_map(|k| (0..options.apps_per_key).map(move |a| app_id(k, a)))
        .collect();
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let window = options.interval * options.intervals;
    let mut schedule: Vec<(Duration, String)> = all
        .into_iter()
        .take(options.changes)
        .map(|id| {
            let at = Duration::from_millis(rng.below(window.as_millis() as u64));
            (at, id)
        })
        .collect();
    schedule.sort();

    let (arrivals, watcher) = stamp_arrivals(receiver.clone());
    asc.reset_counters();
    let start = Instant::now();
    let app = Arc::new(app);
    let asc = Arc::new(asc);
    let sweep_counts = Arc::new(Mutex::new((0usize, 0usize)));
    // The scheduled sweeps: every interval from the start, covering the whole window.
    let ticker = {
        let (app, asc, counts) = (app.clone(), asc.clone(), sweep_counts.clone());
        let (interval, intervals) = (options.interval, options.intervals);
        tokio::spawn(async move {
            for tick in 1..=intervals {
                tokio::time::sleep_until((start + interval * tick).into()).await;
                let before = asc.total_requests();
                app.services.sweeper.run().await;
                let used = asc.total_requests() - before;
                let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
                counts.0 += used;
                counts.1 += 1;
            }
        })
    };
    let mut changed_at = HashMap::new();
    let mut deliveries = Vec::new();
    for (n, (at, id)) in schedule.iter().enumerate() {
        tokio::time::sleep_until((start + *at).into()).await;
        asc.set_version_state(&format!("v-{id}"), "WAITING_FOR_REVIEW");
        changed_at.insert(id.clone(), Instant::now());
        if let Some(webhook) = webhooks.get(id) {
            // As Apple does, right after the change; not awaited, so the schedule keeps time.
            let (asc, webhook, host) = (asc.clone(), webhook.clone(), app.base_url.clone());
            let body = notification_body(
                "appStoreVersionAppVersionStateUpdated",
                &format!("n-{n}"),
                ("appStoreVersions", &format!("v-{id}")),
            );
            deliveries.push(tokio::spawn(async move {
                asc.deliver_notification(&webhook, &host, &body, None).await
            }));
        }
    }
    for delivery in deliveries {
        let (status, answer) = delivery
            .await
            .map_err(|err| BenchError::setup("delivering a notification", err))?;
        if status != 202 {
            return Err(BenchError::Invalid(format!(
                "a notification was answered {status}: {answer}"
            )));
        }
    }
    ticker
        .await
        .map_err(|err| BenchError::setup("the scheduled sweeps", err))?;
    let received = receiver
        .wait_for(options.changes, Duration::from_secs(30))
        .await
        .map_err(|err| {
            BenchError::Invalid(format!(
                "{} notifications arrived for {} changes within 30 s of the last sweep",
                err.received.len(),
                err.wanted
            ))
        })?;
    // Late duplicates would arrive shortly after: give them the chance to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    watcher.abort();
    let received = if receiver.requests().len() > received.len() {
        receiver.requests()
    } else {
        received
    };
    let stamps = arrivals.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if received.len() != options.changes {
        return Err(BenchError::Invalid(format!(
            "{} notifications arrived for {} changes",
            received.len(),
            options.changes
        )));
    }
    let mut latencies = Vec::new();
    let mut seen = HashMap::new();
    for (index, request) in received.iter().enumerate() {
        let text = request.body_text();
        let matching: Vec<&String> = changed_at
            .keys()
            .filter(|id| text.contains(id.as_str()))
            .collect();
        let [id] = matching.as_slice() else {
            return Err(BenchError::Invalid(format!(
                "notification {index} names {} changed apps",
                matching.len()
            )));
        };
        if seen.insert((*id).clone(), ()).is_some() {
            return Err(BenchError::Invalid(format!("app {id} was notified twice")));
        }
        let arrived = stamps.get(index).copied().ok_or_else(|| {
            BenchError::Invalid(format!("notification {index} has no arrival time"))
        })?;
        latencies.push(arrived.saturating_duration_since(changed_at[*id]));
    }
    let total = asc.total_requests();
    let (sweep_requests, sweeps) = *sweep_counts.lock().unwrap_or_else(|p| p.into_inner());
    Ok(ModeResult {
        latencies,
        sweep_requests,
        sweeps,
        push_requests: total - sweep_requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..3], 99), Duration::from_millis(3));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    #[test]
    fn the_generator_is_seeded() {
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..5).map(|_| rng.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
