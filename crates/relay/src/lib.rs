//! The live relay core, without any HTTP: topics, routing of log messages to protocol frames,
//! one JetStream consumer per stream per process fanning out to bounded per-client queues,
//! telemetry coalescing under backpressure, and exact resume with `since`.
//!
//! The WebSocket and SSE handlers (in the API crate) are thin glue: parse client ops, call
//! [`Client::subscribe`] / [`Client::unsubscribe`], and write what [`Client::next`] yields.
//!
//! Architecture Invariant: the hub never blocks on a client. Fan-out only takes a client's
//! queue lock and pushes (or coalesces, or closes it); a slow client cannot slow the hub,
//! other clients, ingest or projectors.
//! Architecture Invariant: a client receives every event of its topics exactly once, in
//! stream order, or is closed with code 4008 telling it where to resume; events are never
//! dropped silently. Telemetry may be coalesced (latest value per parameter), announced by a
//! `lagged` frame.
//! Architecture Invariant: only the aggregates listed in [`route`] are relayed; `token`
//! events (hashes of secrets) never leave the log through the relay.

mod client;
mod coalesce;
mod hub;
mod queue;
mod replay;
pub mod route;
pub mod topic;

pub use client::Client;
pub use hub::{Hub, Stats};
pub use topic::{Topic, TopicError};

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Close code for a client too far behind on events: resume with `since`.
pub const CLOSE_TOO_FAR_BEHIND: u16 = 4008;
/// Close code when the server shuts down (WebSocket "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code when a replay could not be read from JetStream (WebSocket "try again later").
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// The two streams whose sequences are positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    /// `MC_EVENTS`: every event topic.
    Events,
    /// `MC_TELEMETRY`: `telemetry:<spacecraftId>` topics.
    Telemetry,
}

impl StreamKind {
    pub const ALL: [StreamKind; 2] = [StreamKind::Events, StreamKind::Telemetry];

    /// The JetStream stream name.
    pub fn stream_name(self) -> &'static str {
        match self {
            Self::Events => mc_eventlog::streams::EVENTS,
            Self::Telemetry => mc_eventlog::streams::TELEMETRY,
        }
    }

    /// `events` or `telemetry`, as in `since`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Telemetry => "telemetry",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Events => 0,
            Self::Telemetry => 1,
        }
    }
}

/// One position per stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    pub events: u64,
    pub telemetry: u64,
}

impl Positions {
    pub fn get(&self, stream: StreamKind) -> u64 {
        match stream {
            StreamKind::Events => self.events,
            StreamKind::Telemetry => self.telemetry,
        }
    }
}

/// Where a subscription resumes: the last position the client has, per stream. Every message
/// of the subscribed topics after it is replayed before live frames.
///
/// On the wire (`"since"` of a subscribe op): one number, which applies to the one stream the
/// subscribed topics read (an error if they read both), or `{"events":n,"telemetry":m}`, either
/// key optional (a stream without a key goes live without replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Since {
    One(u64),
    PerStream {
        #[serde(default)]
        events: Option<u64>,
        #[serde(default)]
        telemetry: Option<u64>,
    },
}

impl Since {
    /// The position to resume `stream` from, given the streams the subscribed topics read.
    pub fn for_stream(
        &self,
        stream: StreamKind,
        streams_in_use: &[StreamKind],
    ) -> Result<Option<u64>, RelayError> {
        match *self {
            Self::One(n) => {
                if streams_in_use.len() > 1 {
                    return Err(RelayError::Since(
                        "since as one number needs topics of one stream; these topics read \
                         events and telemetry: use {\"events\":n,\"telemetry\":m}"
                            .into(),
                    ));
                }
                Ok(Some(n))
            }
            Self::PerStream { events, telemetry } => Ok(match stream {
                StreamKind::Events => events,
                StreamKind::Telemetry => telemetry,
            }),
        }
    }
}

/// Per-connection limits. Defaults: `queue` 1024 frames, `max_topics` 100,
/// `replay_buffer` 8192 frames, `ready_timeout` 10 s.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Frames queued per client before telemetry is coalesced; a client with this many event
    /// frames queued and another arriving is closed with [`CLOSE_TOO_FAR_BEHIND`]. Event and
    /// telemetry frames share the queue, but telemetry never displaces events, so the queue can
    /// hold up to twice this (a full queue of telemetry plus a full backlog of events).
    pub queue: usize,
    /// Topics one connection may hold at once.
    pub max_topics: usize,
    /// Live frames held per stream while a `since` replay catches up; more closes the client
    /// with [`CLOSE_TOO_FAR_BEHIND`].
    pub replay_buffer: usize,
    /// How long a subscribe waits for the hub's consumers to start.
    pub ready_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            queue: 1024,
            max_topics: 100,
            replay_buffer: 8192,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// One frame to write to a client: serialized JSON text, shared by every client it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The stream of the frame's position; `None` for a `lagged` or `metrics` frame.
    pub stream: Option<StreamKind>,
    /// The frame's `type`: `event`, `telemetry`, `lagged` or `metrics`.
    pub kind: &'static str,
    /// Stream sequence (0 for a `lagged` frame).
    pub position: u64,
    pub text: Arc<str>,
}

/// What [`Client::next`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Frame(Frame),
    /// Close the connection with this code and reason; nothing follows.
    Close {
        code: u16,
        reason: String,
    },
}

/// Why a subscribe was refused; messages are meant for an error frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("too many topics: at most {max} per connection")]
    TooManyTopics { max: usize },
    #[error("{0}")]
    Since(String),
    #[error("the relay is not ready yet: try again")]
    NotReady,
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parses_both_wire_forms() {
        let one: Since = serde_json::from_str("42").unwrap();
        assert_eq!(one, Since::One(42));
        let both: Since = serde_json::from_str(r#"{"events":1,"telemetry":2}"#).unwrap();
        assert_eq!(
            both,
            Since::PerStream {
                events: Some(1),
                telemetry: Some(2)
            }
        );
        let partial: Since = serde_json::from_str(r#"{"telemetry":2}"#).unwrap();
        assert_eq!(
            partial.for_stream(StreamKind::Events, &StreamKind::ALL),
            Ok(None)
        );
        assert!(serde_json::from_str::<Since>(r#"{"event":1}"#).is_err());
        assert!(serde_json::from_str::<Since>("-1").is_err());
        assert!(serde_json::from_str::<Since>(r#""5""#).is_err());
    }

    #[test]
    fn one_number_needs_one_stream() {
        let one = Since::One(3);
        assert_eq!(
            one.for_stream(StreamKind::Telemetry, &[StreamKind::Telemetry]),
            Ok(Some(3))
        );
        let err = one
            .for_stream(StreamKind::Events, &StreamKind::ALL)
            .unwrap_err();
        assert!(
            err.to_string().contains("{\"events\":n,\"telemetry\":m}"),
            "{err}"
        );
    }
}
