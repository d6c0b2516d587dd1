//! The one checkpointed-stream runtime behind every consumer (event projections, process
//! managers, the telemetry store and anomaly processor): read a JetStream stream from the
//! Postgres checkpoint + 1, gather a batch, apply it and move the checkpoint in one
//! transaction; retry transient faults with backoff; isolate and record poison.
//!
//! Architecture Invariant: no input makes a consumer retry the same batch forever. A batch that
//! fails with a data error (or a panic) is split until the offending message is alone; that
//! message is recorded in `projection_failures` and, by the consumer's [`PoisonPolicy`],
//! skipped (the checkpoint moves past it) or the consumer stops visibly in state `failed`.

use crate::checkpoint::{
    create_checkpoint, load_checkpoint, lock_checkpoint, record_failure, store_checkpoint,
};
use crate::poison::{PoisonPolicy, SinkError};
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use mc_eventlog::dlq::DeadLetter;
use sqlx::{PgConnection, PgPool};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

const APPLIED: &str = "mc_projection_events_applied_total";
const APPLIED_HELP: &str = "Messages (event commits or telemetry messages) applied by a consumer.";
const BATCH: &str = "mc_projection_batch_seconds";
const BATCH_HELP: &str = "Time to apply one batch and its checkpoint in one transaction.";
const SKIPPED: &str = "mc_projection_skipped_events_total";
const SKIPPED_HELP: &str = "Messages a consumer could not apply, recorded and skipped.";
const FAILED: &str = "mc_projection_failed";
const FAILED_HELP: &str = "1 when a consumer stopped on a message it cannot apply.";
const RETRIES: &str = "mc_projection_retries_total";
const RETRIES_HELP: &str = "Batches rolled back on a transient fault and retried.";

/// One message of a stream as a sink sees it.
#[derive(Debug, Clone)]
pub struct StreamMessage {
    /// Stream sequence: the position.
    pub position: u64,
    /// When the stream stored it (epoch ms), so a replay judges time exactly as the first run.
    pub received_ms: i64,
    pub subject: String,
    pub content_type: Option<String>,
    pub payload: Bytes,
}

impl StreamMessage {
    /// A message as a JetStream consumer delivered it.
    pub fn of(m: &async_nats::jetstream::Message) -> Result<Self, String> {
        let info = m.info().map_err(|e| e.to_string())?;
        Ok(Self {
            position: info.stream_sequence,
            received_ms: (info.published.unix_timestamp_nanos() / 1_000_000) as i64,
            subject: m.subject.to_string(),
            content_type: m
                .headers
                .as_ref()
                .and_then(|h| h.get("Content-Type"))
                .map(|v| v.as_str().to_owned()),
            payload: m.payload.clone(),
        })
    }

    /// This whole message as a dead letter of `class` (a short metric label) and `reason`.
    pub fn dead_letter(&self, class: &'static str, reason: &str) -> DeadLetter {
        DeadLetter {
            origin_subject: self.subject.clone(),
            position: self.position,
            index: None,
            class,
            reason: reason.to_owned(),
            content_type: self.content_type.clone(),
            payload: self.payload.clone(),
        }
    }
}

/// What a consumer does with its messages.
pub trait Sink: Send + Sync + 'static {
    /// Apply `batch` (in position order, all above the checkpoint) inside `tx`, which holds
    /// the checkpoint lock; side effects outside `tx` must be idempotent. `replay_until`: the
    /// positions up to it are history being replayed (see `Projection::replay_until`).
    fn apply<'a>(
        &'a mut self,
        tx: &'a mut PgConnection,
        batch: &'a [StreamMessage],
        replay_until: u64,
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Bring in-memory state back to what is committed: at every start and after a failed
    /// batch.
    fn reset(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }

    /// A message is being skipped as poison: keep a copy where operators look (a DLQ).
    fn dead_letter<'a>(
        &'a mut self,
        message: &'a StreamMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let _ = (message, reason);
        Box::pin(async { Ok(()) })
    }
}

/// How a consumer reads and commits.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Checkpoint key; also the `projection` label of its metrics.
    pub name: &'static str,
    pub stream: &'static str,
    /// A batch closes at this many messages or payload bytes...
    pub max_messages: usize,
    pub max_bytes: usize,
    /// ...or this long after its first message...
    pub window: Duration,
    /// ...or when no message arrives for this long (catching up: take what is buffered).
    pub linger: Duration,
    pub poison: PoisonPolicy,
    /// Commit with `synchronous_commit = off` (the stream, not Postgres, is the record).
    pub relaxed_commit: bool,
    /// Write the tables of this schema (a rebuild's shadow) instead of `public`.
    pub schema: Option<String>,
    /// On the first start, mark the log up to its head as a replay (process managers).
    pub replay_marker: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectorStatus {
    Starting,
    Running,
    /// Rolled back on a transient fault; retrying with backoff.
    Retrying {
        error: String,
    },
    /// Stopped on a message it cannot apply; needs an operator.
    Failed {
        position: u64,
        error: String,
    },
    Stopped,
}

/// What the API reports about a consumer.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub status: ProjectorStatus,
    /// The last transient error, kept after recovery until the next one.
    pub last_error: Option<String>,
    /// When the checkpoint last moved (or the consumer started).
    pub advanced_at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("consumer {name} failed at position {position}: {reason}")]
    Poison {
        name: &'static str,
        position: u64,
        reason: String,
    },
}

enum Halt {
    Cancelled,
    Retry(String),
    Poison { position: u64, reason: String },
}

impl From<sqlx::Error> for Halt {
    fn from(e: sqlx::Error) -> Self {
        Self::Retry(e.to_string())
    }
}

enum Work {
    Range(usize, usize),
    Offender(usize, String, bool),
}

/// The last sequence of stream `name` (0 when empty).
pub(crate) async fn stream_head(js: &Context, name: &str) -> Result<u64, String> {
    let mut stream = js.get_stream(name).await.map_err(|e| e.to_string())?;
    Ok(stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .last_sequence)
}

/// A consumer: a [`Sink`] driven from its checkpoint. `run` it in a task.
pub struct CheckpointedStream {
    config: StreamConfig,
    sink: Box<dyn Sink>,
    pool: PgPool,
    js: Context,
    position: watch::Sender<u64>,
    monitor: Arc<Mutex<Monitor>>,
}

impl CheckpointedStream {
    pub fn new(config: StreamConfig, sink: Box<dyn Sink>, pool: PgPool, js: Context) -> Self {
        Self {
            config,
            sink,
            pool,
            js,
            position: watch::channel(0).0,
            monitor: Arc::new(Mutex::new(Monitor {
                status: ProjectorStatus::Starting,
                last_error: None,
                advanced_at: Instant::now(),
            })),
        }
    }

    pub fn name(&self) -> &'static str {
        self.config.name
    }

    pub fn config_mut(&mut self) -> &mut StreamConfig {
        &mut self.config
    }

    /// The checkpoint after each committed batch.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.position.subscribe()
    }

    pub fn monitor(&self) -> Arc<Mutex<Monitor>> {
        self.monitor.clone()
    }

    fn set_status(&self, status: ProjectorStatus) {
        if let Ok(mut m) = self.monitor.lock() {
            if let ProjectorStatus::Retrying { error } = &status {
                m.last_error = Some(error.clone());
            }
            m.status = status;
        }
    }

    fn advanced(&self, position: u64) {
        let before = self.position.send_replace(position);
        if position != before {
            if let Ok(mut m) = self.monitor.lock() {
                m.advanced_at = Instant::now();
            }
        }
    }

    /// Create the checkpoint row if this consumer never ran (marking the history up to the
    /// log's head as a replay when configured).
    pub async fn prepare(&self) -> Result<(), String> {
        let head = if self.config.replay_marker {
            stream_head(&self.js, self.config.stream).await?
        } else {
            0
        };
        create_checkpoint(&self.pool, self.name(), head)
            .await
            .map_err(|e| e.to_string())
    }

    /// Run until cancelled (after committing or rolling back the batch in flight) or until a
    /// message stops it by the poison policy. Transient faults are retried with backoff.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), ProjectorError> {
        let name = self.name();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.run_once(&cancel).await {
                Halt::Cancelled => {
                    self.set_status(ProjectorStatus::Stopped);
                    tracing::info!(consumer = name, "consumer stopped");
                    return Ok(());
                }
                Halt::Retry(reason) => {
                    mc_metrics::count(RETRIES, RETRIES_HELP, &[("projection", name)], 1);
                    tracing::warn!(consumer = name, %reason, ?backoff, "consumer retrying");
                    self.set_status(ProjectorStatus::Retrying { error: reason });
                }
                Halt::Poison { position, reason } => {
                    mc_metrics::gauge(FAILED, FAILED_HELP, &[("projection", name)], 1.0);
                    tracing::error!(consumer = name, position, %reason, "consumer stopped on poison");
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

    async fn run_once(&mut self, cancel: &CancellationToken) -> Halt {
        if let Err(e) = self.prepare().await {
            return Halt::Retry(e);
        }
        if let Err(e) = self.sink.reset().await {
            return Halt::Retry(e.to_string());
        }
        let checkpoint = match load_checkpoint(&self.pool, self.name()).await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        self.position.send_replace(checkpoint);
        let stream = match self.js.get_stream(self.config.stream).await {
            Ok(s) => s,
            Err(e) => return Halt::Retry(e.to_string()),
        };
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
            Err(e) => return Halt::Retry(e.to_string()),
        };
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => return Halt::Retry(e.to_string()),
        };
        self.set_status(ProjectorStatus::Running);
        tracing::info!(consumer = self.name(), checkpoint, "consumer started");
        let mut batch: Vec<StreamMessage> = Vec::with_capacity(self.config.max_messages.min(4096));
        let mut after = checkpoint;
        loop {
            let first = tokio::select! {
                biased;
                () = cancel.cancelled() => return Halt::Cancelled,
                m = messages.next() => m,
            };
            let opened = Instant::now();
            let mut bytes = 0;
            let mut next = first;
            loop {
                let m = match next {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Halt::Retry(e.to_string()),
                    None => return Halt::Retry("consumer ended".into()),
                };
                let message = match StreamMessage::of(&m) {
                    Ok(message) => message,
                    Err(e) => return Halt::Retry(e),
                };
                // The ordered consumer never skips; after a retry, drop what is committed.
                if message.position > after {
                    bytes += message.payload.len();
                    batch.push(message);
                }
                if batch.len() >= self.config.max_messages || bytes >= self.config.max_bytes {
                    break;
                }
                let left = self.config.window.saturating_sub(opened.elapsed());
                let wait = if self.config.window.is_zero() {
                    self.config.linger
                } else {
                    left
                };
                if wait.is_zero() {
                    break;
                }
                match tokio::time::timeout(wait, messages.next()).await {
                    Ok(m) => next = m,
                    Err(_) => break,
                }
            }
            if let Some(last) = batch.last().map(|m| m.position) {
                if let Err(halt) = self.apply_all(&batch).await {
                    return halt;
                }
                after = last;
                batch.clear();
            }
        }
    }

    /// Apply a batch. A poison failure splits it, at the offender when the sink names it, else
    /// in halves, until the offender is alone; everything around it is applied.
    async fn apply_all(&mut self, batch: &[StreamMessage]) -> Result<(), Halt> {
        let mut work = vec![Work::Range(0, batch.len())];
        while let Some(item) = work.pop() {
            let (lo, hi) = match item {
                Work::Range(lo, hi) if lo < hi => (lo, hi),
                Work::Range(..) => continue,
                Work::Offender(i, reason, reject) => {
                    self.offender(&batch[i], reason, reject).await?;
                    continue;
                }
            };
            let error = match self.apply_batch(&batch[lo..hi]).await {
                Ok(()) => continue,
                Err(SinkError::Transient(reason)) => {
                    let _ = self.sink.reset().await;
                    return Err(Halt::Retry(reason));
                }
                Err(e) => e,
            };
            if let Err(e) = self.sink.reset().await {
                return Err(Halt::Retry(e.to_string()));
            }
            let (position, reason, reject) = match error {
                SinkError::Poison { position, reason } => (position, reason, false),
                SinkError::Reject { position, reason } => (Some(position), reason, true),
                SinkError::Transient(_) => unreachable!("handled above"),
            };
            let named = position.and_then(|p| {
                let i = lo + batch[lo..hi].partition_point(|m| m.position < p);
                (i < hi && batch[i].position == p).then_some(i)
            });
            match named {
                Some(i) => {
                    work.push(Work::Range(i + 1, hi));
                    work.push(Work::Offender(i, reason, reject));
                    work.push(Work::Range(lo, i));
                }
                // Alone and still failing: once more after the reset (a sink may have dropped a
                // stale cache on the failure, e.g. the store's known partitions), then condemn.
                None if hi - lo == 1 => match self.apply_batch(&batch[lo..hi]).await {
                    Ok(()) => {}
                    Err(SinkError::Transient(reason)) => {
                        let _ = self.sink.reset().await;
                        return Err(Halt::Retry(reason));
                    }
                    Err(_) => {
                        if let Err(e) = self.sink.reset().await {
                            return Err(Halt::Retry(e.to_string()));
                        }
                        work.push(Work::Offender(lo, reason, reject));
                    }
                },
                None => {
                    let mid = lo + (hi - lo) / 2;
                    work.push(Work::Range(mid, hi));
                    work.push(Work::Range(lo, mid));
                }
            }
        }
        Ok(())
    }

    /// A message that fails whenever it is applied: record it, then skip it or stop.
    async fn offender(
        &mut self,
        message: &StreamMessage,
        reason: String,
        reject: bool,
    ) -> Result<(), Halt> {
        let name = self.name();
        let position = message.position;
        let skip = reject || self.config.poison == PoisonPolicy::Skip;
        if skip {
            if let Err(e) = self.sink.dead_letter(message, &reason).await {
                return Err(Halt::Retry(e.to_string()));
            }
        }
        record_failure(&self.pool, name, position, &reason, skip).await?;
        if !skip {
            return Err(Halt::Poison { position, reason });
        }
        mc_metrics::count(SKIPPED, SKIPPED_HELP, &[("projection", name)], 1);
        tracing::error!(consumer = name, position, %reason, "recorded and skipped a message that cannot be applied");
        self.advanced(position);
        Ok(())
    }

    /// One transaction: lock the checkpoint, apply what is above it, store the new checkpoint.
    /// A panic in the sink is a poison failure of this batch, never the end of the process.
    async fn apply_batch(&mut self, batch: &[StreamMessage]) -> Result<(), SinkError> {
        let Some(last) = batch.last().map(|m| m.position) else {
            return Ok(());
        };
        let name = self.config.name;
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        if self.config.relaxed_commit {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
        }
        if let Some(schema) = &self.config.schema {
            sqlx::query(&format!("SET LOCAL search_path TO \"{schema}\", public"))
                .execute(&mut *tx)
                .await?;
        }
        let (checkpoint, replay_until) = lock_checkpoint(&mut tx, name).await?;
        let fresh = batch.partition_point(|m| m.position <= checkpoint);
        if fresh < batch.len() {
            let applying =
                AssertUnwindSafe(self.sink.apply(&mut tx, &batch[fresh..], replay_until))
                    .catch_unwind()
                    .await;
            match applying {
                Ok(result) => result?,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    return Err(SinkError::Poison {
                        position: None,
                        reason: format!("panic while applying: {what}"),
                    });
                }
            }
            store_checkpoint(&mut tx, name, last).await?;
        }
        tx.commit().await?;
        let labels = [("projection", name)];
        mc_metrics::observe(BATCH, BATCH_HELP, &labels, started.elapsed());
        mc_metrics::count(APPLIED, APPLIED_HELP, &labels, (batch.len() - fresh) as u64);
        self.advanced(last.max(checkpoint));
        if let Ok(mut m) = self.monitor.lock() {
            if m.status != ProjectorStatus::Running {
                m.status = ProjectorStatus::Running;
            }
        }
        Ok(())
    }
}
