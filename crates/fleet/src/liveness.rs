//! Liveness: heartbeats and the sweeper that marks silent agents OFFLINE.
//!
//! Architecture Invariant: a heartbeat is not an event. Only transitions are: OFFLINE → IDLE
//! when an OFFLINE agent beats, and → OFFLINE when an agent has neither beaten nor worked for
//! `offline_after`. Heartbeat times are kept in memory and written to `agent_heartbeats` once
//! a second (one statement for all of them); `agent_heartbeats` is written only here.
//! Activity (the last event of the agent's own work, from the `fleet` read model) counts as
//! life, so a busy agent whose heartbeat is late is not declared dead.

use mc_commands::{AgentService, CommandContext, CommandError, Executed};
use mc_domain::agent::{Agent, AgentCommand, AgentStatus};
use mc_domain::ids::AgentId;
use mc_domain::{Check, DomainError};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ACTOR: &str = "system:liveness";
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const HEARTBEATS: &str = "mc_agent_heartbeats_total";
const HEARTBEATS_HELP: &str = "heartbeats received (not events: only transitions are)";
const OFFLINE: &str = "mc_agents_marked_offline_total";
const OFFLINE_HELP: &str = "agents the liveness sweeper marked OFFLINE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// Silence (no heartbeat, no activity) after which an agent is OFFLINE.
    pub offline_after: Duration,
    /// How often the sweeper looks.
    pub sweep_every: Duration,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            offline_after: Duration::from_secs(60),
            sweep_every: Duration::from_secs(5),
        }
    }
}

/// Handle on the process's heartbeat buffer. Cheap to clone.
#[derive(Clone)]
pub struct Liveness {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    agents: AgentService,
    log: mc_eventlog::EventLog,
    /// The log's head at the previous sweep (`u64::MAX` before the first).
    last_head: AtomicU64,
    config: LivenessConfig,
    /// Heartbeats not yet written: agent → epoch ms.
    pending: Mutex<HashMap<Uuid, i64>>,
}

/// What a heartbeat did.
#[derive(Debug)]
pub struct Beat {
    pub status: AgentStatus,
    /// Set when the heartbeat brought an OFFLINE agent back (an event was written).
    pub revived: Option<Executed<Agent>>,
}

impl Liveness {
    pub fn new(
        pool: PgPool,
        agents: AgentService,
        log: mc_eventlog::EventLog,
        config: LivenessConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                agents,
                log,
                last_head: AtomicU64::new(u64::MAX),
                config,
                pending: Mutex::default(),
            }),
        }
    }

    pub fn config(&self) -> LivenessConfig {
        self.inner.config
    }

    /// A heartbeat of `id` at `now_ms`. The agent's status comes from the read model, or from
    /// its history when the read model does not know it yet (a heartbeat right after
    /// registration); an unknown or removed agent is `NotFound`.
    pub async fn heartbeat(
        &self,
        ctx: &CommandContext,
        id: AgentId,
        now_ms: i64,
    ) -> Result<Beat, CommandError> {
        let known: Option<String> = sqlx::query_scalar(
            "SELECT status FROM fleet_agents WHERE agent_id = $1 AND NOT removed",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| CommandError::Unavailable(e.to_string()))?;
        let status = match known.and_then(|s| s.parse::<AgentStatus>().ok()) {
            Some(s) => s,
            None => {
                let (root, _) = self
                    .inner
                    .agents
                    .handler()
                    .load::<Agent>(&id.to_string(), true)
                    .await?;
                match root.state().data() {
                    Some(a) => a.status,
                    None => {
                        return Err(CommandError::Domain(DomainError::NotFound {
                            aggregate: "agent",
                        }))
                    }
                }
            }
        };
        if let Ok(mut p) = self.inner.pending.lock() {
            let at = p.entry(id.as_uuid()).or_insert(now_ms);
            *at = (*at).max(now_ms);
        }
        mc_metrics::count(HEARTBEATS, HEARTBEATS_HELP, &[], 1);
        if status != AgentStatus::Offline {
            return Ok(Beat {
                status,
                revived: None,
            });
        }
        let done = self
            .inner
            .agents
            .handler()
            .execute::<Agent>(ctx, &id.to_string(), Check::Any, &AgentCommand::Heartbeat)
            .await?;
        let status = done.state.data().map_or(status, |a| a.status);
        let revived = done.position.is_some().then_some(done);
        Ok(Beat { status, revived })
    }

    /// Write the buffered heartbeats (one statement); how many.
    pub async fn flush(&self) -> Result<usize, sqlx::Error> {
        let batch: HashMap<Uuid, i64> = match self.inner.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let (ids, at): (Vec<Uuid>, Vec<f64>) = batch
            .iter()
            .map(|(id, ms)| (*id, *ms as f64 / 1000.0))
            .unzip();
        let written = sqlx::query(
            "INSERT INTO agent_heartbeats (agent_id, at) \
             SELECT id, to_timestamp(t) FROM UNNEST($1::uuid[], $2::float8[]) AS b(id, t) \
             ON CONFLICT (agent_id) DO UPDATE SET at = GREATEST(agent_heartbeats.at, EXCLUDED.at)",
        )
        .bind(&ids)
        .bind(&at)
        .execute(&self.inner.pool)
        .await;
        if let Err(e) = written {
            // Put them back (newer ones received meanwhile win).
            if let Ok(mut p) = self.inner.pending.lock() {
                for (id, ms) in batch {
                    let at = p.entry(id).or_insert(ms);
                    *at = (*at).max(ms);
                }
            }
            return Err(e);
        }
        Ok(ids.len())
    }

    /// Mark OFFLINE every agent silent since before `now_ms - offline_after`; how many were
    /// marked. The agent decides (no-op if already OFFLINE), so instances sweeping at once
    /// write one transition.
    pub async fn sweep(&self, now_ms: i64) -> Result<usize, String> {
        self.flush().await.map_err(|e| e.to_string())?;
        if !self.read_model_keeps_up().await? {
            return Ok(0);
        }
        let after_ms = self.inner.config.offline_after.as_millis() as i64;
        let silent: Vec<(Uuid, f64)> = sqlx::query_as(
            "SELECT a.agent_id, extract(epoch FROM greatest(a.last_activity, a.status_since, h.at))::float8 \
             FROM fleet_agents a LEFT JOIN agent_heartbeats h USING (agent_id) \
             WHERE NOT a.removed AND a.status <> 'OFFLINE' \
             AND greatest(a.last_activity, a.status_since, h.at) \
                 < to_timestamp($1::float8 / 1000)",
        )
        .bind((now_ms - after_ms) as f64)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| e.to_string())?;
        let mut marked = 0;
        for (agent, seen) in silent {
            let silent_seconds = ((now_ms as f64 / 1000.0 - seen).max(0.0)) as u64;
            let ctx = CommandContext::new(ACTOR, None);
            let done = self
                .inner
                .agents
                .handler()
                .execute::<Agent>(
                    &ctx,
                    &agent.to_string(),
                    Check::Any,
                    &AgentCommand::MarkOffline { silent_seconds },
                )
                .await;
            match done {
                Ok(d) if d.position.is_some() => {
                    marked += 1;
                    mc_metrics::count(OFFLINE, OFFLINE_HELP, &[], 1);
                    tracing::info!(%agent, silent_seconds, "agent marked offline");
                }
                Ok(_) | Err(CommandError::Domain(DomainError::NotFound { .. })) => {}
                Err(e) => return Err(format!("agent {agent}: {e}")),
            }
        }
        Ok(marked)
    }

    /// Activity comes from the `fleet` read model: judge silence only while it keeps up, i.e.
    /// it has reached the log's head of the previous sweep. A stopped or far behind projection
    /// would make every agent look silent; then nobody is marked (and it is logged).
    async fn read_model_keeps_up(&self) -> Result<bool, String> {
        let head = self.inner.log.head().await.map_err(|e| e.to_string())?;
        let before = self.inner.last_head.swap(head, Ordering::AcqRel);
        let at: Option<i64> =
            sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
                .bind(crate::projection::NAME)
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(|e| e.to_string())?;
        let at = at.unwrap_or(0).max(0) as u64;
        if before == u64::MAX {
            return Ok(false);
        }
        if at < before {
            tracing::warn!(
                read_model = at,
                head = before,
                "liveness: the fleet read model is behind the log; no agent is marked offline"
            );
            return Ok(false);
        }
        Ok(true)
    }

    /// Flush every second and (with `sweep`) sweep every `sweep_every` until cancelled.
    pub async fn run(self, cancel: CancellationToken, sweep: bool) {
        let mut since_sweep = Duration::ZERO;
        loop {
            tokio::select! {
                () = cancel.cancelled() => {
                    let _ = self.flush().await;
                    return;
                }
                () = tokio::time::sleep(FLUSH_EVERY) => {}
            }
            since_sweep += FLUSH_EVERY;
            let outcome = if sweep && since_sweep >= self.inner.config.sweep_every {
                since_sweep = Duration::ZERO;
                self.sweep(chrono::Utc::now().timestamp_millis())
                    .await
                    .map(drop)
            } else {
                self.flush().await.map(drop).map_err(|e| e.to_string())
            };
            if let Err(reason) = outcome {
                tracing::warn!(%reason, "liveness: heartbeats not written; retrying");
            }
        }
    }
}
