//! The MC_TELEMETRY consumer loop shared by the store and anomaly sinks: read from the
//! Postgres checkpoint + 1, batch, prepare (decode, side effects that are idempotent), then
//! write and move the checkpoint in one transaction.

use crate::anomaly::AnomalySink;
use crate::store::StoreSink;
use crate::Message;
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::Context;
use futures::StreamExt;
use mc_eventlog::streams;
use mc_projection::{create_checkpoint, load_checkpoint, lock_checkpoint, store_checkpoint};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A batch closes at this many messages or this many payload bytes, or when its window ends.
const MAX_MESSAGES: usize = 4_000;
const MAX_BYTES: usize = 16 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

const BATCH: &str = "mc_telemetry_batch_seconds";
const BATCH_HELP: &str = "Time to prepare and commit one telemetry batch, by consumer.";

/// What a consumer does with a batch.
pub enum Sink {
    Store(Box<StoreSink>),
    Anomaly(Box<AnomalySink>),
}

/// One consumer of MC_TELEMETRY with its own checkpoint row.
pub struct TelemetryConsumer {
    name: &'static str,
    sink: Sink,
    pool: PgPool,
    js: Context,
    position: watch::Sender<u64>,
    /// A batch gathers messages for this long after its first one. Under a steady stream this
    /// makes one transaction of many messages, so each rollup bucket is upserted once per window
    /// instead of once per message; the read models trail the stream by at most this much plus
    /// the commit.
    window: Duration,
}

impl TelemetryConsumer {
    pub fn new(
        name: &'static str,
        sink: Sink,
        pool: PgPool,
        js: Context,
        window: Duration,
    ) -> Self {
        Self {
            name,
            sink,
            pool,
            js,
            position: watch::channel(0).0,
            window,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The checkpoint after each committed batch.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.position.subscribe()
    }

    /// Run until cancelled; faults are retried with backoff from the committed checkpoint.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.run_once(&cancel).await {
                Ok(()) => {
                    tracing::info!(consumer = self.name, "telemetry consumer stopped");
                    return;
                }
                Err(reason) => {
                    tracing::warn!(consumer = self.name, %reason, ?backoff, "telemetry consumer retrying");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn run_once(&mut self, cancel: &CancellationToken) -> Result<(), String> {
        let name = self.name;
        if let Sink::Anomaly(a) = &mut self.sink {
            a.load().await.map_err(|e| e.to_string())?;
        }
        create_checkpoint(&self.pool, name, 0)
            .await
            .map_err(|e| e.to_string())?;
        let checkpoint = load_checkpoint(&self.pool, name)
            .await
            .map_err(|e| e.to_string())?;
        self.position.send_replace(checkpoint);
        let stream = self
            .js
            .get_stream(streams::TELEMETRY)
            .await
            .map_err(|e| e.to_string())?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: checkpoint + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        tracing::info!(consumer = name, checkpoint, "telemetry consumer started");
        let mut batch: Vec<Message> = Vec::with_capacity(MAX_MESSAGES);
        let mut after = checkpoint;
        loop {
            let first = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                m = messages.next() => m,
            };
            let opened = Instant::now();
            let mut bytes = 0;
            let mut next = first;
            loop {
                match next {
                    Some(Ok(m)) => {
                        let (position, received_ms) = {
                            let info = m.info().map_err(|e| e.to_string())?;
                            let ms = info.published.unix_timestamp_nanos() / 1_000_000;
                            (info.stream_sequence, ms as i64)
                        };
                        // The ordered consumer never skips; after a retry, drop what is committed.
                        if position > after {
                            bytes += m.payload.len();
                            batch.push(Message {
                                position,
                                received_ms,
                                subject: m.subject.to_string(),
                                content_type: m
                                    .headers
                                    .as_ref()
                                    .and_then(|h| h.get("Content-Type"))
                                    .map(|v| v.as_str().to_owned()),
                                payload: m.payload.clone(),
                            });
                        }
                    }
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("consumer ended".into()),
                }
                let left = self.window.saturating_sub(opened.elapsed());
                if batch.len() >= MAX_MESSAGES || bytes >= MAX_BYTES || left.is_zero() {
                    break;
                }
                match tokio::time::timeout(left, messages.next()).await {
                    Ok(m) => next = m,
                    Err(_) => break,
                }
            }
            if let Some(last) = batch.last().map(|m| m.position) {
                self.apply(&batch).await?;
                after = last;
                batch.clear();
            }
        }
    }

    /// Prepare, then write and checkpoint in one transaction.
    async fn apply(&mut self, batch: &[Message]) -> Result<(), String> {
        let started = Instant::now();
        let Some(last) = batch.last().map(|m| m.position) else {
            return Ok(());
        };
        match &mut self.sink {
            Sink::Store(s) => s.prepare(batch).await?,
            Sink::Anomaly(a) => a.prepare(batch).await?,
        }
        let db = |e: sqlx::Error| e.to_string();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The stream holds every sample; a batch lost with Postgres' last moments is applied
        // again from the checkpoint it rolled back with, so a synchronous flush buys nothing.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let (checkpoint, _) = lock_checkpoint(&mut tx, self.name).await.map_err(db)?;
        if checkpoint >= batch[0].position {
            // Another runner of this consumer got here first: start again from its checkpoint.
            return Err(format!(
                "checkpoint moved to {checkpoint} under this batch (another runner?)"
            ));
        }
        match &mut self.sink {
            Sink::Store(s) => s.write(&mut tx).await.map_err(db)?,
            Sink::Anomaly(a) => a.write(&mut tx).await.map_err(db)?,
        }
        store_checkpoint(&mut tx, self.name, last)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.position.send_replace(last);
        mc_metrics::observe(
            BATCH,
            BATCH_HELP,
            &[("consumer", self.name)],
            started.elapsed(),
        );
        Ok(())
    }
}
