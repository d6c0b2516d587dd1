//! One client's bounded outgoing queue, without IO: ordering and de-duplication per stream,
//! telemetry coalescing when full, the `lagged` frame once it drains, and the close of a client
//! whose event backlog overflows.

use crate::coalesce::Coalesced;
use crate::route::Routed;
use crate::topic::Topic;
use crate::{Frame, Outgoing, StreamKind, CLOSE_TOO_FAR_BEHIND};
use std::collections::VecDeque;
use std::sync::Arc;

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Merged into the pending telemetry of its topic; `dropped` when it replaced an earlier
    /// frame that will not be delivered on its own.
    Coalesced {
        dropped: bool,
    },
    /// At or below the position already accepted on its stream.
    Duplicate,
    /// The event backlog overflowed: the client is now closed.
    Overflowed,
    /// The client was already closed.
    Ignored,
}

#[derive(Debug)]
pub(crate) struct ClientQueue {
    capacity: usize,
    items: VecDeque<Frame>,
    events_queued: usize,
    /// Pending coalesced telemetry, one per topic; while any is pending every telemetry frame
    /// joins it, so telemetry positions stay in order.
    coalesced: Vec<Coalesced>,
    /// Telemetry frames not delivered on their own since the last `lagged` frame.
    dropped: u64,
    close: Option<(u16, String)>,
    close_taken: bool,
    /// Highest position accepted (queued or coalesced) per stream.
    accepted: [Option<u64>; 2],
    /// Highest position handed to the reader per stream (or where the stream started).
    delivered: [Option<u64>; 2],
}

impl ClientQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            items: VecDeque::new(),
            events_queued: 0,
            coalesced: Vec::new(),
            dropped: 0,
            close: None,
            close_taken: false,
            accepted: [None; 2],
            delivered: [None; 2],
        }
    }

    pub fn is_closed(&self) -> bool {
        self.close.is_some()
    }

    /// Room for a replayed frame (replay waits instead of overflowing).
    pub fn has_room(&self) -> bool {
        self.items.len() < self.capacity
    }

    /// Note where `stream` starts for this client (first topic on it, live from `position`).
    pub fn start(&mut self, stream: StreamKind, position: u64) {
        let i = stream.index();
        if self.delivered[i].is_none() {
            self.delivered[i] = Some(position);
        }
    }

    /// Restart `stream` at `since` (a subscribe with `since` on a stream without topics):
    /// frames of that stream still queued or pending are dropped.
    pub fn restart(&mut self, stream: StreamKind, since: u64) {
        let i = stream.index();
        self.accepted[i] = Some(since);
        self.delivered[i] = Some(since);
        self.items.retain(|f| f.stream != Some(stream));
        self.events_queued = self.count_events();
        if stream == StreamKind::Telemetry {
            self.coalesced.clear();
        }
    }

    fn count_events(&self) -> usize {
        self.items
            .iter()
            .filter(|f| f.stream == Some(StreamKind::Events))
            .count()
    }

    /// Forget pending coalesced telemetry of an unsubscribed topic.
    pub fn forget(&mut self, topic: &Topic) {
        self.coalesced.retain(|c| &c.topic != topic);
    }

    /// `since=…` telling a closed client where to resume.
    pub fn resume_hint(&self) -> String {
        match self.delivered {
            [Some(e), Some(t)] => format!("since={{\"events\":{e},\"telemetry\":{t}}}"),
            [Some(e), None] => format!("since={e}"),
            [None, Some(t)] => format!("since={{\"telemetry\":{t}}}"),
            [None, None] => "since=0".into(),
        }
    }

    pub fn close(&mut self, code: u16, reason: String) {
        if self.close.is_none() {
            self.close = Some((code, reason));
            self.items.clear();
            self.coalesced.clear();
            self.events_queued = 0;
        }
    }

    fn close_too_far_behind(&mut self) {
        let reason = format!("too far behind: resume with {}", self.resume_hint());
        self.close(CLOSE_TOO_FAR_BEHIND, reason);
    }

    /// Close because a replay's live buffer overflowed.
    pub fn overflow(&mut self) {
        self.close_too_far_behind();
    }

    /// Accept `position` on `stream` if it is newer than anything accepted.
    fn accept(&mut self, stream: StreamKind, position: u64) -> bool {
        let i = stream.index();
        if self.accepted[i].is_some_and(|a| position <= a) {
            return false;
        }
        self.accepted[i] = Some(position);
        true
    }

    fn enqueue(&mut self, r: &Routed) {
        if r.stream == StreamKind::Events {
            self.events_queued += 1;
        }
        self.items.push_back(Frame {
            kind: match r.stream {
                StreamKind::Events => "event",
                StreamKind::Telemetry => "telemetry",
            },
            stream: Some(r.stream),
            position: r.position,
            text: r.text.clone(),
        });
    }

    /// A live frame from the hub: never blocks.
    pub fn push_live(&mut self, r: &Routed) -> Pushed {
        if self.is_closed() {
            return Pushed::Ignored;
        }
        match r.stream {
            StreamKind::Events => {
                if self.accepted[0].is_some_and(|a| r.position <= a) {
                    return Pushed::Duplicate;
                }
                if self.events_queued >= self.capacity {
                    self.close_too_far_behind();
                    return Pushed::Overflowed;
                }
                self.accept(r.stream, r.position);
                self.enqueue(r);
                Pushed::Queued
            }
            StreamKind::Telemetry => {
                if !self.accept(r.stream, r.position) {
                    return Pushed::Duplicate;
                }
                if self.coalesced.is_empty() && self.items.len() < self.capacity {
                    self.enqueue(r);
                    return Pushed::Queued;
                }
                let data = r.data.as_deref().unwrap_or(&serde_json::Value::Null);
                let dropped = match self.coalesced.iter_mut().find(|c| c.topic == r.topic) {
                    Some(c) => {
                        c.merge(r.position, data);
                        true
                    }
                    None => {
                        let mut c = Coalesced::new(r.topic.clone());
                        c.merge(r.position, data);
                        self.coalesced.push(c);
                        false
                    }
                };
                if dropped {
                    self.dropped += 1;
                }
                Pushed::Coalesced { dropped }
            }
        }
    }

    /// A `metrics` frame (a snapshot with no stream position): queued if there is room, else
    /// dropped, as the next snapshot supersedes it.
    pub fn push_metrics(&mut self, text: Arc<str>) -> Pushed {
        if self.is_closed() {
            return Pushed::Ignored;
        }
        if self.items.len() >= self.capacity {
            return Pushed::Coalesced { dropped: true };
        }
        self.items.push_back(Frame {
            kind: "metrics",
            stream: None,
            position: 0,
            text,
        });
        Pushed::Queued
    }

    /// A replayed frame: queued whatever the room (the replay waits for [`Self::has_room`]).
    pub fn push_replay(&mut self, r: &Routed) -> Pushed {
        if self.is_closed() {
            return Pushed::Ignored;
        }
        if !self.accept(r.stream, r.position) {
            return Pushed::Duplicate;
        }
        self.enqueue(r);
        Pushed::Queued
    }

    /// Move pending coalesced telemetry to the back of the queue, after a `lagged` frame.
    fn flush(&mut self) {
        if self.dropped > 0 {
            self.items.push_back(Frame {
                kind: "lagged",
                stream: None,
                position: 0,
                text: format!("{{\"type\":\"lagged\",\"dropped\":{}}}", self.dropped).into(),
            });
            self.dropped = 0;
        }
        let mut pending = std::mem::take(&mut self.coalesced);
        pending.sort_by_key(|c| c.position);
        self.items.extend(pending.iter().map(Coalesced::frame));
    }

    /// The next thing to send, if any.
    pub fn pop(&mut self) -> Option<Outgoing> {
        if let Some((code, reason)) = &self.close {
            if self.close_taken {
                return None;
            }
            self.close_taken = true;
            return Some(Outgoing::Close {
                code: *code,
                reason: reason.clone(),
            });
        }
        // Pending telemetry goes out once the queue has drained to half.
        if !self.coalesced.is_empty() && self.items.len() <= self.capacity / 2 {
            self.flush();
        }
        let frame = self.items.pop_front()?;
        if let Some(stream) = frame.stream {
            if stream == StreamKind::Events {
                self.events_queued -= 1;
            }
            self.delivered[stream.index()] = Some(frame.position);
        }
        Some(Outgoing::Frame(frame))
    }

    /// Highest position handed to the reader on `stream` (or where it started).
    pub fn delivered(&self, stream: StreamKind) -> Option<u64> {
        self.delivered[stream.index()]
    }

    /// True once the close has been handed out: nothing more will come.
    pub fn finished(&self) -> bool {
        self.close_taken
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
