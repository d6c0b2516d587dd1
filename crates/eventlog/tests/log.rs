//! The event log against a real nats-server: append, conflicts, dedup, history loading.

use chrono::Utc;
use mc_domain::agent::{AgentEvent, AgentStatus};
use mc_domain::ids::AgentId;
use mc_eventlog::streams::{provision, ProvisionOptions};
use mc_eventlog::{AppendError, Commit, CommitMeta, EventLog};
use mc_test_support::NatsServer;
use serde_json::Map;
use uuid::Uuid;

fn meta() -> CommitMeta {
    CommitMeta {
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "user:test".into(),
        occurred_at: Utc::now(),
    }
}

fn status(from: AgentStatus, to: AgentStatus) -> AgentEvent {
    AgentEvent::StatusChanged {
        from,
        to,
        reason: None,
    }
}

async fn log() -> (NatsServer, EventLog) {
    let nats = NatsServer::start().await;
    let log = EventLog::new(nats.client().await);
    provision(log.jetstream(), &ProvisionOptions::default())
        .await
        .unwrap();
    // Provisioning twice is a no-op.
    provision(log.jetstream(), &ProvisionOptions::default())
        .await
        .unwrap();
    (nats, log)
}

#[tokio::test]
async fn append_checks_the_last_subject_sequence_and_dedups_by_command_id() {
    let (_nats, log) = log().await;
    let id = AgentId::from_uuid(Uuid::now_v7());
    let registered = AgentEvent::Registered {
        id,
        name: "a".into(),
        description: String::new(),
        capabilities: vec![],
        metadata: Map::new(),
        status: AgentStatus::Idle,
    };
    let first = Commit::new("agent", &id.to_string(), 0, meta(), &[registered]);
    let a = log.append(&first, 0).await.unwrap();
    assert_eq!((a.position, a.duplicate), (1, false));

    // Same command id again. The server checks the expected sequence before deduplicating,
    // so a blind retry is a conflict (the handler then reloads and re-decides) ...
    assert!(matches!(
        log.append(&first, 0).await,
        Err(AppendError::Conflict { .. })
    ));
    // ... and a retry that passes the check is deduplicated: same position, nothing stored.
    let again = log.append(&first, 1).await.unwrap();
    assert_eq!((again.position, again.duplicate), (1, true));

    // A writer that has not seen position 1 is refused.
    let stale = Commit::new(
        "agent",
        &id.to_string(),
        0,
        meta(),
        &[status(AgentStatus::Idle, AgentStatus::Busy)],
    );
    assert!(matches!(
        log.append(&stale, 0).await,
        Err(AppendError::Conflict { expected: 0, .. })
    ));

    // Two events in one commit, then one more: history comes back in order.
    let two = Commit::new(
        "agent",
        &id.to_string(),
        1,
        meta(),
        &[
            status(AgentStatus::Idle, AgentStatus::Busy),
            status(AgentStatus::Busy, AgentStatus::Error),
        ],
    );
    let b = log.append(&two, 1).await.unwrap();
    let three = Commit::new(
        "agent",
        &id.to_string(),
        3,
        meta(),
        &[status(AgentStatus::Error, AgentStatus::Idle)],
    );
    let c = log.append(&three, b.position).await.unwrap();
    // Another aggregate in between does not disturb the per-subject check.
    let other = Commit::new(
        "agent",
        "other",
        0,
        meta(),
        &[status(AgentStatus::Idle, AgentStatus::Busy)],
    );
    log.append(&other, 0).await.unwrap();

    let history = log.load("agent", &id.to_string()).await.unwrap();
    let positions: Vec<u64> = history.iter().map(|c| c.position).collect();
    assert_eq!(positions, [1, b.position, c.position]);
    let versions: Vec<u64> = history
        .iter()
        .flat_map(|c| c.commit.events.iter().map(|e| e.aggregate_version))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let events: Vec<AgentEvent> = history
        .iter()
        .flat_map(|c| c.commit.domain_events::<AgentEvent>().unwrap())
        .collect();
    assert_eq!(events[3], status(AgentStatus::Error, AgentStatus::Idle));
    assert_eq!(log.head().await.unwrap(), c.position + 1);
    assert!(log.load("agent", "never").await.unwrap().is_empty());
}
