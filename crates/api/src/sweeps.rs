//! `POST /v1/sweeps` (admin): one sweep now, through whichever runner the deployment uses.

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use shipwatch_service::fanout::{FanoutSweep, ScheduledSweep};
use shipwatch_service::sweep::{SweepService, report_json};

use crate::ApiState;
use crate::auth::AdminAuth;

/// What `POST /v1/sweeps` got done.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepNow {
    /// The sweep ran here and finished: its report (200).
    Finished(Value),
    /// The sweep was handed to shard workers and goes on after the answer (202).
    Started(Value),
}

/// Runs one sweep now (`POST /v1/sweeps`).
#[async_trait]
pub trait SweepRunner: Send + Sync {
    async fn sweep_now(&self) -> SweepNow;
}

#[async_trait]
impl SweepRunner for SweepService {
    async fn sweep_now(&self) -> SweepNow {
        SweepNow::Finished(report_json(&self.run().await))
    }
}

#[async_trait]
impl SweepRunner for FanoutSweep {
    /// Small deployments sweep right here and answer with the report; larger ones queue the shards
    /// and answer at once with the plan (202), the shard workers doing the rest.
    async fn sweep_now(&self) -> SweepNow {
        match self.on_schedule().await {
            ScheduledSweep::Inline(report) => SweepNow::Finished(report_json(&report)),
            ScheduledSweep::FannedOut(plan) => {
                let mut body = report_json(&plan);
                if let Some(object) = body.as_object_mut() {
                    object.insert("status".into(), serde_json::json!("started"));
                }
                SweepNow::Started(body)
            }
        }
    }
}

pub async fn sweep_now(
    State(state): State<ApiState>,
    _admin: AdminAuth,
) -> (StatusCode, Json<Value>) {
    match state.sweeps.sweep_now().await {
        SweepNow::Finished(report) => (StatusCode::OK, Json(report)),
        SweepNow::Started(plan) => (StatusCode::ACCEPTED, Json(plan)),
    }
}
