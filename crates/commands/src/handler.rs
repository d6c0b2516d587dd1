//! The generic command handler: one code path for every aggregate.

use crate::error::CommandError;
use chrono::Utc;
use mc_domain::{Aggregate, Check, Root};
use mc_eventlog::{AppendError, Commit, CommitMeta, EventLog, EventSchema, LogError};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Attempts of load → decide → append when another writer appended first. A conflict means
/// another writer succeeded, so with up to this many concurrent writers on one aggregate every
/// command without `If-Match` lands.
const MAX_ATTEMPTS: usize = 10;
/// Aggregates kept in memory; the cache is cleared when it grows past this.
const CACHE_CAPACITY: usize = 50_000;

/// Who sends the command, and its ids.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// `user:<name>`, `agent:<id>`, `system:<process>`.
    pub actor: String,
    /// Idempotency key (`Idempotency-Key` header, or the NATS command's `commandId`).
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

impl CommandContext {
    pub fn new(actor: impl Into<String>, command_id: Option<Uuid>) -> Self {
        let command_id = command_id.unwrap_or_else(Uuid::now_v7);
        Self {
            actor: actor.into(),
            command_id,
            correlation_id: command_id,
            causation_id: None,
        }
    }
}

/// The outcome of a command.
#[derive(Debug, Clone)]
pub struct Executed<A> {
    pub state: A,
    /// Aggregate version after the command.
    pub version: u64,
    /// Log position of the commit; `None` when the command changed nothing.
    pub position: Option<u64>,
}

struct Cached {
    state: Box<dyn Any + Send + Sync>,
    version: u64,
    last_seq: u64,
}

/// Executes commands against aggregates in the event log. Cheap to clone.
#[derive(Clone)]
pub struct Handler {
    log: EventLog,
    cache: Arc<Mutex<HashMap<(&'static str, String), Cached>>>,
}

impl Handler {
    pub fn new(log: EventLog) -> Self {
        Self {
            log,
            cache: Arc::default(),
        }
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Current state, version and last stream sequence of an aggregate.
    pub async fn load<A>(&self, id: &str, fresh: bool) -> Result<(Root<A>, u64), CommandError>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: EventSchema,
    {
        let key = (A::TYPE, id.to_owned());
        if !fresh {
            if let Some(c) = self.cache.lock().ok().and_then(|m| {
                m.get(&key).and_then(|c| {
                    c.state
                        .downcast_ref::<A>()
                        .map(|s| (Root::from_state(s.clone(), c.version), c.last_seq))
                })
            }) {
                return Ok(c);
            }
        }
        let commits = self.log.load(A::TYPE, id).await.map_err(|e| match e {
            LogError::Corrupt { .. } => CommandError::Corrupt(e.to_string()),
            LogError::Unavailable(_) => CommandError::Unavailable(e.to_string()),
        })?;
        let mut root = Root::<A>::default();
        let mut last_seq = 0;
        for rc in &commits {
            let events: Vec<A::Event> = rc
                .commit
                .domain_events()
                .map_err(|e| CommandError::Corrupt(format!("position {}: {e}", rc.position)))?;
            for event in &events {
                root.apply(event);
            }
            last_seq = rc.position;
        }
        self.remember(key, root.state().clone(), root.version(), last_seq);
        Ok((root, last_seq))
    }

    fn remember<A: Aggregate + Send + Sync + 'static>(
        &self,
        key: (&'static str, String),
        state: A,
        version: u64,
        last_seq: u64,
    ) {
        if let Ok(mut m) = self.cache.lock() {
            if m.len() >= CACHE_CAPACITY {
                m.clear();
            }
            m.insert(
                key,
                Cached {
                    state: Box::new(state),
                    version,
                    last_seq,
                },
            );
        }
    }

    fn forget(&self, aggregate: &'static str, id: &str) {
        if let Ok(mut m) = self.cache.lock() {
            m.remove(&(aggregate, id.to_owned()));
        }
    }

    /// Load, check `check`, decide, append; on a concurrent append reload and decide again
    /// (bounded). A stale `If-Match` answers [`CommandError::Precondition`].
    pub async fn execute<A>(
        &self,
        ctx: &CommandContext,
        id: &str,
        check: Check,
        command: &A::Command,
    ) -> Result<Executed<A>, CommandError>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: EventSchema,
    {
        self.execute_all(ctx, id, check, std::slice::from_ref(command))
            .await
    }

    /// Decide `commands` in order against the evolving state and append all their events as
    /// one commit: all of them take effect or none does.
    pub async fn execute_all<A>(
        &self,
        ctx: &CommandContext,
        id: &str,
        check: Check,
        commands: &[A::Command],
    ) -> Result<Executed<A>, CommandError>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: EventSchema,
    {
        let started = std::time::Instant::now();
        let result = self.execute_inner::<A>(ctx, id, check, commands).await;
        let outcome = match &result {
            Ok(e) if e.position.is_none() => "unchanged",
            Ok(_) => "ok",
            Err(CommandError::Domain(_)) => "rejected",
            Err(CommandError::Precondition(_)) => "precondition_failed",
            Err(CommandError::Concurrency { .. }) => "conflict",
            Err(CommandError::NameTaken { .. }) => "name_taken",
            Err(CommandError::Unavailable(_)) => "unavailable",
            Err(CommandError::Corrupt(_)) => "corrupt",
        };
        let labels = [("aggregate", A::TYPE), ("outcome", outcome)];
        mc_metrics::count(
            "mc_commands_total",
            "Commands handled, by aggregate and outcome.",
            &labels,
            1,
        );
        mc_metrics::observe(
            "mc_command_seconds",
            "Time to load, decide and append a command.",
            &[("aggregate", A::TYPE)],
            started.elapsed(),
        );
        result
    }

    async fn execute_inner<A>(
        &self,
        ctx: &CommandContext,
        id: &str,
        check: Check,
        commands: &[A::Command],
    ) -> Result<Executed<A>, CommandError>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: EventSchema,
    {
        let mut expected = 0;
        for attempt in 0..MAX_ATTEMPTS {
            // A command that creates an aggregate (`MustBe(0)`) first assumes the id is new:
            // the append's expected sequence 0 proves it, and a conflict reloads.
            let (mut root, last_seq) = if attempt == 0 && check == Check::MustBe(0) {
                (Root::<A>::default(), 0)
            } else {
                self.load::<A>(id, attempt > 0).await?
            };
            root.check(check).map_err(CommandError::Precondition)?;
            let base_version = root.version();
            for command in commands {
                root.handle(command)?;
            }
            let events = root.take_uncommitted();
            if events.is_empty() {
                return Ok(Executed {
                    state: root.state().clone(),
                    version: root.version(),
                    position: None,
                });
            }
            let meta = CommitMeta {
                command_id: ctx.command_id,
                correlation_id: ctx.correlation_id,
                causation_id: ctx.causation_id,
                actor: ctx.actor.clone(),
                occurred_at: Utc::now(),
            };
            let commit = Commit::new(A::TYPE, id, base_version, meta, &events);
            let append_started = std::time::Instant::now();
            let appended = self.log.append(&commit, last_seq).await;
            mc_metrics::observe(
                "mc_append_seconds",
                "Time to append one commit to MC_EVENTS (publish and ack).",
                &[],
                append_started.elapsed(),
            );
            match appended {
                Ok(appended) => {
                    if appended.duplicate {
                        // The same command was stored before: our view may be behind it.
                        self.forget(A::TYPE, id);
                    } else {
                        self.remember(
                            (A::TYPE, id.to_owned()),
                            root.state().clone(),
                            root.version(),
                            appended.position,
                        );
                    }
                    return Ok(Executed {
                        state: root.state().clone(),
                        version: root.version(),
                        position: Some(appended.position),
                    });
                }
                Err(AppendError::Conflict { .. }) => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        id,
                        attempt,
                        "append conflict, reloading"
                    );
                    self.forget(A::TYPE, id);
                    expected = base_version;
                }
                Err(AppendError::Unavailable(e)) => {
                    self.forget(A::TYPE, id);
                    return Err(CommandError::Unavailable(e));
                }
            }
        }
        let actual = match self.load::<A>(id, true).await {
            Ok((root, _)) => root.version(),
            Err(_) => expected + 1,
        };
        Err(CommandError::Concurrency { expected, actual })
    }
}
