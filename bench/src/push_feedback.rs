//! `shipwatch-bench push-feedback`: TestFlight feedback pushed by App Store Connect, from the
//! moment the fake posts a `betaFeedbackScreenshotSubmissionCreated` notification to the moment
//! its `shipwatch.testflight.feedback_received` event arrives at a webhook destination; the App
//! Store Connect requests each submission costs; and that each submission is delivered once
//! although every notification is also redelivered (same `data.id`) and sent a second time under
//! a new `data.id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, fresh_stores};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeFeedback, notification_body};
use shipwatch_tests::receiver::Receiver;
use shipwatch_tests::test_keys::TestKey;

use crate::BenchError;
use crate::push_latency::{percentile, route_to_receiver, upload_key};
use crate::table::Table;

/// Apps of the key, each with its webhook: submissions go round them, so no webhook gets more
/// than the receiver's per-webhook allowance (60 notifications a minute).
const APPS: usize = 10;

fn app_id(n: usize) -> String {
    format!("64000000{:02}", n % APPS)
}

pub async fn run(submissions: usize, gap: Duration) -> Result<Table, BenchError> {
    let asc = FakeAsc::start().await;
    let key = TestKey::generate();
    asc.register_key(&key);
    for a in 0..APPS {
        let id = app_id(a);
        asc.add_app(
            &key.issuer_id,
            FakeApp::new(&id, &format!("Bench {a}"), &format!("com.example.bench{a}")),
        );
    }
    let dir = tempfile::tempdir().map_err(BenchError::io("a temporary data folder"))?;
    let stores = fresh_stores(Backend::Embedded, dir.path()).await;
    let app = TestApp::start_with_settings(
        Backend::Embedded,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &[
            ("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "1"),
            ("SHIPWATCH_PUBLIC_URL", "https://shipwatch.example.com"),
        ],
    )
    .await;
    asc.set_delivery_host(&app.base_url);
    let team = app.create_team("Bench").await;
    let receiver = Receiver::start()
        .await
        .map_err(BenchError::io("starting the receiver"))?;
    route_to_receiver(
        &app,
        &team.token,
        &receiver,
        "shipwatch.testflight.feedback_received",
    )
    .await?;
    let id = upload_key(&app, &team.token, &key).await?;
    app.wait_for_key(&team.token, &id, |k| k["push"] == "active")
        .await;
    app.services.sweeper.run().await;
    let webhooks = (0..APPS)
        .map(|a| {
            asc.webhooks_of(&app_id(a))
                .first()
                .map(|w| w.id.clone())
                .ok_or_else(|| BenchError::Invalid(format!("app {} has no webhook", app_id(a))))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for n in 0..submissions {
        asc.add_feedback(FakeFeedback::screenshot(
            &format!("s-{n}"),
            &app_id(n),
            None,
        ));
    }

    asc.reset_counters();
    let mut latencies = Vec::with_capacity(submissions);
    for n in 0..submissions {
        let body = notification_body(
            "betaFeedbackScreenshotSubmissionCreated",
            &format!("n-{n}"),
            ("betaFeedbackScreenshotSubmissions", &format!("s-{n}")),
        );
        let webhook = &webhooks[n % APPS];
        let sent = Instant::now();
        let (status, answer) = asc
            .deliver_notification(webhook, &app.base_url, &body, None)
            .await;
        if status != 202 {
            return Err(BenchError::Invalid(format!(
                "notification {n} was answered {status}: {answer}"
            )));
        }
        receiver
            .wait_for(n + 1, Duration::from_secs(30))
            .await
            .map_err(|err| {
                BenchError::Invalid(format!(
                    "submission {n}: {} of {} events arrived",
                    err.received.len(),
                    err.wanted
                ))
            })?;
        latencies.push(sent.elapsed());
        // Apple's redelivery of the same data.id, and the same submission under a new one.
        asc.deliver_notification(webhook, &app.base_url, &body, None)
            .await;
        let again = notification_body(
            "betaFeedbackScreenshotSubmissionCreated",
            &format!("n-{n}-again"),
            ("betaFeedbackScreenshotSubmissions", &format!("s-{n}")),
        );
        asc.deliver_notification(webhook, &app.base_url, &again, None)
            .await;
        tokio::time::sleep(gap).await;
    }
    // Late duplicates would arrive shortly after.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = receiver.requests().len();
    if received != submissions {
        return Err(BenchError::Invalid(format!(
            "{received} events arrived for {submissions} submissions"
        )));
    }
    let reads = asc
        .requests_to("/v1/betaFeedbackScreenshotSubmissions")
        .len();
    let total = asc.total_requests();
    latencies.sort();
    let mut table = Table::new(
        &format!(
            "TestFlight feedback pushed, {submissions} submissions over {APPS} apps' webhooks (each also redelivered, and notified again under a new data.id)"
        ),
        &[
            "p50 s",
            "p90 s",
            "p99 s",
            "max s",
            "events delivered / submission",
            "ASC requests / submission (all)",
            "of which submission reads",
        ],
    );
    let per = |count: usize| format!("{:.2}", count as f64 / submissions.max(1) as f64);
    let seconds = |d: Duration| format!("{:.3}", d.as_secs_f64());
    table.row(vec![
        seconds(percentile(&latencies, 50)),
        seconds(percentile(&latencies, 90)),
        seconds(percentile(&latencies, 99)),
        seconds(latencies.last().copied().unwrap_or_default()),
        per(received),
        per(total),
        per(reads),
    ]);
    Ok(table)
}
