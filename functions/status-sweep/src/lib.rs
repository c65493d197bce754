//! The sweep Lambda's handler: an EventBridge schedule (or an on-demand invoke) runs one sweep.

use async_trait::async_trait;
use serde_json::Value;
use shipwatch_service::sweep::{SweepReport, SweepService};

/// The one thing this handler needs: run a sweep.
#[async_trait]
pub trait RunSweep: Send + Sync {
    async fn run_sweep(&self) -> SweepReport;
}

#[async_trait]
impl RunSweep for SweepService {
    async fn run_sweep(&self) -> SweepReport {
        self.run().await
    }
}

/// Runs one sweep whatever the event says (a schedule, or `{}` from an on-demand invoke) and returns
/// its report, which also lands in the logs.
pub async fn handle<S: RunSweep>(sweeper: &S, event: Value) -> SweepReport {
    let source = event.get("source").and_then(Value::as_str).unwrap_or("direct invoke");
    tracing::info!(source, "sweep requested");
    let report = sweeper.run_sweep().await;
    tracing::info!(?report, "sweep finished");
    report
}
