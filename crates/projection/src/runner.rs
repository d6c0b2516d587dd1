//! Event projections on the checkpointed-stream runtime: decode each `MC_EVENTS` message into a
//! commit and hand the batch to the [`Projection`].

use crate::poison::{PoisonPolicy, SinkError};
use crate::stream::{
    CheckpointedStream, Monitor, ProjectorError, Sink, StreamConfig, StreamMessage,
};
use crate::{ApplyError, Projection};
use async_nats::jetstream::Context;
use futures::future::BoxFuture;
use mc_eventlog::dlq;
use mc_eventlog::{streams, Commit, RecordedCommit};
use sqlx::{PgConnection, PgPool};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const MAX_BATCH: usize = 1_000;
/// How long a batch waits for one more message before it is applied.
const BATCH_LINGER: Duration = Duration::from_millis(2);

/// Feeds a projection: decodes commits, maps its errors onto the runtime's classes.
struct ProjectionSink {
    projection: Arc<dyn Projection>,
    commits: Vec<RecordedCommit>,
    js: Context,
}

impl Sink for ProjectionSink {
    fn apply<'a>(
        &'a mut self,
        tx: &'a mut PgConnection,
        batch: &'a [StreamMessage],
        replay_until: u64,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.commits.clear();
            for m in batch {
                // Not a commit at all (garbage published to mc.events.>): no projection can
                // use it, so every projection records it and goes on.
                let commit = Commit::decode(&m.payload).map_err(|e| SinkError::Reject {
                    position: m.position,
                    reason: format!("undecodable commit: {e}"),
                })?;
                self.commits.push(RecordedCommit {
                    position: m.position,
                    commit,
                });
            }
            self.projection.replay_until(replay_until);
            let applied = self.projection.apply(tx, &self.commits).await;
            self.commits.clear();
            applied.map_err(|e| match e {
                ApplyError::Poison { position, reason } => SinkError::poison_at(position, reason),
                ApplyError::Db(e) => SinkError::from(e),
                ApplyError::Transient(reason) => SinkError::Transient(reason),
            })
        })
    }

    /// A skipped message (not a commit, or skipped by `MC_SKIP_POISON`) is copied to
    /// `mc.dlq.events`. Every projection skips an undecodable one: the stream keeps one copy
    /// (the letter's `Nats-Msg-Id` is its position).
    fn dead_letter<'a>(
        &'a mut self,
        m: &'a StreamMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let letter = m.dead_letter("skipped", reason);
            dlq::publish(&self.js, "events", &[letter])
                .await
                .map_err(SinkError::Transient)
        })
    }
}

/// Runs one projection. Create with [`Projector::new`], then `run` it in a task.
pub struct Projector {
    projection: Arc<dyn Projection>,
    runtime: CheckpointedStream,
}

impl Projector {
    pub fn new(projection: Arc<dyn Projection>, pool: PgPool, js: Context) -> Self {
        let config = StreamConfig {
            name: projection.name(),
            stream: streams::EVENTS,
            max_messages: MAX_BATCH,
            max_bytes: 64 << 20,
            window: Duration::ZERO,
            linger: BATCH_LINGER,
            poison: PoisonPolicy::Stop,
            relaxed_commit: false,
            schema: None,
            replay_marker: true,
        };
        let sink = ProjectionSink {
            projection: projection.clone(),
            commits: Vec::new(),
            js: js.clone(),
        };
        Self {
            projection,
            runtime: CheckpointedStream::new(config, Box::new(sink), pool, js),
        }
    }

    /// Apply into the tables of `schema` (checkpoints stay in `public`).
    pub fn in_schema(mut self, schema: &str) -> Self {
        self.runtime.config_mut().schema = Some(schema.to_owned());
        self
    }

    /// Go on past events this projection cannot apply (each is still recorded in
    /// `projection_failures`), instead of stopping.
    pub fn skip_poison(mut self, skip: bool) -> Self {
        self.runtime.config_mut().poison = if skip {
            PoisonPolicy::Skip
        } else {
            PoisonPolicy::Stop
        };
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
        self.runtime.subscribe()
    }

    pub fn monitor(&self) -> Arc<Mutex<Monitor>> {
        self.runtime.monitor()
    }

    /// Create the checkpoint row if this projection never ran, marking the history up to the
    /// log's head as a replay. `serve` does this for every projector before it reports ready, so
    /// commands accepted afterwards are never mistaken for history.
    pub async fn prepare(&self) -> Result<(), String> {
        self.runtime.prepare().await
    }

    /// Run until cancelled or stopped by an event it cannot apply (see the runtime).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), ProjectorError> {
        self.runtime.run(cancel).await
    }
}
