//! Stored schema of the Agent events.

use super::{payload, to_value, EventSchema, SchemaError, Upcaster};
use mc_domain::agent::{AgentEvent, AgentStatus};
use mc_domain::ids::AgentId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub const REGISTERED: &str = "agent.registered";
pub const UPDATED: &str = "agent.updated";
pub const STATUS_CHANGED: &str = "agent.status_changed";
pub const REMOVED: &str = "agent.removed";

pub(super) const VERSIONS: &[(&str, u32)] = &[
    (REGISTERED, 1),
    (UPDATED, 1),
    (STATUS_CHANGED, 1),
    (REMOVED, 1),
];
pub(super) const UPCASTERS: &[Upcaster] = &[];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisteredV1 {
    id: Uuid,
    name: String,
    description: String,
    capabilities: Vec<String>,
    metadata: Map<String, Value>,
    status: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdatedV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    capabilities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusChangedV1 {
    from: String,
    to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemovedV1 {
    name: String,
}

fn status(event_type: &str, s: &str) -> Result<AgentStatus, SchemaError> {
    s.parse().map_err(|reason| SchemaError::BadPayload {
        event_type: event_type.to_owned(),
        reason,
    })
}

impl EventSchema for AgentEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        match self {
            Self::Registered {
                id,
                name,
                description,
                capabilities,
                metadata,
                status,
            } => (
                REGISTERED,
                1,
                to_value(&RegisteredV1 {
                    id: id.as_uuid(),
                    name: name.clone(),
                    description: description.clone(),
                    capabilities: capabilities.clone(),
                    metadata: metadata.clone(),
                    status: status.as_str().to_owned(),
                }),
            ),
            Self::Updated {
                name,
                description,
                capabilities,
                metadata,
            } => (
                UPDATED,
                1,
                to_value(&UpdatedV1 {
                    name: name.clone(),
                    description: description.clone(),
                    capabilities: capabilities.clone(),
                    metadata: metadata.clone(),
                }),
            ),
            Self::StatusChanged { from, to, reason } => (
                STATUS_CHANGED,
                1,
                to_value(&StatusChangedV1 {
                    from: from.as_str().to_owned(),
                    to: to.as_str().to_owned(),
                    reason: reason.clone(),
                }),
            ),
            Self::Removed { name } => (REMOVED, 1, to_value(&RemovedV1 { name: name.clone() })),
        }
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        Ok(match event_type {
            REGISTERED => {
                let p: RegisteredV1 = payload(event_type, value)?;
                Self::Registered {
                    id: AgentId::from_uuid(p.id),
                    name: p.name,
                    description: p.description,
                    capabilities: p.capabilities,
                    metadata: p.metadata,
                    status: status(event_type, &p.status)?,
                }
            }
            UPDATED => {
                let p: UpdatedV1 = payload(event_type, value)?;
                Self::Updated {
                    name: p.name,
                    description: p.description,
                    capabilities: p.capabilities,
                    metadata: p.metadata,
                }
            }
            STATUS_CHANGED => {
                let p: StatusChangedV1 = payload(event_type, value)?;
                Self::StatusChanged {
                    from: status(event_type, &p.from)?,
                    to: status(event_type, &p.to)?,
                    reason: p.reason,
                }
            }
            REMOVED => {
                let p: RemovedV1 = payload(event_type, value)?;
                Self::Removed { name: p.name }
            }
            other => {
                return Err(SchemaError::UnknownType {
                    event_type: other.to_owned(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Snapshot of the stored form: renaming a variant or field must not change these.
    #[test]
    fn stored_form_is_stable() {
        let id = AgentId::from_uuid(Uuid::from_u128(1));
        let cases = [
            (
                AgentEvent::Registered {
                    id,
                    name: "probe".into(),
                    description: "d".into(),
                    capabilities: vec!["scan".into()],
                    metadata: Map::new(),
                    status: AgentStatus::Idle,
                },
                json!({"type": "agent.registered", "v": 1, "payload": {
                    "id": "00000000-0000-0000-0000-000000000001", "name": "probe",
                    "description": "d", "capabilities": ["scan"], "metadata": {}, "status": "IDLE"}}),
            ),
            (
                AgentEvent::Updated {
                    name: Some("n".into()),
                    description: None,
                    capabilities: None,
                    metadata: None,
                },
                json!({"type": "agent.updated", "v": 1, "payload": {"name": "n"}}),
            ),
            (
                AgentEvent::StatusChanged {
                    from: AgentStatus::Idle,
                    to: AgentStatus::Busy,
                    reason: None,
                },
                json!({"type": "agent.status_changed", "v": 1, "payload": {"from": "IDLE", "to": "BUSY"}}),
            ),
            (
                AgentEvent::Removed { name: "n".into() },
                json!({"type": "agent.removed", "v": 1, "payload": {"name": "n"}}),
            ),
        ];
        for (event, expected) in cases {
            let (t, v, p) = event.to_stored();
            assert_eq!(json!({"type": t, "v": v, "payload": p}), expected);
            assert_eq!(AgentEvent::from_stored(t, v, p).unwrap(), event);
        }
    }

    #[test]
    fn unknown_and_future_types_are_errors() {
        assert!(matches!(
            AgentEvent::from_stored("agent.exploded", 1, json!({})),
            Err(SchemaError::UnknownType { .. })
        ));
        assert!(matches!(
            AgentEvent::from_stored(REMOVED, 9, json!({"name": "x"})),
            Err(SchemaError::FutureVersion { .. })
        ));
        assert!(matches!(
            AgentEvent::from_stored(REMOVED, 1, json!({"nom": "x"})),
            Err(SchemaError::BadPayload { .. })
        ));
    }
}
