//! `mission-control bench seed`: append synthetic agent registrations straight to the log
//! (bypassing the HTTP path and name reservations), to measure projections and rebuilds on
//! large logs. Bounded by `--events`; reports what it appended and how fast.

use futures::StreamExt;
use mc_domain::agent::{AgentEvent, AgentStatus};
use mc_domain::ids::AgentId;
use mc_eventlog::{Commit, CommitMeta, EventLog};
use serde_json::Map;
use std::time::Instant;
use uuid::Uuid;

/// Appends in flight at once.
const IN_FLIGHT: usize = 512;

pub async fn seed(nats: &crate::nats::NatsArgs, events: u64) -> anyhow::Result<()> {
    let nats = nats.connect("mission-control bench seed").await?;
    let log = EventLog::new(nats);
    mc_eventlog::streams::provision(log.jetstream(), &Default::default()).await?;
    let started = Instant::now();
    let mut done = 0u64;
    let mut appends = futures::stream::iter(0..events)
        .map(|i| {
            let log = log.clone();
            async move {
                let id = AgentId::from_uuid(Uuid::now_v7());
                let event = AgentEvent::Registered {
                    id,
                    name: format!("seed-{i}"),
                    description: "synthetic agent for benchmarks".into(),
                    capabilities: vec!["scan".into(), "dock".into()],
                    metadata: Map::new(),
                    status: AgentStatus::Idle,
                };
                let meta = CommitMeta {
                    command_id: Uuid::now_v7(),
                    correlation_id: Uuid::now_v7(),
                    causation_id: None,
                    actor: "bench:seed".into(),
                    occurred_at: chrono::Utc::now(),
                };
                let commit = Commit::new("agent", &id.to_string(), 0, meta, &[event]);
                log.append(&commit, 0).await
            }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some(result) = appends.next().await {
        result?;
        done += 1;
        if done.is_multiple_of(100_000) {
            eprintln!("appended {done}/{events}");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "appended {done} events in {secs:.1} s ({:.0} events/s); log head {}",
        done as f64 / secs,
        log.head().await?
    );
    Ok(())
}
