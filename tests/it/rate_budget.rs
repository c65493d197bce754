//! shipwatch's share of each key's hourly App Store Connect allowance, end to end: the fake App
//! Store Connect reports `X-Rate-Limit` (scripted with `set_rate_remaining`), the sweep reads it,
//! keeps what it must on the key record, and skips or paces the key. Embedded store, manual clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use shipwatch_adapters::app_store_connect::AppStoreConnectAccounts;
use shipwatch_adapters::delivery::HttpDeliverer;
use shipwatch_service::model::*;
use shipwatch_service::ports::Stores;
use shipwatch_service::rate_budget::{BudgetPolicy, hour_start};
use shipwatch_service::sweep::{SweepConfig, SweepReport, SweepService};
use shipwatch_shared::asc::{AscClient, AscConfig};
use shipwatch_shared::clock::{Clock, ManualClock};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeVersion, HOURLY_LIMIT};
use shipwatch_tests::test_keys::TestKey;

struct Harness {
    asc: FakeAsc,
    clock: Arc<ManualClock>,
    stores: Stores,
    sweeper: SweepService,
    test_key: TestKey,
    key: KeyRecordId,
    team: TeamId,
    _dir: tempfile::TempDir,
}

const VERSION: &str = "budget-version-1";

impl Harness {
    /// One `valid` key with one app, the clock 5 minutes into an hour.
    async fn start(share_percent: f64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::starting_now());
        clock.set(hour_start(clock.now()) + TimeDelta::minutes(5));
        let asc = FakeAsc::start_with_clock(clock.clone()).await;
        let stores = shipwatch_adapters::embedded::stores(dir.path()).expect("embedded store");
        let team = TeamId::generate();
        let now = clock.now();
        let test_key = TestKey::generate();
        asc.register_key(&test_key);
        asc.add_app(
            &test_key.issuer_id,
            FakeApp::new("6400000001", "Budgeted", "com.example.budgeted"),
        );
        asc.add_version(FakeVersion::new(
            VERSION,
            "6400000001",
            "1.0",
            "IOS",
            "PREPARE_FOR_SUBMISSION",
        ));
        let record = test_key.seed_valid(&stores, &team, "budgeted", now).await;
        let sweeper = SweepService::new(
            stores.clone(),
            AppStoreConnectAccounts::port(
                AscClient::with_clock(
                    AscConfig::new(&asc.base_url()).expect("fake url"),
                    clock.clone(),
                )
                .expect("client"),
            ),
            Arc::new(HttpDeliverer::new(true, Duration::from_secs(5)).expect("deliverer")),
            clock.clone(),
            SweepConfig {
                budget: BudgetPolicy::new(share_percent).expect("a valid share"),
                ..SweepConfig::default()
            },
        );
        Self {
            asc,
            clock,
            stores,
            sweeper,
            test_key,
            key: record.id,
            team,
            _dir: dir,
        }
    }

    async fn sweep(&self) -> SweepReport {
        self.sweeper.run().await
    }

    async fn record(&self) -> ApiKeyRecord {
        self.stores
            .keys
            .get_key_by_id(&self.key)
            .await
            .expect("read")
            .expect("the key exists")
    }

    fn requests(&self) -> usize {
        self.asc.requests_for(&self.test_key.key_id)
    }

    async fn events(&self) -> usize {
        self.stores
            .sweeps
            .list_events(
                &self.team,
                &EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .await
            .expect("events")
            .items
            .len()
    }

    fn at(&self, when: DateTime<Utc>) {
        self.clock.set(when);
    }
}

#[tokio::test]
async fn a_key_used_only_by_shipwatch_is_never_metered_and_costs_no_extra_write() {
    let harness = Harness::start(10.0).await;
    harness.sweep().await;
    let after_first = harness.record().await;
    assert_eq!(after_first.asc_usage, None);

    // A sweep a minute for a while: Apple's report proves shipwatch far within its 360.
    for _ in 0..5 {
        harness.clock.advance(Duration::from_secs(60));
        let report = harness.sweep().await;
        assert_eq!((report.keys, report.keys_over_budget), (1, 0), "{report:?}");
    }
    let later = harness.record().await;
    assert_eq!(later.asc_usage, None);
    assert_eq!(
        later.revision, after_first.revision,
        "unchanged key: no key write"
    );
}

#[tokio::test]
async fn a_key_busy_with_other_tools_is_skipped_until_the_next_hour_without_events_or_failure() {
    let harness = Harness::start(10.0).await;
    // Other tools already sent 400 of the key's 3600 this hour: more than shipwatch's 360.
    harness
        .asc
        .set_rate_remaining(&harness.test_key.key_id, HOURLY_LIMIT - 400);
    let first = harness.sweep().await;
    assert_eq!(first.keys, 1, "{first:?}");
    let usage = harness.record().await.asc_usage.expect("metered now");
    assert_eq!(
        usage.used, 360,
        "its own earlier requests cannot be told apart: share spent"
    );
    assert_eq!(usage.hourly_limit, HOURLY_LIMIT);

    harness.asc.set_version_state(VERSION, "WAITING_FOR_REVIEW");
    harness.clock.advance(Duration::from_secs(60));
    let requests_before = harness.requests();
    let skipped = harness.sweep().await;
    assert_eq!(skipped.keys, 0, "{skipped:?}");
    assert_eq!(skipped.keys_over_budget, 1, "{skipped:?}");
    assert_eq!(skipped.keys_failed, 0, "{skipped:?}");
    assert_eq!(
        harness.requests(),
        requests_before,
        "no request over the budget"
    );
    assert_eq!(harness.events().await, 0, "no events while skipped");
    let record = harness.record().await;
    assert_eq!(record.status, KeyStatus::Valid, "skipping is not a failure");

    // The next hour shipwatch counts its own requests exactly and sees the change once.
    let next_hour = hour_start(harness.clock.now()) + TimeDelta::hours(1);
    harness.at(next_hour + TimeDelta::seconds(30));
    let swept = harness.sweep().await;
    assert_eq!((swept.keys, swept.events), (1, 1), "{swept:?}");
    let usage = harness
        .record()
        .await
        .asc_usage
        .expect("still metered: others are busy");
    assert_eq!(usage.hour_start, next_hour);
    assert_eq!(
        u64::from(usage.used),
        swept.asc_requests,
        "exactly this hour's requests"
    );
    assert_eq!(u64::from(usage.last_sweep_requests), swept.asc_requests);
    harness.clock.advance(Duration::from_secs(60));
    let again = harness.sweep().await;
    assert_eq!(again.keys, 1, "{again:?}");
    assert_eq!(harness.events().await, 1, "the change is recorded once");
    let usage = harness.record().await.asc_usage.expect("metered");
    assert_eq!(
        u64::from(usage.used),
        swept.asc_requests + again.asc_requests
    );
}

#[tokio::test]
async fn a_key_low_on_allowance_is_swept_less_often() {
    let harness = Harness::start(10.0).await;
    // Apple says 200 left this hour: shipwatch leaves 180 (5 %) to the team's other tools.
    harness
        .asc
        .set_rate_remaining(&harness.test_key.key_id, 200);
    harness.sweep().await;
    let next_hour = hour_start(harness.clock.now()) + TimeDelta::hours(1);
    harness.at(next_hour);
    let first = harness.sweep().await;
    assert_eq!(first.keys, 1, "{first:?}");
    let usage = harness.record().await.asc_usage.expect("metered");
    let next_sweep_at = usage.next_sweep_at.expect("paced");
    assert!(
        next_sweep_at >= next_hour + TimeDelta::minutes(5),
        "about 15 requests left for the hour: sweeps minutes apart, not every minute ({next_sweep_at})"
    );

    let requests_before = harness.requests();
    harness.at(next_hour + TimeDelta::minutes(1));
    let paced = harness.sweep().await;
    assert_eq!((paced.keys, paced.keys_over_budget), (0, 1), "{paced:?}");
    assert_eq!(
        harness.requests(),
        requests_before,
        "no request while paced"
    );

    harness.at(next_sweep_at);
    let due = harness.sweep().await;
    assert_eq!(due.keys, 1, "swept again once its turn comes: {due:?}");
}

#[tokio::test]
async fn a_larger_share_tolerates_the_same_load() {
    let harness = Harness::start(50.0).await;
    harness
        .asc
        .set_rate_remaining(&harness.test_key.key_id, HOURLY_LIMIT - 400);
    harness.sweep().await;
    assert_eq!(
        harness.record().await.asc_usage,
        None,
        "400 + 3 of 1800: within the share"
    );
    harness.clock.advance(Duration::from_secs(60));
    assert_eq!(harness.sweep().await.keys, 1);
}

#[tokio::test]
async fn a_rate_limited_key_is_skipped_across_processes_until_the_next_hour() {
    let harness = Harness::start(10.0).await;
    harness.asc.set_failure(
        &harness.test_key.key_id,
        shipwatch_tests::fake_asc::Failure::RateLimited { retry_after: None },
    );
    let limited = harness.sweep().await;
    assert_eq!(limited.keys, 0);
    harness.asc.clear_failure(&harness.test_key.key_id);
    let usage = harness
        .record()
        .await
        .asc_usage
        .expect("429 with no allowance left: metered");
    assert_eq!(usage.hourly_remaining, 0);

    // Another process (a fresh sweep service, as another Lambda instance) honours it too.
    let other_process = SweepService::new(
        harness.stores.clone(),
        AppStoreConnectAccounts::port(
            AscClient::with_clock(
                AscConfig::new(&harness.asc.base_url()).expect("fake url"),
                harness.clock.clone(),
            )
            .expect("client"),
        ),
        Arc::new(HttpDeliverer::new(true, Duration::from_secs(5)).expect("deliverer")),
        harness.clock.clone(),
        SweepConfig::default(),
    );
    harness.clock.advance(Duration::from_secs(120));
    let before = harness.requests();
    let skipped = other_process.run().await;
    assert_eq!(skipped.keys_over_budget, 1, "{skipped:?}");
    assert_eq!(harness.requests(), before);
}
