//! The stored-event schema: each domain event maps explicitly to a stable type name, a
//! schema version and a payload struct. Upcasters lift old payload versions on read.
//!
//! Renaming a Rust variant or field changes nothing here; changing a payload struct means a
//! new schema version plus an upcaster from the previous one.

mod agent;
mod alarm;
mod backup;
mod comment;
mod fleet;
mod mission;
mod pricing;
mod spacecraft;
mod task;
mod task_def;
mod token;

pub use spacecraft::limits_from_stored;

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

/// The schema a build of this code knows: current versions and upcasters. Tests build other
/// registries to play the code of a later version.
pub struct Registry<'a> {
    pub versions: &'a [&'a [(&'a str, u32)]],
    pub upcasters: &'a [&'a [Upcaster]],
}

impl Registry<'static> {
    /// The schema of this build.
    pub const CURRENT: Self = Self {
        versions: &[
            agent::VERSIONS,
            mission::VERSIONS,
            comment::VERSIONS,
            spacecraft::VERSIONS,
            alarm::VERSIONS,
            token::VERSIONS,
            backup::VERSIONS,
            task::VERSIONS,
            pricing::VERSIONS,
            task_def::VERSIONS,
            fleet::VERSIONS,
        ],
        upcasters: &[
            agent::UPCASTERS,
            mission::UPCASTERS,
            comment::UPCASTERS,
            spacecraft::UPCASTERS,
            alarm::UPCASTERS,
            token::UPCASTERS,
            backup::UPCASTERS,
            task::UPCASTERS,
            pricing::UPCASTERS,
            task_def::UPCASTERS,
            fleet::UPCASTERS,
        ],
    };
}

impl Registry<'_> {
    /// Current schema version of a stored type; a type absent here is unknown.
    pub fn current_version(&self, event_type: &str) -> Option<u32> {
        self.versions
            .iter()
            .flat_map(|v| v.iter())
            .find(|(t, _)| *t == event_type)
            .map(|(_, v)| *v)
    }

    /// Bring a payload to the current version of its type, one upcaster at a time.
    pub fn upcast(
        &self,
        event_type: &str,
        mut version: u32,
        mut payload: Value,
    ) -> Result<Value, SchemaError> {
        let current = self
            .current_version(event_type)
            .ok_or_else(|| SchemaError::UnknownType {
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
            let up = self
                .upcasters
                .iter()
                .flat_map(|u| u.iter())
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
}

/// Current schema version of a stored type in this build.
pub fn current_version(event_type: &str) -> Option<u32> {
    Registry::CURRENT.current_version(event_type)
}

/// Bring a payload to the current version of its type in this build.
pub fn upcast(event_type: &str, version: u32, payload: Value) -> Result<Value, SchemaError> {
    Registry::CURRENT.upcast(event_type, version, payload)
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

/// Test helper: `event` is stored as `expected` (`{"type", "v", "payload"}`) at this build's
/// current version, and reads back as itself.
#[cfg(test)]
pub(crate) fn assert_round_trip<E: EventSchema + PartialEq + std::fmt::Debug>(
    event: E,
    expected: Value,
) {
    let (t, v, p) = event.to_stored();
    assert_eq!(
        serde_json::json!({"type": t, "v": v, "payload": p}),
        expected
    );
    assert_eq!(current_version(t), Some(v));
    assert_eq!(E::from_stored(t, v, p).unwrap(), event);
}

#[cfg(test)]
mod documented {
    /// The contracts document lists every stored event type at its current version.
    #[test]
    fn every_stored_type_is_in_docs_contracts_md() {
        let doc = include_str!("../../../../docs/contracts.md");
        let table: Vec<&str> = doc
            .lines()
            .filter(|l| l.starts_with("| `") && l.contains(" | v"))
            .collect();
        for (event_type, version) in super::Registry::CURRENT.versions.iter().copied().flatten() {
            let listed = table.iter().any(|l| {
                l.contains(&format!("`{event_type}`")) && l.ends_with(&format!("| v{version} |"))
            });
            assert!(
                listed,
                "{event_type} v{version} is not in docs/contracts.md"
            );
        }
    }
}

#[cfg(test)]
mod evolution_tests {
    //! Code at v2 reads events stored at v1: a later build where `agent.removed` gained a
    //! `reason` (v2) and an upcaster that fills it for v1 events.

    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    const V2_VERSIONS: &[(&str, u32)] = &[("agent.removed", 2)];

    fn v1_to_v2(mut payload: Value) -> Result<Value, String> {
        let map = payload.as_object_mut().ok_or("payload is not an object")?;
        map.insert("reason".into(), json!("unknown (recorded before v2)"));
        Ok(payload)
    }

    const V2_UPCASTERS: &[Upcaster] = &[Upcaster {
        event_type: "agent.removed",
        from_version: 1,
        lift: v1_to_v2,
    }];

    const V2: Registry<'static> = Registry {
        versions: &[V2_VERSIONS],
        upcasters: &[V2_UPCASTERS],
    };

    /// The v2 code's payload struct: `reason` is required.
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct RemovedV2 {
        name: String,
        reason: String,
    }

    #[test]
    fn events_stored_at_v1_are_read_by_code_at_v2() {
        // Exactly what this build stores today (v1).
        let (event_type, version, stored) = mc_domain::agent::AgentEvent::Removed {
            name: "probe".into(),
        }
        .to_stored();
        assert_eq!((event_type, version), ("agent.removed", 1));
        let read: RemovedV2 =
            payload(event_type, V2.upcast(event_type, version, stored).unwrap()).unwrap();
        assert_eq!(
            read,
            RemovedV2 {
                name: "probe".into(),
                reason: "unknown (recorded before v2)".into()
            }
        );

        // A v2 event passes through untouched; v1 without the upcaster is not readable as v2.
        let v2 = json!({"name": "probe", "reason": "decommissioned"});
        assert_eq!(V2.upcast(event_type, 2, v2.clone()).unwrap(), v2);
        let no_upcaster = Registry {
            versions: &[V2_VERSIONS],
            upcasters: &[],
        };
        assert!(matches!(
            no_upcaster.upcast(event_type, 1, json!({"name": "p"})),
            Err(SchemaError::BadPayload { .. })
        ));
        assert!(matches!(
            V2.upcast(event_type, 3, json!({})),
            Err(SchemaError::FutureVersion { .. })
        ));
    }
}
