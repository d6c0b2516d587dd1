//! The two MC_TELEMETRY consumers (store and anomaly) on the one checkpointed-stream runtime of
//! `mc-projection`: each sink prepares a batch (decode, dead letters, partitions, alarm
//! commands: idempotent) and writes it in the transaction that moves its checkpoint.

use crate::anomaly::AnomalySink;
use crate::dlq;
use crate::store::StoreSink;
use crate::Message;
use async_nats::jetstream::Context;
use futures::future::BoxFuture;
use mc_eventlog::streams;
use mc_projection::{CheckpointedStream, Monitor, PoisonPolicy, Sink, SinkError, StreamConfig};
use sqlx::{PgConnection, PgPool};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A batch closes at this many messages or this many payload bytes, or when its window ends.
const MAX_MESSAGES: usize = 4_000;
const MAX_BYTES: usize = 16 << 20;

impl Sink for StoreSink {
    fn apply<'a>(
        &'a mut self,
        tx: &'a mut PgConnection,
        batch: &'a [Message],
        _replay_until: u64,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.prepare(batch).await.map_err(SinkError::Transient)?;
            Ok(self.write(tx).await?)
        })
    }

    /// A message the store cannot write (PostgreSQL refuses its content) goes to the
    /// dead-letter stream like any invalid input.
    fn dead_letter<'a>(
        &'a mut self,
        m: &'a Message,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let letter = m.dead_letter("unstorable", reason);
            dlq::publish(self.js(), "telemetry", &[letter])
                .await
                .map_err(SinkError::Transient)
        })
    }
}

impl Sink for AnomalySink {
    fn apply<'a>(
        &'a mut self,
        tx: &'a mut PgConnection,
        batch: &'a [Message],
        _replay_until: u64,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.prepare(batch).await.map_err(SinkError::Transient)?;
            Ok(self.write(tx).await?)
        })
    }

    /// The evaluator state in memory may hold a failed batch's judgements: load it as committed.
    fn reset(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move { Ok(self.load().await?) })
    }
}

/// One consumer of MC_TELEMETRY with its own checkpoint row.
pub struct TelemetryConsumer {
    runtime: CheckpointedStream,
}

impl TelemetryConsumer {
    /// `window`: a batch gathers messages for this long after its first one. Under a steady
    /// stream this makes one transaction of many messages, so each rollup bucket is upserted
    /// once per window instead of once per message; the read models trail the stream by at most
    /// this much plus the commit.
    pub fn new(
        name: &'static str,
        sink: Box<dyn Sink>,
        pool: PgPool,
        js: Context,
        window: Duration,
    ) -> Self {
        let config = StreamConfig {
            name,
            stream: streams::TELEMETRY,
            max_messages: MAX_MESSAGES,
            max_bytes: MAX_BYTES,
            window,
            linger: window,
            // A frame PostgreSQL refuses is dead-lettered; telemetry never stops on one frame.
            poison: PoisonPolicy::Skip,
            // The stream holds every sample; a batch lost with Postgres' last moments is applied
            // again from the checkpoint it rolled back with, so a synchronous flush buys nothing.
            relaxed_commit: true,
            schema: None,
            replay_marker: false,
        };
        Self {
            runtime: CheckpointedStream::new(config, sink, pool, js),
        }
    }

    pub fn name(&self) -> &'static str {
        self.runtime.name()
    }

    /// The checkpoint after each committed batch.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.runtime.subscribe()
    }

    pub fn monitor(&self) -> Arc<Mutex<Monitor>> {
        self.runtime.monitor()
    }

    /// Run until cancelled; faults are retried with backoff from the committed checkpoint.
    pub async fn run(self, cancel: CancellationToken) {
        if let Err(e) = self.runtime.run(cancel).await {
            tracing::error!(error = %e, "telemetry consumer stopped");
        }
    }
}
