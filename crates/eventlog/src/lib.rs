//! The event log on JetStream: the stored-event schema, the MessagePack commit codec,
//! append with optimistic concurrency, aggregate history loading, stream provisioning, and the
//! dead-letter publisher every consumer uses.
//!
//! Architecture Invariant: one command commit is one NATS message on
//! `mc.events.<aggregate>.<id>`; its JetStream stream sequence is the global position.
//! Architecture Invariant: what is stored is the schema in [`schema`] (stable type names,
//! schema versions, explicit payload structs), never a derived serde shape of a domain enum.

pub mod connect;
pub mod dlq;
pub mod envelope;
pub mod log;
pub mod schema;
pub mod streams;

pub use envelope::{Commit, CommitMeta, RecordedCommit, StoredEvent};
pub use log::{AppendError, Appended, EventLog, LogError};
pub use schema::{EventSchema, SchemaError};

/// Subject prefix of the event log.
pub const EVENTS_PREFIX: &str = "mc.events";

/// The subject of one aggregate instance.
pub fn aggregate_subject(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{EVENTS_PREFIX}.{aggregate_type}.{aggregate_id}")
}
