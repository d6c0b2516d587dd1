//! Telemetry: the wire format, the two consumers of `MC_TELEMETRY` (store: snapshots, latest
//! values and rollups; anomaly: limit checking and alarm transitions), the dead-letter path,
//! HTTP ingest, the stale-parameter sweeper and the telemetry queries.
//!
//! Architecture Invariant: `MC_TELEMETRY` is the record of every accepted sample. Each consumer
//! writes a batch and its checkpoint in one Postgres transaction, so after any crash it resumes
//! at checkpoint + 1 and nothing is stored or counted twice.
//! Architecture Invariant: undecodable or invalid input never stops a consumer: it goes to
//! `mc.dlq.telemetry` with the reason, is counted, and the consumer moves past it.

mod anomaly;
mod consumer;
mod copy;
pub mod ingest;
pub mod judge;
pub mod read;
mod registry;
pub mod replay;
pub mod retention;
pub mod stale;
mod store;
pub mod wire;

pub use mc_eventlog::dlq;

pub use anomaly::{load_limits, AnomalySink};
pub use consumer::TelemetryConsumer;
pub use judge::ordinal;
pub use registry::{Registry, UnknownSpacecraft};
pub use store::{StoreSink, INTERVALS};

use async_nats::jetstream::Context;
use mc_commands::{AlarmService, SpacecraftService};
use sqlx::PgPool;
use std::time::Duration;

/// The checkpoint names of the two consumers.
pub const STORE: &str = "telemetry-store";
pub const ANOMALY: &str = "telemetry-alarms";

/// One message read from MC_TELEMETRY (`received_ms`: when the stream stored it, "now" for
/// judging future timestamps, so a replay judges exactly as the first run did).
pub use mc_projection::StreamMessage as Message;

/// The anomaly processor's batch window: alarms stay prompt; its per-batch writes are small.
pub const ANOMALY_WINDOW: Duration = Duration::from_millis(50);

/// Ingest settings.
#[derive(Debug, Clone, Copy)]
pub struct TelemetryConfig {
    pub unknown_spacecraft: UnknownSpacecraft,
    /// How far past its receive time a sample's timestamp may be.
    pub max_future_ms: i64,
    /// How long the store consumer gathers a batch after its first message: longer writes
    /// rollups less often (less Postgres CPU), shorter makes stored telemetry queryable sooner.
    pub store_window: Duration,
    /// Whole days of raw frames and 1 s rollups kept before today (UTC); `None` keeps all.
    pub retention_days: Option<u32>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            unknown_spacecraft: UnknownSpacecraft::Register,
            max_future_ms: 5 * 60 * 1000,
            store_window: Duration::from_millis(500),
            retention_days: None,
        }
    }
}

/// The spacecraft id of a telemetry subject (`mc.telemetry.<id>`, exactly one token).
pub fn subject_spacecraft(subject: &str) -> Option<&str> {
    let id = subject.strip_prefix("mc.telemetry.")?;
    mc_domain::spacecraft::SpacecraftId::parse(id, "subject")
        .ok()
        .map(|_| id)
}

/// The store and anomaly consumers, ready to `run`.
pub fn consumers(
    pool: &PgPool,
    js: &Context,
    spacecraft: &SpacecraftService,
    alarms: &AlarmService,
    config: TelemetryConfig,
) -> Vec<TelemetryConsumer> {
    let registry = Registry::new(pool.clone(), spacecraft.clone(), config.unknown_spacecraft);
    let store = StoreSink::new(js.clone(), pool.clone(), registry, config.max_future_ms);
    let anomaly = AnomalySink::new(
        pool.clone(),
        js.clone(),
        alarms.clone(),
        config.max_future_ms,
    );
    vec![
        TelemetryConsumer::new(
            STORE,
            Box::new(store),
            pool.clone(),
            js.clone(),
            config.store_window,
        ),
        TelemetryConsumer::new(
            ANOMALY,
            Box::new(anomaly),
            pool.clone(),
            js.clone(),
            ANOMALY_WINDOW,
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_name_one_spacecraft() {
        assert_eq!(
            super::subject_spacecraft("mc.telemetry.SC-001"),
            Some("SC-001")
        );
        assert_eq!(super::subject_spacecraft("mc.telemetry.SC-001.x"), None);
        assert_eq!(super::subject_spacecraft("mc.telemetry."), None);
        assert_eq!(super::subject_spacecraft("mc.events.SC"), None);
    }
}
