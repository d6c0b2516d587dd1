//! The projector loop: consume from checkpoint + 1, batch, apply + checkpoint in one
//! transaction, publish the new position.

use crate::checkpoint::{
    create_checkpoint, load_checkpoint, lock_checkpoint, record_failure, store_checkpoint,
};
use crate::{ApplyError, Projection};
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::Context;
use futures::StreamExt;
use mc_eventlog::{streams, Commit, RecordedCommit};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const MAX_BATCH: usize = 1_000;
/// How long a batch waits for one more message before it is applied.
const BATCH_LINGER: Duration = Duration::from_millis(2);

const APPLIED: &str = "mc_projection_events_applied_total";
const APPLIED_HELP: &str = "Events applied by a projection.";
const BATCH: &str = "mc_projection_batch_seconds";
const BATCH_HELP: &str = "Time to apply one batch and its checkpoint in one transaction.";
const SKIPPED: &str = "mc_projection_skipped_events_total";
const SKIPPED_HELP: &str = "Events a projection could not apply and skipped (MC_SKIP_POISON).";
const FAILED: &str = "mc_projection_failed";
const FAILED_HELP: &str = "1 when a projection stopped on an event it cannot apply.";
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectorStatus {
    Starting,
    Running,
    /// Stopped on an event it cannot apply; needs an operator.
    Failed {
        position: u64,
        error: String,
    },
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("projection {name} failed at position {position}: {reason}")]
    Poison {
        name: &'static str,
        position: u64,
        reason: String,
    },
}

/// Runs one projection. Create with [`Projector::new`], then `run` it in a task.
pub struct Projector {
    projection: Arc<dyn Projection>,
    pool: PgPool,
    js: Context,
    position: watch::Sender<u64>,
    status: Arc<Mutex<ProjectorStatus>>,
    skip_poison: bool,
    /// Write into this schema's tables (a rebuild's shadow) instead of `public`.
    schema: Option<String>,
}

enum Step {
    Cancelled,
    Retry(String),
}

impl Projector {
    pub fn new(projection: Arc<dyn Projection>, pool: PgPool, js: Context) -> Self {
        Self {
            projection,
            pool,
            js,
            position: watch::channel(0).0,
            status: Arc::new(Mutex::new(ProjectorStatus::Starting)),
            skip_poison: false,
            schema: None,
        }
    }

    /// Apply into the tables of `schema` (checkpoints stay in `public`).
    pub fn in_schema(mut self, schema: &str) -> Self {
        self.schema = Some(schema.to_owned());
        self
    }

    /// Go on past events this projection cannot apply (each is still recorded in
    /// `projection_failures`), instead of stopping.
    pub fn skip_poison(mut self, skip: bool) -> Self {
        self.skip_poison = skip;
        self
    }

    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// The projection this projector runs.
    pub fn projection(&self) -> &Arc<dyn Projection> {
        &self.projection
    }

    /// Position after each committed batch.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.position.subscribe()
    }

    pub fn status_handle(&self) -> Arc<Mutex<ProjectorStatus>> {
        self.status.clone()
    }

    fn set_status(&self, status: ProjectorStatus) {
        if let Ok(mut s) = self.status.lock() {
            *s = status;
        }
    }

    /// Create the checkpoint row if this projection never ran, marking the history up to the
    /// log's head as a replay. `serve` does this for every projector before it reports ready, so
    /// commands accepted afterwards are never mistaken for history.
    pub async fn prepare(&self) -> Result<(), String> {
        let mut stream = self
            .js
            .get_stream(streams::EVENTS)
            .await
            .map_err(|e| e.to_string())?;
        let head = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .last_sequence;
        create_checkpoint(&self.pool, self.name(), head)
            .await
            .map_err(|e| e.to_string())
    }

    /// Run until cancelled (after committing or rolling back the batch in flight) or until an
    /// event cannot be applied. Transient NATS/Postgres faults are retried with backoff.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), ProjectorError> {
        let name = self.name();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.run_once(&cancel).await {
                Ok(Step::Cancelled) => {
                    self.set_status(ProjectorStatus::Stopped);
                    tracing::info!(projection = name, "projector stopped");
                    return Ok(());
                }
                Ok(Step::Retry(reason)) => {
                    tracing::warn!(projection = name, %reason, ?backoff, "projector retrying");
                }
                Err(e @ (ApplyError::Db(_) | ApplyError::Transient(_))) => {
                    tracing::warn!(projection = name, error = %e, ?backoff, "projector batch failed, retrying");
                }
                Err(ApplyError::Poison { position, reason }) => {
                    if let Err(e) = record_failure(&self.pool, name, position, &reason, false).await
                    {
                        tracing::warn!(projection = name, error = %e, "cannot record the failure");
                    }
                    mc_metrics::gauge(FAILED, FAILED_HELP, &[("projection", name)], 1.0);
                    tracing::error!(projection = name, position, %reason, "projector stopped on poison event");
                    self.set_status(ProjectorStatus::Failed {
                        position,
                        error: reason.clone(),
                    });
                    return Err(ProjectorError::Poison {
                        name,
                        position,
                        reason,
                    });
                }
            }
            tokio::select! {
                () = cancel.cancelled() => {
                    self.set_status(ProjectorStatus::Stopped);
                    return Ok(());
                }
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn run_once(&self, cancel: &CancellationToken) -> Result<Step, ApplyError> {
        let name = self.name();
        let checkpoint = load_checkpoint(&self.pool, name).await?;
        self.position.send_replace(checkpoint);
        let mut stream = match self.js.get_stream(streams::EVENTS).await {
            Ok(s) => s,
            Err(e) => return Ok(Step::Retry(e.to_string())),
        };
        let head = match stream.info().await {
            Ok(info) => info.state.last_sequence,
            Err(e) => return Ok(Step::Retry(e.to_string())),
        };
        create_checkpoint(&self.pool, name, head).await?;
        let consumer = match stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: checkpoint + 1,
                },
                ..Default::default()
            })
            .await
        {
            Ok(c) => c,
            Err(e) => return Ok(Step::Retry(e.to_string())),
        };
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => return Ok(Step::Retry(e.to_string())),
        };
        self.set_status(ProjectorStatus::Running);
        tracing::info!(projection = name, checkpoint, "projector started");
        let mut batch: Vec<RecordedCommit> = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(Step::Cancelled),
                m = messages.next() => m,
            };
            let mut next = first;
            let mut continue_after = None;
            loop {
                match next {
                    Some(Ok(message)) => {
                        let position = match message.info() {
                            Ok(info) => info.stream_sequence,
                            Err(e) => return Ok(Step::Retry(e.to_string())),
                        };
                        match Commit::decode(&message.payload) {
                            Ok(commit) => batch.push(RecordedCommit { position, commit }),
                            Err(e) => {
                                // Apply what came before it, then deal with it.
                                self.apply_all(&batch).await?;
                                batch.clear();
                                self.poisoned(position, format!("undecodable commit: {e}"))
                                    .await?;
                                continue_after = Some(position);
                                break;
                            }
                        }
                    }
                    Some(Err(e)) => return Ok(Step::Retry(e.to_string())),
                    None => return Ok(Step::Retry("consumer ended".into())),
                }
                if batch.len() >= MAX_BATCH {
                    break;
                }
                // Take what is buffered; when catching up, wait a moment for the next pull
                // to arrive rather than committing many small batches.
                match tokio::time::timeout(BATCH_LINGER, messages.next()).await {
                    Ok(m) => next = m,
                    Err(_) => break,
                }
            }
            if let Some(position) = continue_after {
                self.position.send_replace(position);
                continue;
            }
            self.apply_all(&batch).await?;
            batch.clear();
        }
    }

    /// Apply a batch; an event the projection cannot apply splits it: what comes before is
    /// applied, the event is recorded and skipped (if configured) or stops the projector.
    async fn apply_all(&self, mut batch: &[RecordedCommit]) -> Result<(), ApplyError> {
        loop {
            match self.apply_batch(batch).await {
                Err(ApplyError::Poison { position, reason }) => {
                    let at = batch.partition_point(|c| c.position < position);
                    self.apply_batch(&batch[..at]).await?;
                    self.poisoned(position, reason).await?;
                    batch = &batch[(at + 1).min(batch.len())..];
                }
                other => return other,
            }
        }
    }

    /// Record an event that cannot be applied: skip it when configured, else stop.
    async fn poisoned(&self, position: u64, reason: String) -> Result<(), ApplyError> {
        if !self.skip_poison {
            return Err(ApplyError::Poison { position, reason });
        }
        let name = self.name();
        record_failure(&self.pool, name, position, &reason, true).await?;
        mc_metrics::count(SKIPPED, SKIPPED_HELP, &[("projection", name)], 1);
        tracing::error!(projection = name, position, %reason, "skipped an event this projection cannot apply");
        Ok(())
    }

    /// One transaction: lock checkpoint, apply what is above it, store the new checkpoint.
    async fn apply_batch(&self, batch: &[RecordedCommit]) -> Result<(), ApplyError> {
        let Some(last) = batch.last().map(|c| c.position) else {
            return Ok(());
        };
        let name = self.name();
        let mut tx = self.pool.begin().await?;
        if let Some(schema) = &self.schema {
            sqlx::query(&format!("SET LOCAL search_path TO \"{schema}\", public"))
                .execute(&mut *tx)
                .await?;
        }
        let (checkpoint, replay_until) = lock_checkpoint(&mut tx, name).await?;
        self.projection.replay_until(replay_until);
        let fresh = batch.partition_point(|c| c.position <= checkpoint);
        let started = std::time::Instant::now();
        if fresh < batch.len() {
            self.projection.apply(&mut tx, &batch[fresh..]).await?;
            store_checkpoint(&mut tx, name, last).await?;
        }
        tx.commit().await?;
        let labels = [("projection", name)];
        mc_metrics::observe(BATCH, BATCH_HELP, &labels, started.elapsed());
        let applied: usize = batch[fresh..].iter().map(|c| c.commit.events.len()).sum();
        mc_metrics::count(APPLIED, APPLIED_HELP, &labels, applied as u64);
        self.position.send_replace(last.max(checkpoint));
        Ok(())
    }
}
