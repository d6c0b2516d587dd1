//! The envelope: one [`Commit`] (a command's events) per NATS message, MessagePack with
//! named fields.

use crate::schema::{EventSchema, SchemaError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

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

    pub fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
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

    #[test]
    fn garbage_does_not_decode() {
        assert!(Commit::decode(b"\xc1garbage").is_err());
    }
}
