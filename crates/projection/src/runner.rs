//! The projector loop: consume from checkpoint + 1, batch, apply + checkpoint in one
//! transaction, publish the new position.

use crate::checkpoint::{create_checkpoint, load_checkpoint, lock_checkpoint, store_checkpoint};
use crate::{ApplyError, Projection};
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::Context;
use futures::{FutureExt, StreamExt};
use mc_eventlog::{streams, Commit, RecordedCommit};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const MAX_BATCH: usize = 1_000;
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
        }
    }

    pub fn name(&self) -> &'static str {
        self.projection.name()
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
            loop {
                match next {
                    Some(Ok(message)) => {
                        let position = match message.info() {
                            Ok(info) => info.stream_sequence,
                            Err(e) => return Ok(Step::Retry(e.to_string())),
                        };
                        let commit =
                            Commit::decode(&message.payload).map_err(|e| ApplyError::Poison {
                                position,
                                reason: format!("undecodable commit: {e}"),
                            })?;
                        batch.push(RecordedCommit { position, commit });
                    }
                    Some(Err(e)) => return Ok(Step::Retry(e.to_string())),
                    None => return Ok(Step::Retry("consumer ended".into())),
                }
                if batch.len() >= MAX_BATCH {
                    break;
                }
                match messages.next().now_or_never() {
                    Some(m) => next = m,
                    None => break,
                }
            }
            self.apply_batch(&batch).await?;
            batch.clear();
        }
    }

    /// One transaction: lock checkpoint, apply what is above it, store the new checkpoint.
    async fn apply_batch(&self, batch: &[RecordedCommit]) -> Result<(), ApplyError> {
        let Some(last) = batch.last().map(|c| c.position) else {
            return Ok(());
        };
        let name = self.name();
        let mut tx = self.pool.begin().await?;
        let (checkpoint, replay_until) = lock_checkpoint(&mut tx, name).await?;
        self.projection.replay_until(replay_until);
        let fresh = batch.partition_point(|c| c.position <= checkpoint);
        if fresh < batch.len() {
            self.projection.apply(&mut tx, &batch[fresh..]).await?;
            store_checkpoint(&mut tx, name, last).await?;
        }
        tx.commit().await?;
        self.position.send_replace(last.max(checkpoint));
        Ok(())
    }
}
