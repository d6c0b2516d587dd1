//! One connected client: its topics, its queue, and the subscribe / unsubscribe / next API the
//! WebSocket and SSE handlers drive. A subscribe with `since` buffers live frames of that
//! stream while a replay from JetStream catches up, then hands over with no gap and no
//! duplicate.

use crate::hub::HubInner;
use crate::queue::{ClientQueue, Pushed};
use crate::route::Routed;
use crate::topic::{filter_subjects, Topic};
use crate::{Outgoing, Positions, RelayError, Since, StreamKind, CLOSE_GOING_AWAY};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub(crate) struct ClientState {
    pub topics: BTreeSet<Topic>,
    /// Live frames held per stream while a replay runs on it.
    pub replaying: [Option<Vec<Routed>>; 2],
    pub queue: ClientQueue,
}

pub(crate) struct ClientShared {
    state: Mutex<ClientState>,
    readable: Notify,
    room: Notify,
    /// Cancelled when the [`Client`] is dropped: stops its replays.
    pub tasks: CancellationToken,
}

impl ClientShared {
    pub fn lock(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A live frame from the hub. Never waits.
    pub fn deliver_live(&self, r: &Routed, replay_buffer: usize) -> Pushed {
        let mut st = self.lock();
        if !st.topics.contains(&r.topic) {
            return Pushed::Ignored;
        }
        if st.queue.is_closed() {
            return Pushed::Ignored;
        }
        let pushed = match &mut st.replaying[r.stream.index()] {
            Some(buffer) if buffer.len() >= replay_buffer => {
                st.queue.overflow();
                Pushed::Overflowed
            }
            Some(buffer) => {
                buffer.push(r.clone());
                return Pushed::Queued;
            }
            None => st.queue.push_live(r),
        };
        drop(st);
        if matches!(
            pushed,
            Pushed::Queued | Pushed::Coalesced { .. } | Pushed::Overflowed
        ) {
            self.readable.notify_one();
        }
        pushed
    }

    /// Wait until the queue has room for a replayed frame; false once the client is closed.
    pub async fn wait_room(&self) -> bool {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                if st.queue.is_closed() {
                    return false;
                }
                if st.queue.has_room() {
                    return true;
                }
            }
            notified.await;
        }
    }

    /// A replayed frame (only if its topic is still subscribed).
    pub fn push_replay(&self, r: &Routed) {
        let mut st = self.lock();
        if st.topics.contains(&r.topic) && st.queue.push_replay(r) == Pushed::Queued {
            drop(st);
            self.readable.notify_one();
        }
    }

    /// Position of the first live frame held while replaying `stream`.
    pub fn first_buffered(&self, stream: StreamKind) -> Option<u64> {
        self.lock().replaying[stream.index()]
            .as_ref()
            .and_then(|b| b.first())
            .map(|r| r.position)
    }

    /// The replay of `stream` is done: queue the held live frames newer than what it
    /// delivered, and go live.
    pub fn finish_replay(&self, stream: StreamKind) -> Vec<Pushed> {
        let mut st = self.lock();
        let held = st.replaying[stream.index()].take().unwrap_or_default();
        let mut outcomes = Vec::new();
        for r in &held {
            if st.topics.contains(&r.topic) {
                outcomes.push(st.queue.push_live(r));
            }
        }
        drop(st);
        self.readable.notify_one();
        outcomes
    }

    /// Queue a `metrics` frame if the client follows `topic`.
    pub fn deliver_metrics(&self, topic: &Topic, text: &Arc<str>) -> Pushed {
        let mut st = self.lock();
        if !st.topics.contains(topic) {
            return Pushed::Ignored;
        }
        let pushed = st.queue.push_metrics(text.clone());
        drop(st);
        if pushed == Pushed::Queued {
            self.readable.notify_one();
        }
        pushed
    }

    pub fn close(&self, code: u16, reason: String) {
        self.lock().queue.close(code, reason);
        self.readable.notify_one();
        self.room.notify_waiters();
    }
}

/// One connected client. Dropping it unsubscribes everything and stops its replays.
pub struct Client {
    hub: Arc<HubInner>,
    id: u64,
    shared: Arc<ClientShared>,
}

impl Client {
    pub(crate) fn new(hub: Arc<HubInner>, id: u64) -> Self {
        let shared = Arc::new(ClientShared {
            state: Mutex::new(ClientState {
                topics: BTreeSet::new(),
                replaying: [None, None],
                queue: ClientQueue::new(hub.limits.queue),
            }),
            readable: Notify::new(),
            room: Notify::new(),
            tasks: hub.cancel.child_token(),
        });
        Self { hub, id, shared }
    }

    /// Subscribe to `topics` (those already held are ignored). Without `since`, frames start
    /// with the next message the hub delivers. With `since`, every message of these topics
    /// after it is replayed first, then live frames follow with no gap and no duplicate.
    ///
    /// `since` for a stream is only accepted with the first topics of that stream on the
    /// connection (a second resume point would break position order); it must lie between
    /// the stream's first sequence minus one and its head. Topics added without `since` while
    /// a replay of their stream runs go live when it ends.
    ///
    /// Returns once registered, with the position per stream after which the new topics'
    /// frames follow (`since`, or the hub's position at registration; for a stream not
    /// involved, the hub's position). A handler serving a snapshot can read its read model at
    /// a position at least this one (`minPosition`) and stamp it: deltas at or below the
    /// snapshot's position are then already in it. The replay runs in the background, paced by
    /// [`Client::next`].
    pub async fn subscribe(
        &self,
        topics: &[Topic],
        since: Option<Since>,
    ) -> Result<Positions, RelayError> {
        let mut new: Vec<Topic> = Vec::new();
        {
            let st = self.shared.lock();
            for t in topics {
                if !st.topics.contains(t) && !new.contains(t) {
                    new.push(t.clone());
                }
            }
            if st.topics.len() + new.len() > self.hub.limits.max_topics {
                return Err(RelayError::TooManyTopics {
                    max: self.hub.limits.max_topics,
                });
            }
        }
        if new.is_empty() {
            return Ok(self.hub.with_index(|_, positions| positions));
        }
        let streams: Vec<StreamKind> = StreamKind::ALL
            .into_iter()
            .filter(|s| new.iter().any(|t| t.stream() == *s))
            .collect();
        let mut resume: Vec<(StreamKind, u64)> = Vec::new();
        if let Some(since) = since {
            for &s in &streams {
                if let Some(n) = since.for_stream(s, &streams)? {
                    resume.push((s, n));
                }
            }
        }
        for &s in &streams {
            self.hub.wait_ready(s).await?;
        }
        for &(s, n) in &resume {
            self.check_resumable(s)?;
            let (first, last) = self.hub.bounds(s).await?;
            let name = s.stream_name();
            if n > last {
                return Err(RelayError::Since(format!(
                    "since {n} is beyond the head of {name} ({last})"
                )));
            }
            if n < first.saturating_sub(1) {
                return Err(RelayError::Since(format!(
                    "since {n} is before the first sequence of {name} ({first}): those \
                     messages are gone; subscribe without since and reload"
                )));
            }
        }
        // Register under the index lock: the hub is between two messages, so every message
        // after `positions` reaches this client live (held while its stream replays).
        let from = self.hub.with_index(|index, mut positions| {
            let mut st = self.shared.lock();
            if st.topics.len() + new.len() > self.hub.limits.max_topics {
                return Err(RelayError::TooManyTopics {
                    max: self.hub.limits.max_topics,
                });
            }
            for &(s, _) in &resume {
                if has_stream(&st, s) {
                    return Err(resumable_error(s));
                }
            }
            for &s in &streams {
                match resume.iter().find(|(r, _)| *r == s) {
                    Some(&(_, n)) => {
                        st.queue.restart(s, n);
                        st.replaying[s.index()] = Some(Vec::new());
                        match s {
                            StreamKind::Events => positions.events = n,
                            StreamKind::Telemetry => positions.telemetry = n,
                        }
                    }
                    None => st.queue.start(s, positions.get(s)),
                }
            }
            for t in &new {
                st.topics.insert(t.clone());
                index
                    .entry(t.clone())
                    .or_default()
                    .insert(self.id, self.shared.clone());
            }
            Ok(positions)
        })?;
        for (s, n) in resume {
            let of_stream: Vec<Topic> = new.iter().filter(|t| t.stream() == s).cloned().collect();
            tokio::spawn(crate::replay::run(
                self.hub.clone(),
                self.shared.clone(),
                s,
                filter_subjects(&of_stream),
                n,
            ));
        }
        Ok(from)
    }

    fn check_resumable(&self, stream: StreamKind) -> Result<(), RelayError> {
        if has_stream(&self.shared.lock(), stream) {
            return Err(resumable_error(stream));
        }
        Ok(())
    }

    /// Unsubscribe from `topics` (unknown ones are ignored).
    pub fn unsubscribe(&self, topics: &[Topic]) {
        self.hub.remove(self.id, topics);
        let mut st = self.shared.lock();
        for t in topics {
            st.topics.remove(t);
            st.queue.forget(t);
        }
    }

    /// The topics held now.
    pub fn topics(&self) -> Vec<Topic> {
        self.shared.lock().topics.iter().cloned().collect()
    }

    /// The last positions written out per stream (or where the stream started for this client;
    /// 0 for a stream never subscribed).
    pub fn delivered(&self) -> Positions {
        let st = self.shared.lock();
        Positions {
            events: st.queue.delivered(StreamKind::Events).unwrap_or(0),
            telemetry: st.queue.delivered(StreamKind::Telemetry).unwrap_or(0),
        }
    }

    /// The next frame or close to write. Cancel-safe (use it in `select!`). `None` after a
    /// close has been returned.
    pub async fn next(&self) -> Option<Outgoing> {
        self.next_batch(1).await.pop()
    }

    /// What is ready to write, at least one and at most `max` items in queue order (a close
    /// ends a batch): a client that fell behind catches up with one write per batch instead of
    /// one per frame. Waits while nothing is ready; cancel-safe (use it in `select!`). Empty
    /// after a close has been returned.
    pub async fn next_batch(&self, max: usize) -> Vec<Outgoing> {
        loop {
            let notified = self.shared.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.shared.lock();
                let mut batch = Vec::new();
                while batch.len() < max.max(1) {
                    let Some(out) = st.queue.pop() else { break };
                    let closes = matches!(out, Outgoing::Close { .. });
                    batch.push(out);
                    if closes {
                        break;
                    }
                }
                if !batch.is_empty() {
                    drop(st);
                    self.shared.room.notify_waiters();
                    return batch;
                }
                if st.queue.finished() {
                    return batch;
                }
                if self.hub.cancel.is_cancelled() {
                    st.queue
                        .close(CLOSE_GOING_AWAY, "server shutting down".into());
                    continue;
                }
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = self.hub.cancel.cancelled() => {}
            }
        }
    }
}

fn has_stream(st: &ClientState, stream: StreamKind) -> bool {
    st.replaying[stream.index()].is_some() || st.topics.iter().any(|t| t.stream() == stream)
}

fn resumable_error(stream: StreamKind) -> RelayError {
    RelayError::Since(format!(
        "since for {} is only accepted with the first {} topics of a connection",
        stream.as_str(),
        stream.as_str()
    ))
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.tasks.cancel();
        let topics: Vec<Topic> = self.shared.lock().topics.iter().cloned().collect();
        self.hub.remove(self.id, &topics);
        self.hub.client_gone();
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
