//! The `fleet` projection: per batch, load the rows the commits touch, fold, store, and send
//! the metric alarms the fold decided (not while replaying history).

use crate::fold::{Decoded, MetricAlarm};
use crate::store::{load, store};
use futures::future::BoxFuture;
use mc_commands::AlarmService;
use mc_domain::agent::AgentEvent;
use mc_domain::alarm::{AlarmEvent, AlarmKey, AlarmKind};
use mc_domain::comment::CommentEvent;
use mc_domain::fleet::FleetEvent;
use mc_domain::mission::MissionEvent;
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::task::run::RunEvent;
use mc_eventlog::{EventSchema, RecordedCommit};
use mc_projection::{ApplyError, Projection};
use serde_json::json;
use sqlx::PgConnection;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub const NAME: &str = "fleet";
const ACTOR: &str = "system:fleet-metrics";
pub const TABLES: &[&str] = &[
    "fleet_system",
    "fleet_agents",
    "fleet_work",
    "fleet_alarms",
    "fleet_params",
    "fleet_agent_series",
    "fleet_system_series",
];

pub struct FleetProjection {
    alarms: AlarmService,
    /// Positions up to here are a replay: fold, send no alarm.
    silent_until: AtomicU64,
}

impl FleetProjection {
    pub fn new(alarms: AlarmService) -> Self {
        Self {
            alarms,
            silent_until: AtomicU64::new(0),
        }
    }
}

impl Projection for FleetProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn replay_until(&self, position: u64) {
        self.silent_until.store(position, Ordering::Release);
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            // Backup records are left out: they follow the backup they record, and a restore
            // drill compares the read models of the backup's position (see ARCHITECTURE.md).
            let batch = commits
                .iter()
                .filter(|rc| rc.commit.aggregate_type != "backup")
                .map(decode)
                .collect::<Result<Vec<_>, _>>()?;
            let mut fold = load(tx, &batch).await?;
            for (position, at, decoded) in &batch {
                fold.commit(*position, *at, decoded);
            }
            store(tx, &fold).await?;
            let silent_until = self.silent_until.load(Ordering::Acquire);
            for alarm in fold.transitions.iter().filter(|t| t.ordinal > silent_until) {
                self.send(alarm).await?;
            }
            Ok(())
        })
    }
}

impl FleetProjection {
    async fn send(&self, alarm: &MetricAlarm) -> Result<(), ApplyError> {
        let poison = |reason: String| ApplyError::Poison {
            position: alarm.ordinal,
            reason,
        };
        let spacecraft =
            SpacecraftId::parse(&alarm.source, "source").map_err(|e| poison(e.message))?;
        let key = AlarmKey {
            spacecraft,
            parameter: alarm.metric.to_owned(),
            kind: AlarmKind::Limit,
        };
        self.alarms
            .judge(
                ACTOR,
                key,
                alarm.transition,
                json!(alarm.value),
                alarm.at_ms,
                alarm.ordinal,
            )
            .await
            .map_err(|e| {
                ApplyError::Transient(format!(
                    "metric alarm {}/{}: {e}",
                    alarm.source, alarm.metric
                ))
            })?;
        Ok(())
    }
}

/// A commit as the fold sees it: position, time, events.
fn decode(rc: &RecordedCommit) -> Result<(u64, i64, Decoded), ApplyError> {
    let c = &rc.commit;
    let poison = |reason: String| ApplyError::Poison {
        position: rc.position,
        reason,
    };
    let id = || -> Result<Uuid, ApplyError> {
        c.aggregate_id.parse().map_err(|_| {
            poison(format!(
                "{} id {} is not a uuid",
                c.aggregate_type, c.aggregate_id
            ))
        })
    };
    fn events<E: EventSchema>(rc: &RecordedCommit) -> Result<Vec<E>, ApplyError> {
        rc.commit.domain_events().map_err(|e| ApplyError::Poison {
            position: rc.position,
            reason: e.to_string(),
        })
    }
    let decoded = match c.aggregate_type.as_str() {
        "agent" => Decoded::Agent(id()?, events::<AgentEvent>(rc)?),
        "mission" => Decoded::Mission(id()?, events::<MissionEvent>(rc)?),
        "comment" => Decoded::Comment(events::<CommentEvent>(rc)?),
        "task_run" => Decoded::Run(id()?, events::<RunEvent>(rc)?),
        "alarm" => Decoded::Alarm(id()?, events::<AlarmEvent>(rc)?),
        "fleet" => Decoded::Fleet(events::<FleetEvent>(rc)?),
        _ => Decoded::Other(c.events.len()),
    };
    Ok((rc.position, c.meta.occurred_at.timestamp_millis(), decoded))
}
