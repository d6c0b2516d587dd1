//! The envelope: one [`Commit`] (a command's events) per NATS message, MessagePack with
//! named fields.

use crate::schema::{EventSchema, SchemaError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Nesting of arrays and maps a stored commit may have: the commit, its events, an event and
/// its payload take four, client metadata (at most 16 levels, checked at the boundary) fits
/// well inside. The decoder recurses per level, so this bounds its stack use whatever a
/// message in the stream holds.
pub const COMMIT_MAX_DEPTH: usize = 64;

/// Who and why: the metadata shared by every event of a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitMeta {
    /// Idempotency key: `Nats-Msg-Id`, unique per commit in the archive.
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// `user:<name>`, `agent:<id>`, `system:<process>`.
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
}

/// One stored event: a stable type name, a schema version and a JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event_id: Uuid,
    /// Version of the aggregate after this event (1 for the first event).
    pub aggregate_version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub aggregate_type: String,
    pub aggregate_id: String,
    #[serde(flatten)]
    pub meta: CommitMeta,
    pub events: Vec<StoredEvent>,
}

/// A commit read back from the log, with its stream sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCommit {
    pub position: u64,
    pub commit: Commit,
}

impl Commit {
    /// Build a commit of `events`, the first of which takes version `base_version + 1`.
    pub fn new<E: EventSchema>(
        aggregate_type: &str,
        aggregate_id: &str,
        base_version: u64,
        meta: CommitMeta,
        events: &[E],
    ) -> Self {
        let events = events
            .iter()
            .zip(base_version + 1..)
            .map(|(event, aggregate_version)| {
                let (event_type, schema_version, payload) = event.to_stored();
                StoredEvent {
                    event_id: Uuid::now_v7(),
                    aggregate_version,
                    event_type: event_type.to_owned(),
                    schema_version,
                    payload,
                }
            })
            .collect();
        Self {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            meta,
            events,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain structs, strings, uuids and JSON values cannot fail.
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }

    /// Decode a commit read from the stream; nesting deeper than [`COMMIT_MAX_DEPTH`] is an
    /// error (`DepthLimitExceeded`), not a stack overflow.
    pub fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        // rmp counts down and fails on reaching zero: N allows N - 1 levels.
        de.set_max_depth(COMMIT_MAX_DEPTH + 1);
        Self::deserialize(&mut de)
    }

    /// Decode the events into a domain enum, upcasting old schema versions.
    pub fn domain_events<E: EventSchema>(&self) -> Result<Vec<E>, SchemaError> {
        self.events
            .iter()
            .map(|e| E::from_stored(&e.event_type, e.schema_version, e.payload.clone()))
            .collect()
    }

    pub fn last_version(&self) -> Option<u64> {
        self.events.last().map(|e| e.aggregate_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commit_round_trips_through_messagepack() {
        let commit = Commit {
            aggregate_type: "agent".into(),
            aggregate_id: "a1".into(),
            meta: CommitMeta {
                command_id: Uuid::now_v7(),
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "user:test".into(),
                occurred_at: Utc::now(),
            },
            events: vec![StoredEvent {
                event_id: Uuid::now_v7(),
                aggregate_version: 1,
                event_type: "agent.registered".into(),
                schema_version: 1,
                payload: json!({"name": "probe", "n": 1.5, "tags": ["a"], "nested": {"x": null}}),
            }],
        };
        let bytes = commit.encode();
        assert_eq!(Commit::decode(&bytes).unwrap(), commit);
    }

    fn commit(payload: Value) -> Commit {
        Commit {
            aggregate_type: "agent".into(),
            aggregate_id: "a1".into(),
            meta: CommitMeta {
                command_id: Uuid::now_v7(),
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                actor: "user:test".into(),
                occurred_at: Utc::now(),
            },
            events: vec![StoredEvent {
                event_id: Uuid::now_v7(),
                aggregate_version: 1,
                event_type: "agent.registered".into(),
                schema_version: 1,
                payload,
            }],
        }
    }

    /// Run `f` on a thread with a quarter of a tokio worker's stack.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn metadata_as_deep_as_the_boundary_allows_decodes() {
        let mut metadata = json!("leaf");
        for _ in 0..16 {
            metadata = json!({ "k": metadata });
        }
        let c = commit(json!({"name": "probe", "metadata": metadata}));
        let bytes = c.encode();
        assert_eq!(on_small_stack(move || Commit::decode(&bytes).unwrap()), c);
    }

    #[test]
    fn nesting_up_to_the_limit_decodes_on_a_small_stack() {
        // The commit, its events and the event take three levels; the payload the rest.
        let nested = |levels: usize| {
            let mut v = json!(1);
            for _ in 0..levels {
                v = json!([v]);
            }
            v
        };
        let c = commit(nested(COMMIT_MAX_DEPTH - 3));
        let bytes = c.encode();
        assert_eq!(on_small_stack(move || Commit::decode(&bytes).unwrap()), c);
        let deeper = commit(nested(COMMIT_MAX_DEPTH - 2)).encode();
        assert!(Commit::decode(&deeper).is_err());
    }

    #[test]
    fn a_nesting_bomb_in_the_stream_is_an_error_not_a_stack_overflow() {
        // Splice 1,000 levels of arrays where a placeholder string was encoded.
        let bytes = commit(json!("@@bomb@@")).encode();
        let at = bytes.windows(8).position(|w| w == b"@@bomb@@").unwrap() - 1;
        let mut bomb = bytes[..at].to_vec();
        bomb.extend(std::iter::repeat_n(0x91u8, 1_000));
        bomb.push(0xc0);
        bomb.extend_from_slice(&bytes[at + 9..]);
        let err = on_small_stack(move || Commit::decode(&bomb).unwrap_err());
        assert!(
            matches!(err, rmp_serde::decode::Error::DepthLimitExceeded),
            "{err}"
        );
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(Commit::decode(b"\xc1garbage").is_err());
    }
}
