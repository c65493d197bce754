//! The scheduled sweep's shard planning at scale (`planner`): time, CPU and peak memory to list N
//! keys a page at a time and cut them into queued shards, as `FanoutSweep::on_schedule` does on
//! AWS, against a key store that makes its pages on demand (so the store's own memory is not
//! counted) and a queue that only counts. For comparison, the same keys read as one list, as
//! `list_all_keys` did before paging. Each run is its own child process (`planner-run`), so
//! `VmHWM` is that run's peak.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shipwatch_service::fanout::{
    FanoutConfig, FanoutSweep, QueueError, ScheduledSweep, ShardPlanner, ShardQueue, SweepShard,
};
use shipwatch_service::model::{AccountRef, ApiKeyRecord, KeyRecordId, KeyStatus, Page, TeamId};
use shipwatch_service::ports::{KEY_LIST_PAGE_SIZE, KeyStore, StoreError, StoreResult};
use shipwatch_shared::credentials::{IssuerId, KeyId};

use crate::BenchError;
use crate::fixtures::embedded_services;
use crate::memory::{cpu_seconds, peak_rss_bytes, reset_peak_rss};
use crate::table::{Table, mib, thousands};

/// How a run reads the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannerMode {
    /// `FanoutSweep::on_schedule`: pages of keys, shards queued as they fill.
    Paged,
    /// Every key record in one `Vec`, then every id, then the shards (the old single listing).
    OneList,
}

impl PlannerMode {
    pub fn parse(text: &str) -> Result<Self, BenchError> {
        match text {
            "paged" => Ok(Self::Paged),
            "one-list" => Ok(Self::OneList),
            other => Err(BenchError::Usage(format!(
                "--mode is paged or one-list, not {other:?}"
            ))),
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Self::Paged => "paged",
            Self::OneList => "one-list",
        }
    }
}

/// What one `planner-run` child reports (one JSON line on stdout).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannerRunResult {
    pub keys: u64,
    pub mode: PlannerMode,
    pub shards: u64,
    pub keys_queued: u64,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    /// Peak resident memory during the planning, above nothing (the process's own peak).
    pub peak_rss_bytes: u64,
}

/// Runs every key count in both modes, each in a child process, and prints one table.
pub fn run(key_counts: &[u64]) -> Result<Table, BenchError> {
    let mut table = Table::new(
        &format!(
            "Scheduled sweep planning: list N keys ({KEY_LIST_PAGE_SIZE} a page) and queue shards of 1,000 (release build)"
        ),
        &["keys", "mode", "shards", "wall s", "CPU s", "peak RSS MiB"],
    );
    for &keys in key_counts {
        for mode in [PlannerMode::Paged, PlannerMode::OneList] {
            let result = spawn_run(keys, mode)?;
            table.row(vec![
                thousands(result.keys),
                match result.mode {
                    PlannerMode::Paged => "paged (now)".to_owned(),
                    PlannerMode::OneList => "one list (before)".to_owned(),
                },
                thousands(result.shards),
                format!("{:.2}", result.wall_seconds),
                format!("{:.2}", result.cpu_seconds),
                mib(result.peak_rss_bytes),
            ]);
        }
    }
    Ok(table)
}

fn spawn_run(keys: u64, mode: PlannerMode) -> Result<PlannerRunResult, BenchError> {
    eprintln!("planner: {keys} keys, {}", mode.flag());
    let exe = std::env::current_exe().map_err(BenchError::io("locating shipwatch-bench"))?;
    let output = Command::new(exe)
        .args([
            "planner-run",
            "--keys",
            &keys.to_string(),
            "--mode",
            mode.flag(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(BenchError::io("running planner-run"))?;
    if !output.status.success() {
        return Err(BenchError::Setup(format!(
            "planner-run for {keys} keys failed ({})",
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| BenchError::Setup("planner-run printed nothing".into()))?;
    serde_json::from_str(line).map_err(|err| BenchError::setup("reading planner-run's result", err))
}

/// The child: plans `keys` keys in `mode` and reports.
pub async fn planner_run(keys: u64, mode: PlannerMode) -> Result<PlannerRunResult, BenchError> {
    let generated = Arc::new(GeneratedKeys::new(keys)?);
    let keys_store = generated.clone();
    // Nothing is read from App Store Connect: the run only lists keys and plans shards.
    let world =
        embedded_services("http://127.0.0.1:9", &[], |stores| stores.keys = keys_store).await?;
    let services = &world.services;
    let clock = services.clock.clone();
    let queue = Arc::new(CountingQueue::default());
    let config = FanoutConfig::default();

    reset_peak_rss()?;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    match mode {
        PlannerMode::Paged => {
            let fanout =
                FanoutSweep::new(services.sweeper.clone(), Some(queue.clone()), clock, config);
            match fanout.on_schedule().await {
                ScheduledSweep::FannedOut(_) => {}
                ScheduledSweep::Inline(_) if keys <= 1_000 => {}
                ScheduledSweep::Inline(report) => {
                    return Err(BenchError::Invalid(format!(
                        "{keys} keys were swept inline: {report:?}"
                    )));
                }
            }
        }
        PlannerMode::OneList => {
            let all = one_list(generated.as_ref()).await?;
            let ids: Vec<KeyRecordId> = all.iter().map(|key| key.id.clone()).collect();
            let mut planner = ShardPlanner::new(config.shard_size, "bench", Utc::now());
            let mut shards: Vec<SweepShard> =
                ids.into_iter().filter_map(|id| planner.push(id)).collect();
            shards.extend(planner.finish());
            queue
                .enqueue(&shards)
                .await
                .map_err(|err| BenchError::setup("queueing", err))?;
            drop(all);
        }
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    let peak = peak_rss_bytes()?;
    let keys_queued = queue.keys.load(Ordering::Relaxed);
    if keys > 1_000 && keys_queued != keys {
        return Err(BenchError::Invalid(format!(
            "{keys_queued} of {keys} keys were queued"
        )));
    }
    Ok(PlannerRunResult {
        keys,
        mode,
        shards: queue.shards.load(Ordering::Relaxed),
        keys_queued,
        wall_seconds,
        cpu_seconds: cpu,
        peak_rss_bytes: peak,
    })
}

async fn one_list(keys: &GeneratedKeys) -> Result<Vec<ApiKeyRecord>, BenchError> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = keys
            .list_keys_page(cursor.as_deref(), KEY_LIST_PAGE_SIZE)
            .await
            .map_err(|err| BenchError::setup("listing keys", err))?;
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// N valid key records, made a page at a time from one template (ids `key-<n>`).
struct GeneratedKeys {
    count: u64,
    template: ApiKeyRecord,
}

impl GeneratedKeys {
    fn new(count: u64) -> Result<Self, BenchError> {
        let key_id = KeyId::parse("BENCH00001").map_err(|err| BenchError::setup("key id", err))?;
        let issuer_id = IssuerId::parse("69a6de70-0000-47e3-e053-5b8c7c11a4d1")
            .map_err(|err| BenchError::setup("issuer id", err))?;
        let created = DateTime::<Utc>::UNIX_EPOCH;
        let template = ApiKeyRecord {
            id: KeyRecordId("key-0".to_owned()),
            team_id: TeamId("team-bench".to_owned()),
            name: "bench key".to_owned(),
            account: AccountRef::AppStoreConnect { key_id, issuer_id },
            public_key_fingerprint: "SHA256:bench".to_owned(),
            status: KeyStatus::Valid,
            status_code: None,
            status_message: None,
            apps_count: Some(10),
            validated_at: Some(created),
            last_swept_at: Some(created),
            created_at: created,
            updated_at: created,
            validation_attempts: 1,
            next_validation_at: None,
            revision: 1,
            asc_usage: None,
            revalidation_requests: Vec::new(),
            push: None,
        };
        Ok(Self { count, template })
    }
}

#[async_trait]
impl KeyStore for GeneratedKeys {
    async fn insert_key(&self, _key: &ApiKeyRecord) -> StoreResult<()> {
        Err(StoreError::Unavailable("read-only bench store".into()))
    }
    async fn get_key(
        &self,
        _team: &TeamId,
        _id: &KeyRecordId,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        Ok(None)
    }
    async fn get_key_by_id(&self, _id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>> {
        Ok(None)
    }
    async fn list_keys(&self, _team: &TeamId) -> StoreResult<Vec<ApiKeyRecord>> {
        Ok(Vec::new())
    }
    async fn list_keys_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ApiKeyRecord>> {
        let start: u64 = match cursor {
            Some(cursor) => cursor
                .parse()
                .map_err(|_| StoreError::Corrupt("bench cursor".into()))?,
            None => 0,
        };
        let end = (start + limit as u64).min(self.count);
        let items = (start..end)
            .map(|n| {
                let mut key = self.template.clone();
                key.id = KeyRecordId(format!("key-{n:032}"));
                key
            })
            .collect();
        let next_cursor = (end < self.count).then(|| end.to_string());
        Ok(Page { items, next_cursor })
    }
    async fn update_key(&self, _key: &ApiKeyRecord, _expected_revision: u64) -> StoreResult<()> {
        Err(StoreError::Unavailable("read-only bench store".into()))
    }
    async fn update_key_announcing(
        &self,
        _key: &ApiKeyRecord,
        _expected_revision: u64,
        _events: &[shipwatch_service::model::EventRecord],
        _deliveries: &[shipwatch_service::model::DeliveryRecord],
    ) -> StoreResult<()> {
        Err(StoreError::Unavailable("read-only bench store".into()))
    }
    async fn delete_key(&self, _team: &TeamId, _id: &KeyRecordId) -> StoreResult<bool> {
        Ok(false)
    }
}

/// A shard queue that counts what it is given and keeps nothing.
#[derive(Default)]
struct CountingQueue {
    shards: AtomicU64,
    keys: AtomicU64,
}

#[async_trait]
impl ShardQueue for CountingQueue {
    async fn enqueue(&self, shards: &[SweepShard]) -> Result<(), QueueError> {
        self.shards
            .fetch_add(shards.len() as u64, Ordering::Relaxed);
        let keys: usize = shards.iter().map(|shard| shard.key_ids.len()).sum();
        self.keys.fetch_add(keys as u64, Ordering::Relaxed);
        Ok(())
    }
}
