//! Agent status manager: an agent becomes BUSY when a mission assigned to it starts
//! (IN_PROGRESS), and IDLE again when its last active mission ends, is unassigned or deleted.
//! Each change is its own agent event whose causation id is the mission event that caused it.

use futures::future::BoxFuture;
use mc_commands::{AgentService, CommandContext, CommandError};
use mc_domain::agent::{Agent, AgentStatus};
use mc_domain::ids::AgentId;
use mc_domain::mission::{MissionEvent, MissionStatus};
use mc_domain::Check;
use mc_eventlog::RecordedCommit;
use mc_projection::{ApplyError, Projection};
use sqlx::PgConnection;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub const NAME: &str = "agent-status-manager";
const ACTOR: &str = "system:agent-status-manager";
/// Attempts when the agent changes under us between load and append.
const ATTEMPTS: usize = 5;

pub struct AgentStatusManager {
    agents: AgentService,
    /// Positions up to here are a replay of history: update state, send no command.
    silent_until: AtomicU64,
}

impl AgentStatusManager {
    pub fn new(agents: AgentService) -> Self {
        Self {
            agents,
            silent_until: AtomicU64::new(0),
        }
    }
}

/// What the manager remembers of a mission.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    status: String,
    agent: Option<Uuid>,
}

impl Seen {
    /// The agent this mission keeps busy, if any.
    fn busy_agent(&self) -> Option<Uuid> {
        self.agent
            .filter(|_| self.status == MissionStatus::InProgress.as_str())
    }
}

/// The cause of a command: the mission event's id and its commit's correlation id.
struct Cause {
    event_id: Uuid,
    correlation_id: Uuid,
    /// A replayed event: keep state, emit nothing.
    silent: bool,
}

impl Projection for AgentStatusManager {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.mission.>"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["pm_agent_status_missions"]
    }

    /// History up to here (first run over an existing log, or a rebuild) was handled when it
    /// happened: rebuild state, send nothing.
    fn replay_until(&self, position: u64) {
        self.silent_until.store(position, Ordering::Release);
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            let silent_until = self.silent_until.load(Ordering::Acquire);
            for rc in commits
                .iter()
                .filter(|rc| rc.commit.aggregate_type == "mission")
            {
                let poison = |reason: String| ApplyError::Poison {
                    position: rc.position,
                    reason,
                };
                let mission: Uuid = rc
                    .commit
                    .aggregate_id
                    .parse()
                    .map_err(|_| poison("mission id is not a uuid".into()))?;
                let events: Vec<MissionEvent> = rc
                    .commit
                    .domain_events()
                    .map_err(|e| poison(e.to_string()))?;
                for (event, stored) in events.iter().zip(&rc.commit.events) {
                    let cause = Cause {
                        event_id: stored.event_id,
                        correlation_id: rc.commit.meta.correlation_id,
                        silent: rc.position <= silent_until,
                    };
                    self.on_event(tx, mission, event, &cause).await?;
                }
            }
            Ok(())
        })
    }
}

impl AgentStatusManager {
    async fn on_event(
        &self,
        tx: &mut PgConnection,
        mission: Uuid,
        event: &MissionEvent,
        cause: &Cause,
    ) -> Result<(), ApplyError> {
        let before: Option<Seen> = sqlx::query_as::<_, (String, Option<Uuid>)>(
            "SELECT status, agent_id FROM pm_agent_status_missions WHERE mission_id = $1",
        )
        .bind(mission)
        .fetch_optional(&mut *tx)
        .await?
        .map(|(status, agent)| Seen { status, agent });
        let after = match (event, &before) {
            (
                MissionEvent::Created {
                    status, agent_id, ..
                },
                _,
            ) => Some(Seen {
                status: status.as_str().to_owned(),
                agent: agent_id.map(|a| a.as_uuid()),
            }),
            (MissionEvent::Deleted, _) => None,
            (_, None) => None,
            (MissionEvent::StatusChanged { to, .. }, Some(b)) => Some(Seen {
                status: to.as_str().to_owned(),
                ..b.clone()
            }),
            (MissionEvent::Assigned { agent_id, .. }, Some(b)) => Some(Seen {
                agent: Some(agent_id.as_uuid()),
                ..b.clone()
            }),
            (MissionEvent::Unassigned { .. }, Some(b)) => Some(Seen {
                agent: None,
                ..b.clone()
            }),
            (_, Some(b)) => Some(b.clone()),
        };
        if after == before {
            return Ok(());
        }
        match &after {
            Some(s) => {
                sqlx::query(
                    "INSERT INTO pm_agent_status_missions (mission_id, status, agent_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (mission_id) DO UPDATE SET status = $2, agent_id = $3",
                )
                .bind(mission)
                .bind(&s.status)
                .bind(s.agent)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM pm_agent_status_missions WHERE mission_id = $1")
                    .bind(mission)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let was = before.as_ref().and_then(Seen::busy_agent);
        let now = after.as_ref().and_then(Seen::busy_agent);
        if was == now || cause.silent {
            return Ok(());
        }
        if let Some(agent) = was {
            let (active,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pm_agent_status_missions WHERE agent_id = $1 AND status = 'IN_PROGRESS'",
            )
            .bind(agent)
            .fetch_one(&mut *tx)
            .await?;
            if active == 0 {
                self.set_status(agent, AgentStatus::Busy, AgentStatus::Idle, cause)
                    .await?;
            }
        }
        if let Some(agent) = now {
            self.set_status(agent, AgentStatus::Idle, AgentStatus::Busy, cause)
                .await?;
        }
        Ok(())
    }

    /// Move the agent `from` → `to` if it is in `from` now; otherwise leave it (an operator or
    /// the agent itself set another status, or a replay finds the change already made).
    async fn set_status(
        &self,
        agent: Uuid,
        from: AgentStatus,
        to: AgentStatus,
        cause: &Cause,
    ) -> Result<(), ApplyError> {
        let id = AgentId::from_uuid(agent);
        let ctx = CommandContext {
            actor: ACTOR.to_owned(),
            command_id: Uuid::now_v7(),
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.event_id),
        };
        for _ in 0..ATTEMPTS {
            let (root, _) = self
                .agents
                .handler()
                .load::<Agent>(&id.to_string(), true)
                .await
                .map_err(|e| ApplyError::Transient(e.to_string()))?;
            match root.state() {
                Agent::Active(a) if a.status == from => {}
                _ => return Ok(()),
            }
            let reason = Some(format!("mission event {}", cause.event_id));
            match self
                .agents
                .change_status(&ctx, id, Check::MustBe(root.version()), to, reason)
                .await
            {
                Ok(_) => {
                    tracing::debug!(agent = %id, %from, %to, "agent status changed by mission");
                    return Ok(());
                }
                Err(CommandError::Precondition(_) | CommandError::Concurrency { .. }) => continue,
                Err(e @ CommandError::Unavailable(_)) => {
                    return Err(ApplyError::Transient(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(agent = %id, error = %e, "agent status change refused");
                    return Ok(());
                }
            }
        }
        Err(ApplyError::Transient(format!("agent {id} kept changing")))
    }
}
