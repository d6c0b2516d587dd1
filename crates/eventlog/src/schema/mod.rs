//! The stored-event schema: each domain event maps explicitly to a stable type name, a
//! schema version and a payload struct. Upcasters lift old payload versions on read.
//!
//! Renaming a Rust variant or field changes nothing here; changing a payload struct means a
//! new schema version plus an upcaster from the previous one.

mod agent;
mod comment;
mod mission;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Mapping between a domain event enum and its stored form.
pub trait EventSchema: Sized {
    /// `(type, schema_version, payload)` at the current schema version.
    fn to_stored(&self) -> (&'static str, u32, Value);
    /// Decode a payload already upcast to the current version of its type.
    fn from_current(event_type: &str, payload: Value) -> Result<Self, SchemaError>;

    /// Decode a stored event of any known version.
    fn from_stored(event_type: &str, version: u32, payload: Value) -> Result<Self, SchemaError> {
        let payload = upcast(event_type, version, payload)?;
        Self::from_current(event_type, payload)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("unknown event type {event_type}")]
    UnknownType { event_type: String },
    #[error("event {event_type} v{version} is newer than this code (v{current})")]
    FutureVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error("event {event_type} payload does not match its schema: {reason}")]
    BadPayload { event_type: String, reason: String },
}

/// Lifts a payload of `event_type` from `from_version` to `from_version + 1`.
pub struct Upcaster {
    pub event_type: &'static str,
    pub from_version: u32,
    pub lift: fn(Value) -> Result<Value, String>,
}

/// Current schema version of every stored type. A type absent here is unknown.
pub fn current_version(event_type: &str) -> Option<u32> {
    [agent::VERSIONS, mission::VERSIONS, comment::VERSIONS]
        .into_iter()
        .flatten()
        .find(|(t, _)| *t == event_type)
        .map(|(_, v)| *v)
}

/// All upcasters, in no particular order.
fn upcasters() -> impl Iterator<Item = &'static Upcaster> {
    [agent::UPCASTERS, mission::UPCASTERS, comment::UPCASTERS]
        .into_iter()
        .flatten()
}

/// Bring a payload to the current version of its type.
pub fn upcast(
    event_type: &str,
    mut version: u32,
    mut payload: Value,
) -> Result<Value, SchemaError> {
    let current = current_version(event_type).ok_or_else(|| SchemaError::UnknownType {
        event_type: event_type.to_owned(),
    })?;
    if version > current {
        return Err(SchemaError::FutureVersion {
            event_type: event_type.to_owned(),
            version,
            current,
        });
    }
    while version < current {
        let up = upcasters()
            .find(|u| u.event_type == event_type && u.from_version == version)
            .ok_or_else(|| SchemaError::BadPayload {
                event_type: event_type.to_owned(),
                reason: format!("no upcaster from v{version}"),
            })?;
        payload = (up.lift)(payload).map_err(|reason| SchemaError::BadPayload {
            event_type: event_type.to_owned(),
            reason,
        })?;
        version += 1;
    }
    Ok(payload)
}

/// Decode a payload struct, naming the type in the error.
pub(crate) fn payload<T: DeserializeOwned>(
    event_type: &str,
    payload: Value,
) -> Result<T, SchemaError> {
    serde_json::from_value(payload).map_err(|e| SchemaError::BadPayload {
        event_type: event_type.to_owned(),
        reason: e.to_string(),
    })
}

/// Encode a payload struct (plain data: cannot fail).
pub(crate) fn to_value<T: serde::Serialize>(payload: &T) -> Value {
    serde_json::to_value(payload).unwrap_or(Value::Null)
}
