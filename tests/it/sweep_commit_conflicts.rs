//! The sweep's answer to a commit the store cancels as a conflict while no other sweep has
//! committed (what DynamoDB does when two transactions collide: it may cancel both). The
//! "overlapping" sweep tests cannot reach this path on moto, which serves one request at a time,
//! so a store wrapper answers `Conflict` without writing, as a cancelled transaction would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shipwatch_adapters::app_store_connect::AppStoreConnectAccounts;
use shipwatch_adapters::delivery::HttpDeliverer;
use shipwatch_service::model::{
    DeliveryRecord, EventId, EventQuery, EventRecord, EventWithDeliveries, KeyRecordId, Page,
    StoredSnapshot, Team, TeamId,
};
use shipwatch_service::ports::{StoreError, StoreResult, Stores, SweepCommit, SweepStore};
use shipwatch_service::sweep::{SweepConfig, SweepService};
use shipwatch_shared::asc::{AscClient, AscConfig};
use shipwatch_shared::clock::{Clock, ManualClock};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeVersion};
use shipwatch_tests::test_keys::TestKey;

/// Cancels the next `cancels` commits without writing anything.
struct CancellingCommits {
    inner: Arc<dyn SweepStore>,
    cancels: AtomicUsize,
    commits_tried: AtomicUsize,
}

#[async_trait]
impl SweepStore for CancellingCommits {
    async fn get_snapshot(&self, key: &KeyRecordId) -> StoreResult<Option<StoredSnapshot>> {
        self.inner.get_snapshot(key).await
    }
    async fn get_snapshots(&self, keys: &[KeyRecordId]) -> StoreResult<Vec<StoredSnapshot>> {
        self.inner.get_snapshots(keys).await
    }
    async fn commit_sweep(&self, commit: &SweepCommit) -> StoreResult<()> {
        self.commits_tried.fetch_add(1, Ordering::SeqCst);
        if self
            .cancels
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Conflict("transaction cancelled".into()));
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

struct Harness {
    asc: FakeAsc,
    clock: Arc<ManualClock>,
    commits: Arc<CancellingCommits>,
    sweeper: SweepService,
    team: TeamId,
    stores: Stores,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::starting_now());
        let asc = FakeAsc::start_with_clock(clock.clone()).await;
        let real = shipwatch_adapters::embedded::stores(dir.path()).expect("embedded store");
        let commits = Arc::new(CancellingCommits {
            inner: real.sweeps.clone(),
            cancels: AtomicUsize::new(0),
            commits_tried: AtomicUsize::new(0),
        });
        let stores = Stores {
            sweeps: commits.clone(),
            ..real
        };
        let team = TeamId::generate();
        stores
            .teams
            .insert_team(&Team {
                id: team.clone(),
                name: "Conflicts".into(),
                token_hash: "0".repeat(64),
                created_at: clock.now(),
            })
            .await
            .expect("team");
        let key = TestKey::generate();
        asc.register_key(&key);
        asc.add_app(
            &key.issuer_id,
            FakeApp::new("6470000001", "Hello", "com.example.c"),
        );
        asc.add_version(FakeVersion::new(
            "v1",
            "6470000001",
            "1.0",
            "IOS",
            "PREPARE_FOR_SUBMISSION",
        ));
        key.seed_valid(&stores, &team, "conflicts", clock.now())
            .await;
        let client = AscClient::with_clock(
            AscConfig::new(&asc.base_url()).expect("fake url"),
            clock.clone(),
        )
        .expect("client");
        let sweeper = SweepService::new(
            stores.clone(),
            AppStoreConnectAccounts::port(client),
            Arc::new(HttpDeliverer::new(true, Duration::from_secs(5)).expect("deliverer")),
            clock.clone(),
            SweepConfig::default(),
        );
        Self {
            asc,
            clock,
            commits,
            sweeper,
            team,
            stores,
            _dir: dir,
        }
    }

    async fn history_len(&self) -> usize {
        let query = EventQuery {
            limit: 100,
            ..EventQuery::default()
        };
        self.stores
            .sweeps
            .list_events(&self.team, &query)
            .await
            .expect("history")
            .items
            .len()
    }

    fn change(&self, state: &str) {
        self.asc.set_version_state("v1", state);
        self.clock.advance_by(chrono::TimeDelta::seconds(60));
    }
}

#[tokio::test]
async fn a_commit_cancelled_while_nobody_committed_is_tried_again_and_recorded_once() {
    let harness = Harness::start().await;
    harness.sweeper.run().await;
    harness.change("WAITING_FOR_REVIEW");
    harness.commits.cancels.store(1, Ordering::SeqCst);
    let tried_before = harness.commits.commits_tried.load(Ordering::SeqCst);
    let report = harness.sweeper.run().await;
    assert_eq!(report.events, 1, "{report:?}");
    assert_eq!(
        harness.commits.commits_tried.load(Ordering::SeqCst) - tried_before,
        2,
        "cancelled, then committed"
    );
    assert_eq!(harness.history_len().await, 1);
    assert_eq!(harness.sweeper.run().await.events, 0, "not again");
}

#[tokio::test]
async fn a_commit_cancelled_twice_is_left_to_the_next_sweep_which_records_it_once() {
    let harness = Harness::start().await;
    harness.sweeper.run().await;
    harness.change("WAITING_FOR_REVIEW");
    harness.commits.cancels.store(2, Ordering::SeqCst);
    let report = harness.sweeper.run().await;
    assert_eq!(
        (report.events, report.keys_failed),
        (0, 0),
        "given up this time, quietly"
    );
    assert_eq!(harness.history_len().await, 0);
    harness.clock.advance_by(chrono::TimeDelta::seconds(60));
    assert_eq!(harness.sweeper.run().await.events, 1, "reported late, once");
    assert_eq!(harness.sweeper.run().await.events, 0);
    assert_eq!(harness.history_len().await, 1);
}
