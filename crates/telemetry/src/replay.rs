//! Telemetry replay: a time range of `MC_TELEMETRY` judged by the live evaluator ([`Judge`])
//! against limits the caller chooses, with every side effect off: no alarm command, nothing
//! appended, no relay frame, nothing written to PostgreSQL. The output is the alarm transitions
//! the limits would have caused, for investigations and for trying new limits on old data.

use crate::judge::{Judge, Pending};
use crate::Message;
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use mc_domain::telemetry::LimitsHistory;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Only this spacecraft's frames (`mc.telemetry.<id>`); `None`: every spacecraft.
    pub spacecraft: Option<String>,
    /// Frames JetStream stored at or after `from` and before `to`.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None`: as fast as possible; `Some(k)`: the frames' own pace × k.
    pub speed: Option<f64>,
    /// Spacecraft → the limits to judge by (each in force from its effective time).
    pub limits: HashMap<String, LimitsHistory>,
    /// As the live processor: samples further in the future than this are not judged.
    pub max_future_ms: i64,
}

/// What a replay went through.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub frames: u64,
    pub transitions: u64,
    /// Stream positions of the first and last frame replayed.
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("from must be before to")]
    EmptyRange,
    #[error("speed must be a positive number")]
    Speed,
    #[error("nats: {0}")]
    Nats(String),
}

/// Replay `options.from..options.to`, handing each transition to `each` as it is decided (at
/// the chosen pace).
pub async fn replay(
    js: &Context,
    options: &ReplayOptions,
    mut each: impl FnMut(&Pending),
) -> Result<ReplayReport, ReplayError> {
    if options.from >= options.to {
        return Err(ReplayError::EmptyRange);
    }
    if options.speed.is_some_and(|k| !(k.is_finite() && k > 0.0)) {
        return Err(ReplayError::Speed);
    }
    let nats = |e: &dyn std::fmt::Display| ReplayError::Nats(e.to_string());
    let stream = js
        .get_stream(mc_eventlog::streams::TELEMETRY)
        .await
        .map_err(|e| nats(&e))?;
    let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(
        options.from.timestamp_nanos_opt().unwrap_or(0),
    ))
    .map_err(|e| nats(&e))?;
    let mut consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: options
                .spacecraft
                .as_ref()
                .map(|sc| format!("mc.telemetry.{sc}"))
                .unwrap_or_default(),
            deliver_policy: DeliverPolicy::ByStartTime { start_time },
            ..Default::default()
        })
        .await
        .map_err(|e| nats(&e))?;
    let mut report = ReplayReport::default();
    // What exists now is what is replayed: a replay ends even while producers keep sending.
    let pending = consumer.info().await.map_err(|e| nats(&e))?.num_pending;
    if pending == 0 {
        return Ok(report);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| nats(&e))?
        .take(pending as usize);
    let mut judge = Judge::new(options.max_future_ms);
    judge.limits = options.limits.clone();
    let (mut dirty, mut transitions) = (Vec::new(), Vec::new());
    let to_ms = options.to.timestamp_millis();
    let started = tokio::time::Instant::now();
    let mut first_ms = None;
    while let Some(m) = messages.next().await {
        let m = m.map_err(|e| nats(&e))?;
        let message: Message = Message::of(&m).map_err(ReplayError::Nats)?;
        if message.received_ms >= to_ms {
            break;
        }
        if let Some(k) = options.speed {
            let first = *first_ms.get_or_insert(message.received_ms);
            let offset_ms = (message.received_ms - first).max(0) as f64 / k;
            tokio::time::sleep_until(started + Duration::from_secs_f64(offset_ms / 1000.0)).await;
        }
        report.frames += 1;
        report.first_position.get_or_insert(message.position);
        report.last_position = Some(message.position);
        judge.judge(&message, &mut dirty, &mut transitions);
        dirty.clear();
        for t in transitions.drain(..) {
            report.transitions += 1;
            each(&t);
        }
    }
    Ok(report)
}
