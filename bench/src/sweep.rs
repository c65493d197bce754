//! `shipwatch-bench sweep`: one sweep of N keys x A apps on the embedded store against the lean
//! fake App Store Connect with a fixed latency per request: wall time, CPU time, peak RSS and
//! App Store Connect requests, for a baseline sweep (first sight of every key) and a steady one
//! (nothing changed).
//!
//! Each N runs in a fresh child process (`sweep-run`) so `VmHWM` is that sweep's own peak, and
//! the fake runs in another child (`fake-asc`) so its memory and sockets are not counted.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shipwatch_adapters::wiring::Services;

use crate::BenchError;
use crate::fake_asc::{FakeAscOptions, FakeAscServer, REQUESTS_PATH};
use crate::fixtures::{SeedOptions, embedded_services, seed};
use crate::memory::{cpu_seconds, peak_rss_bytes, reset_peak_rss};
use crate::table::{Table, mib, thousands};

/// What `shipwatch-bench sweep` measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepBenchOptions {
    /// Key counts of the growth table, at `concurrency`.
    pub keys: Vec<u64>,
    pub apps_per_key: usize,
    pub latency: Duration,
    /// `SWEEP_CONCURRENCY` of the growth table.
    pub concurrency: usize,
    /// Widths of the concurrency table (empty: no such table), at `width_keys` keys.
    pub widths: Vec<usize>,
    pub width_keys: u64,
}

/// One sweep's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepFigures {
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    /// Counted by the fake.
    pub asc_requests: u64,
    pub keys_read: u64,
    pub events: u64,
}

/// What one `sweep-run` child reports (one JSON line on stdout).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepRunResult {
    pub keys: u64,
    pub concurrency: usize,
    pub seed_seconds: f64,
    pub baseline: SweepFigures,
    pub steady: SweepFigures,
}

/// Runs the growth table (and the concurrency table) and returns them rendered.
pub async fn run(options: &SweepBenchOptions) -> Result<Vec<Table>, BenchError> {
    let fake = FakeChild::spawn(options.apps_per_key, options.latency)?;
    let mut growth = Table::new(
        &format!(
            "Sweep of N keys x {} apps, {} ms per App Store Connect request, embedded store, SWEEP_CONCURRENCY={}",
            options.apps_per_key,
            options.latency.as_millis(),
            options.concurrency
        ),
        &[
            "keys",
            "baseline wall s",
            "baseline CPU s",
            "baseline peak RSS MiB",
            "steady wall s",
            "steady CPU s",
            "steady peak RSS MiB",
            "ASC requests",
            "per key",
        ],
    );
    for keys in &options.keys {
        let result = run_child(*keys, options, options.concurrency, &fake.base_url)?;
        growth.row(vec![
            thousands(*keys),
            format!("{:.2}", result.baseline.wall_seconds),
            format!("{:.2}", result.baseline.cpu_seconds),
            mib(result.baseline.peak_rss_bytes),
            format!("{:.2}", result.steady.wall_seconds),
            format!("{:.2}", result.steady.cpu_seconds),
            mib(result.steady.peak_rss_bytes),
            thousands(result.steady.asc_requests),
            format!("{:.2}", result.steady.asc_requests as f64 / *keys as f64),
        ]);
    }
    let mut tables = Vec::new();
    if !options.keys.is_empty() {
        tables.push(growth);
    }
    if !options.widths.is_empty() {
        let mut widths = Table::new(
            &format!(
                "SWEEP_CONCURRENCY vs steady sweep time, {} keys x {} apps, {} ms per request",
                thousands(options.width_keys),
                options.apps_per_key,
                options.latency.as_millis()
            ),
            &[
                "SWEEP_CONCURRENCY",
                "steady wall s",
                "steady CPU s",
                "steady peak RSS MiB",
                "keys/s",
            ],
        );
        for width in &options.widths {
            let result = run_child(options.width_keys, options, *width, &fake.base_url)?;
            widths.row(vec![
                width.to_string(),
                format!("{:.2}", result.steady.wall_seconds),
                format!("{:.2}", result.steady.cpu_seconds),
                mib(result.steady.peak_rss_bytes),
                format!(
                    "{:.0}",
                    options.width_keys as f64 / result.steady.wall_seconds
                ),
            ]);
        }
        tables.push(widths);
    }
    Ok(tables)
}

fn run_child(
    keys: u64,
    options: &SweepBenchOptions,
    concurrency: usize,
    asc_url: &str,
) -> Result<SweepRunResult, BenchError> {
    eprintln!(
        "sweep: {keys} keys x {} apps, SWEEP_CONCURRENCY={concurrency}",
        options.apps_per_key
    );
    let exe = std::env::current_exe().map_err(BenchError::io("locating shipwatch-bench"))?;
    let output = Command::new(exe)
        .args([
            "sweep-run",
            "--keys",
            &keys.to_string(),
            "--apps",
            &options.apps_per_key.to_string(),
            "--concurrency",
            &concurrency.to_string(),
            "--asc-url",
            asc_url,
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(BenchError::io("running sweep-run"))?;
    if !output.status.success() {
        return Err(BenchError::Setup(format!(
            "sweep-run for {keys} keys failed ({})",
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| BenchError::Setup("sweep-run printed nothing".into()))?;
    let result: SweepRunResult = serde_json::from_str(line)
        .map_err(|err| BenchError::setup("reading sweep-run's result", err))?;
    eprintln!(
        "sweep: {keys} keys: seeded in {:.1} s; baseline {:.2} s, steady {:.2} s",
        result.seed_seconds, result.baseline.wall_seconds, result.steady.wall_seconds
    );
    Ok(result)
}

/// The fake App Store Connect in its own process; killed when dropped.
struct FakeChild {
    child: Child,
    base_url: String,
}

impl FakeChild {
    fn spawn(apps_per_key: usize, latency: Duration) -> Result<Self, BenchError> {
        let exe = std::env::current_exe().map_err(BenchError::io("locating shipwatch-bench"))?;
        let mut child = Command::new(exe)
            .args([
                "fake-asc",
                "--apps",
                &apps_per_key.to_string(),
                "--latency-ms",
                &latency.as_millis().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(BenchError::io("starting the fake App Store Connect"))?;
        let mut first_line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout)
                .read_line(&mut first_line)
                .map_err(BenchError::io("reading the fake's address"))?;
        }
        let base_url = first_line.trim().to_owned();
        if !base_url.starts_with("http://127.0.0.1:") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::Setup(format!(
                "the fake App Store Connect did not start (it said {base_url:?})"
            )));
        }
        Ok(Self { child, base_url })
    }
}

impl Drop for FakeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `shipwatch-bench fake-asc`: serves until stdin closes (the parent exited or dropped it).
pub async fn serve_fake(apps_per_key: usize, latency: Duration) -> Result<(), BenchError> {
    let fake = FakeAscServer::start(FakeAscOptions {
        apps_per_key,
        latency,
    })
    .await?;
    println!("{}", fake.base_url());
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .map_err(|err| BenchError::setup("waiting for stdin", err))?;
    drop(fake);
    Ok(())
}

/// `shipwatch-bench sweep-run`: seeds a fresh embedded store, runs a baseline and a steady
/// sweep through the production wiring, and prints a [`SweepRunResult`] JSON line.
pub async fn sweep_run(
    keys: u64,
    apps_per_key: usize,
    concurrency: usize,
    asc_url: &str,
) -> Result<SweepRunResult, BenchError> {
    let world = embedded_services(
        asc_url,
        &[("SWEEP_CONCURRENCY", concurrency.to_string())],
        |_| {},
    )
    .await?;
    let services = &world.services;
    let seeding = Instant::now();
    seed(
        &services.stores,
        services.deliverer.clone(),
        services.clock.clone(),
        &SeedOptions {
            keys,
            webhook_url: None,
            parallelism: 64,
        },
    )
    .await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let http = reqwest::Client::new();
    let expected_apps = keys * apps_per_key as u64;
    let baseline = measure_sweep(services, &http, asc_url, keys, expected_apps).await?;
    let steady = measure_sweep(services, &http, asc_url, keys, expected_apps).await?;
    if steady.events != 0 {
        return Err(BenchError::Invalid(format!(
            "the steady sweep recorded {} events; nothing changed",
            steady.events
        )));
    }
    Ok(SweepRunResult {
        keys,
        concurrency,
        seed_seconds,
        baseline,
        steady,
    })
}

async fn measure_sweep(
    services: &Services,
    http: &reqwest::Client,
    asc_url: &str,
    keys: u64,
    expected_apps: u64,
) -> Result<SweepFigures, BenchError> {
    let requests_before = fake_requests(http, asc_url).await?;
    reset_peak_rss()?;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let report = services.sweeper.run().await;
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_seconds()? - cpu_before;
    let peak_rss_bytes = peak_rss_bytes()?;
    let asc_requests = fake_requests(http, asc_url).await? - requests_before;
    if report.keys as u64 != keys || report.keys_skipped != 0 || report.apps as u64 != expected_apps
    {
        return Err(BenchError::Invalid(format!(
            "the sweep read {} of {keys} keys ({} of {expected_apps} apps) and skipped {}",
            report.keys, report.apps, report.keys_skipped
        )));
    }
    if report.asc_requests != asc_requests {
        return Err(BenchError::Invalid(format!(
            "the sweep counted {} App Store Connect requests, the fake {asc_requests}",
            report.asc_requests
        )));
    }
    Ok(SweepFigures {
        wall_seconds,
        cpu_seconds,
        peak_rss_bytes,
        asc_requests,
        keys_read: report.keys as u64,
        events: report.events as u64,
    })
}

async fn fake_requests(http: &reqwest::Client, asc_url: &str) -> Result<u64, BenchError> {
    #[derive(Deserialize)]
    struct Count {
        requests: u64,
    }
    let count: Count = http
        .get(format!("{asc_url}{REQUESTS_PATH}"))
        .send()
        .await
        .map_err(|err| BenchError::setup("asking the fake for its request count", err))?
        .json()
        .await
        .map_err(|err| BenchError::setup("reading the fake's request count", err))?;
    Ok(count.requests)
}
