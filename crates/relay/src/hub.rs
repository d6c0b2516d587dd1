//! The hub: one ordered JetStream consumer per stream per process, fanning every message out
//! to the local clients subscribed to its topics without ever waiting on one of them.

use crate::client::{Client, ClientShared};
use crate::queue::Pushed;
use crate::route::{self, relayed_subjects, Routed, Skip};
use crate::topic::Topic;
use crate::{Limits, Positions, RelayError, StreamKind};
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::Context;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const SKIPPED: &str = "mc_relay_skipped_total";
const SKIPPED_HELP: &str = "log messages the relay could not decode and skipped";
const OVERFLOWS: &str = "mc_relay_overflow_closes_total";
const OVERFLOWS_HELP: &str = "relay clients closed because their event backlog overflowed";

/// Subscribers per topic: client id → client.
type Index = HashMap<Topic, HashMap<u64, Arc<ClientShared>>>;

/// Handle on the process's relay. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

/// Counters for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Connected clients.
    pub clients: usize,
    /// Last position fanned out per stream.
    pub positions: Positions,
    /// Messages skipped as undecodable or inconsistent.
    pub skipped: u64,
    /// Clients closed with 4008 (event backlog or replay buffer overflow).
    pub overflow_closes: u64,
    /// Telemetry frames merged away by coalescing.
    pub telemetry_dropped: u64,
}

pub(crate) struct HubInner {
    pub js: Context,
    pub limits: Limits,
    pub cancel: CancellationToken,
    index: RwLock<Index>,
    /// Last position fanned out per stream; written under the index read lock, so a reader
    /// holding the write lock sees exactly what has been delivered.
    positions: [AtomicU64; 2],
    started: [AtomicBool; 2],
    ready: watch::Sender<[bool; 2]>,
    next_id: AtomicU64,
    clients: AtomicUsize,
    skipped: AtomicU64,
    overflow_closes: AtomicU64,
    telemetry_dropped: AtomicU64,
}

impl Hub {
    /// Start the two consumers (from the current head of each stream) and return the handle.
    /// They retry until `cancel`; cancelling also closes every client with 1001.
    pub fn spawn(js: Context, limits: Limits, cancel: CancellationToken) -> Hub {
        let inner = Arc::new(HubInner {
            js,
            limits,
            cancel,
            index: RwLock::new(HashMap::new()),
            positions: [AtomicU64::new(0), AtomicU64::new(0)],
            started: [AtomicBool::new(false), AtomicBool::new(false)],
            ready: watch::Sender::new([false; 2]),
            next_id: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            skipped: AtomicU64::new(0),
            overflow_closes: AtomicU64::new(0),
            telemetry_dropped: AtomicU64::new(0),
        });
        for stream in StreamKind::ALL {
            tokio::spawn(consume(inner.clone(), stream));
        }
        Hub { inner }
    }

    /// A new client with no topics.
    pub fn connect(&self) -> Client {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.clients.fetch_add(1, Ordering::Relaxed);
        Client::new(self.inner.clone(), id)
    }

    /// Last position fanned out on `stream` (at start: the stream's head).
    pub fn position(&self, stream: StreamKind) -> u64 {
        self.inner.positions[stream.index()].load(Ordering::Acquire)
    }

    /// Both positions.
    pub fn positions(&self) -> Positions {
        Positions {
            events: self.position(StreamKind::Events),
            telemetry: self.position(StreamKind::Telemetry),
        }
    }

    /// True once both consumers are running.
    pub fn ready(&self) -> bool {
        *self.inner.ready.borrow() == [true, true]
    }

    /// The last sequence of each stream in JetStream now (may be ahead of [`Self::positions`]).
    pub async fn heads(&self) -> Result<Positions, RelayError> {
        Ok(Positions {
            events: self.inner.bounds(StreamKind::Events).await?.1,
            telemetry: self.inner.bounds(StreamKind::Telemetry).await?.1,
        })
    }

    /// Send a `metrics` snapshot to the clients following `topic` (see [`HubInner::announce`]).
    pub fn announce(&self, topic: &Topic, data: &serde_json::Value) {
        self.inner.announce(topic, data);
    }

    pub fn stats(&self) -> Stats {
        Stats {
            clients: self.inner.clients.load(Ordering::Relaxed),
            positions: self.positions(),
            skipped: self.inner.skipped.load(Ordering::Relaxed),
            overflow_closes: self.inner.overflow_closes.load(Ordering::Relaxed),
            telemetry_dropped: self.inner.telemetry_dropped.load(Ordering::Relaxed),
        }
    }
}

impl HubInner {
    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait (bounded) until the consumer of `stream` runs, so positions are meaningful.
    pub async fn wait_ready(&self, stream: StreamKind) -> Result<(), RelayError> {
        let mut rx = self.ready.subscribe();
        let ready = tokio::time::timeout(self.limits.ready_timeout, async {
            rx.wait_for(|r| r[stream.index()]).await.is_ok()
        })
        .await;
        match ready {
            Ok(true) => Ok(()),
            _ => Err(RelayError::NotReady),
        }
    }

    /// `(first sequence, last sequence)` of `stream`.
    pub async fn bounds(&self, stream: StreamKind) -> Result<(u64, u64), RelayError> {
        let mut s = self
            .js
            .get_stream(stream.stream_name())
            .await
            .map_err(|e| RelayError::Unavailable(e.to_string()))?;
        let info = s
            .info()
            .await
            .map_err(|e| RelayError::Unavailable(e.to_string()))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// Run `f` with the index write-locked: no fan-out is in progress, and the positions are
    /// exactly what has been delivered to the index's clients.
    pub fn with_index<T>(&self, f: impl FnOnce(&mut Index, Positions) -> T) -> T {
        let mut index = self.write_index();
        let positions = Positions {
            events: self.positions[0].load(Ordering::Acquire),
            telemetry: self.positions[1].load(Ordering::Acquire),
        };
        f(&mut index, positions)
    }

    pub fn remove(&self, id: u64, topics: &[Topic]) {
        let mut index = self.write_index();
        for topic in topics {
            if let Some(clients) = index.get_mut(topic) {
                clients.remove(&id);
                if clients.is_empty() {
                    index.remove(topic);
                }
            }
        }
    }

    pub fn client_gone(&self) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn skipped(&self, stream: StreamKind, position: u64, reason: &str) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        mc_metrics::count(SKIPPED, SKIPPED_HELP, &[("stream", stream.as_str())], 1);
        tracing::warn!(
            stream = stream.as_str(),
            position,
            reason,
            "relay skipped a message"
        );
    }

    pub fn note(&self, pushed: Pushed) {
        match pushed {
            Pushed::Overflowed => {
                self.overflow_closes.fetch_add(1, Ordering::Relaxed);
                mc_metrics::count(OVERFLOWS, OVERFLOWS_HELP, &[], 1);
            }
            Pushed::Coalesced { dropped: true } => {
                self.telemetry_dropped.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Deliver one message's frames to every subscribed client, then advance the position.
    /// Send `{"type":"metrics","topic":<topic>,"data":<data>}` to the clients following `topic`
    /// now: a snapshot with no position, not replayed, dropped for a client with no room.
    fn announce(&self, topic: &Topic, data: &serde_json::Value) {
        let text: Arc<str> =
            serde_json::json!({"type": "metrics", "topic": topic.to_string(), "data": data})
                .to_string()
                .into();
        let index = self.read_index();
        if let Some(clients) = index.get(topic) {
            for client in clients.values() {
                client.deliver_metrics(topic, &text);
            }
        }
    }

    fn fan_out(&self, stream: StreamKind, position: u64, frames: &[Routed]) {
        let index = self.read_index();
        for r in frames {
            if let Some(clients) = index.get(&r.topic) {
                for client in clients.values() {
                    self.note(client.deliver_live(r, self.limits.replay_buffer));
                }
            }
        }
        self.positions[stream.index()].store(position, Ordering::Release);
    }
}

/// The consumer loop of one stream: (re)create an ordered consumer after the last position
/// fanned out, until cancelled.
async fn consume(inner: Arc<HubInner>, stream: StreamKind) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let before = inner.positions[stream.index()].load(Ordering::Acquire);
        match consume_once(&inner, stream).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(stream = stream.as_str(), error = %e, "relay consumer failed; retrying")
            }
        }
        // A consumer that delivered before failing starts the backoff over: live clients must
        // not wait seconds because of failures long ago.
        if inner.positions[stream.index()].load(Ordering::Acquire) > before {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            _ = inner.cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn consume_once(inner: &HubInner, stream: StreamKind) -> Result<(), String> {
    let i = stream.index();
    let mut js_stream = inner
        .js
        .get_stream(stream.stream_name())
        .await
        .map_err(|e| e.to_string())?;
    let start = if inner.started[i].load(Ordering::Acquire) {
        inner.positions[i].load(Ordering::Acquire) + 1
    } else {
        let head = js_stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .last_sequence;
        inner.positions[i].store(head, Ordering::Release);
        head + 1
    };
    let consumer = js_stream
        .create_consumer(OrderedConfig {
            filter_subjects: relayed_subjects(stream),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    if !inner.started[i].swap(true, Ordering::AcqRel) {
        inner.ready.send_modify(|r| r[i] = true);
        tracing::info!(
            stream = stream.as_str(),
            from = start,
            "relay consumer started"
        );
    }
    loop {
        let message = tokio::select! {
            _ = inner.cancel.cancelled() => return Ok(()),
            m = messages.next() => m,
        };
        let message = match message {
            None => return Err("consumer ended".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(m)) => m,
        };
        let position = message.info().map_err(|e| e.to_string())?.stream_sequence;
        let content_type = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Content-Type"))
            .map(|v| v.as_str());
        let frames = match route::route(
            stream,
            message.subject.as_str(),
            position,
            content_type,
            &message.payload,
        ) {
            Ok(frames) => frames,
            Err(Skip::NotRelayed) => Vec::new(),
            Err(Skip::Garbage(reason)) => {
                inner.skipped(stream, position, &reason);
                Vec::new()
            }
        };
        inner.fan_out(stream, position, &frames);
    }
}
