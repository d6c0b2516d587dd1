//! Stored schema of the Mission events.

use super::{payload, to_value, EventSchema, SchemaError, Upcaster};
use mc_domain::ids::{AgentId, MissionId};
use mc_domain::mission::{MissionEvent, MissionStatus, Priority};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::str::FromStr;
use uuid::Uuid;

pub const CREATED: &str = "mission.created";
pub const UPDATED: &str = "mission.updated";
pub const STATUS_CHANGED: &str = "mission.status_changed";
pub const PROGRESS_UPDATED: &str = "mission.progress_updated";
pub const ASSIGNED: &str = "mission.assigned";
pub const UNASSIGNED: &str = "mission.unassigned";
pub const DELETED: &str = "mission.deleted";

pub(super) const VERSIONS: &[(&str, u32)] = &[
    (CREATED, 1),
    (UPDATED, 1),
    (STATUS_CHANGED, 1),
    (PROGRESS_UPDATED, 1),
    (ASSIGNED, 1),
    (UNASSIGNED, 1),
    (DELETED, 1),
];
pub(super) const UPCASTERS: &[Upcaster] = &[];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedV1 {
    id: Uuid,
    title: String,
    description: String,
    status: String,
    priority: String,
    progress: u8,
    metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent_id: Option<Uuid>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdatedV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<String>,
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
struct ProgressUpdatedV1 {
    from: u8,
    to: u8,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedV1 {
    agent_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<Uuid>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnassignedV1 {
    agent_id: Uuid,
}

#[derive(Serialize, Deserialize)]
struct DeletedV1 {}

/// Parse one of the domain's SCREAMING enum names, naming the type in the error.
fn named<T: FromStr<Err = String>>(event_type: &str, s: &str) -> Result<T, SchemaError> {
    s.parse().map_err(|reason| SchemaError::BadPayload {
        event_type: event_type.to_owned(),
        reason,
    })
}

impl EventSchema for MissionEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        match self {
            Self::Created {
                id,
                title,
                description,
                status,
                priority,
                progress,
                metadata,
                agent_id,
            } => (
                CREATED,
                1,
                to_value(&CreatedV1 {
                    id: id.as_uuid(),
                    title: title.clone(),
                    description: description.clone(),
                    status: status.as_str().to_owned(),
                    priority: priority.as_str().to_owned(),
                    progress: *progress,
                    metadata: metadata.clone(),
                    agent_id: agent_id.map(|a| a.as_uuid()),
                }),
            ),
            Self::Updated {
                title,
                description,
                priority,
                metadata,
            } => (
                UPDATED,
                1,
                to_value(&UpdatedV1 {
                    title: title.clone(),
                    description: description.clone(),
                    priority: priority.map(|p| p.as_str().to_owned()),
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
            Self::ProgressUpdated { from, to } => (
                PROGRESS_UPDATED,
                1,
                to_value(&ProgressUpdatedV1 {
                    from: *from,
                    to: *to,
                }),
            ),
            Self::Assigned { agent_id, previous } => (
                ASSIGNED,
                1,
                to_value(&AssignedV1 {
                    agent_id: agent_id.as_uuid(),
                    previous: previous.map(|a| a.as_uuid()),
                }),
            ),
            Self::Unassigned { agent_id } => (
                UNASSIGNED,
                1,
                to_value(&UnassignedV1 {
                    agent_id: agent_id.as_uuid(),
                }),
            ),
            Self::Deleted => (DELETED, 1, to_value(&DeletedV1 {})),
        }
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        Ok(match event_type {
            CREATED => {
                let p: CreatedV1 = payload(event_type, value)?;
                Self::Created {
                    id: MissionId::from_uuid(p.id),
                    title: p.title,
                    description: p.description,
                    status: named::<MissionStatus>(event_type, &p.status)?,
                    priority: named::<Priority>(event_type, &p.priority)?,
                    progress: p.progress,
                    metadata: p.metadata,
                    agent_id: p.agent_id.map(AgentId::from_uuid),
                }
            }
            UPDATED => {
                let p: UpdatedV1 = payload(event_type, value)?;
                Self::Updated {
                    title: p.title,
                    description: p.description,
                    priority: p
                        .priority
                        .map(|s| named::<Priority>(event_type, &s))
                        .transpose()?,
                    metadata: p.metadata,
                }
            }
            STATUS_CHANGED => {
                let p: StatusChangedV1 = payload(event_type, value)?;
                Self::StatusChanged {
                    from: named(event_type, &p.from)?,
                    to: named(event_type, &p.to)?,
                    reason: p.reason,
                }
            }
            PROGRESS_UPDATED => {
                let p: ProgressUpdatedV1 = payload(event_type, value)?;
                Self::ProgressUpdated {
                    from: p.from,
                    to: p.to,
                }
            }
            ASSIGNED => {
                let p: AssignedV1 = payload(event_type, value)?;
                Self::Assigned {
                    agent_id: AgentId::from_uuid(p.agent_id),
                    previous: p.previous.map(AgentId::from_uuid),
                }
            }
            UNASSIGNED => {
                let p: UnassignedV1 = payload(event_type, value)?;
                Self::Unassigned {
                    agent_id: AgentId::from_uuid(p.agent_id),
                }
            }
            DELETED => {
                let DeletedV1 {} = payload(event_type, value)?;
                Self::Deleted
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
        let id = MissionId::from_uuid(Uuid::from_u128(1));
        let agent = AgentId::from_uuid(Uuid::from_u128(2));
        let other = AgentId::from_uuid(Uuid::from_u128(3));
        let mut meta = Map::new();
        meta.insert("zone".into(), json!(4));
        let cases = [
            (
                MissionEvent::Created {
                    id,
                    title: "Survey".into(),
                    description: "d".into(),
                    status: MissionStatus::Pending,
                    priority: Priority::Urgent,
                    progress: 0,
                    metadata: meta.clone(),
                    agent_id: Some(agent),
                },
                json!({"type": "mission.created", "v": 1, "payload": {
                    "id": "00000000-0000-0000-0000-000000000001", "title": "Survey",
                    "description": "d", "status": "PENDING", "priority": "URGENT",
                    "progress": 0, "metadata": {"zone": 4},
                    "agentId": "00000000-0000-0000-0000-000000000002"}}),
            ),
            (
                MissionEvent::Created {
                    id,
                    title: "Survey".into(),
                    description: String::new(),
                    status: MissionStatus::Pending,
                    priority: Priority::Medium,
                    progress: 0,
                    metadata: Map::new(),
                    agent_id: None,
                },
                json!({"type": "mission.created", "v": 1, "payload": {
                    "id": "00000000-0000-0000-0000-000000000001", "title": "Survey",
                    "description": "", "status": "PENDING", "priority": "MEDIUM",
                    "progress": 0, "metadata": {}}}),
            ),
            (
                MissionEvent::Updated {
                    title: Some("t".into()),
                    description: None,
                    priority: Some(Priority::Low),
                    metadata: Some(meta),
                },
                json!({"type": "mission.updated", "v": 1, "payload": {
                    "title": "t", "priority": "LOW", "metadata": {"zone": 4}}}),
            ),
            (
                MissionEvent::StatusChanged {
                    from: MissionStatus::InProgress,
                    to: MissionStatus::Completed,
                    reason: Some("done".into()),
                },
                json!({"type": "mission.status_changed", "v": 1, "payload": {
                    "from": "IN_PROGRESS", "to": "COMPLETED", "reason": "done"}}),
            ),
            (
                MissionEvent::StatusChanged {
                    from: MissionStatus::Pending,
                    to: MissionStatus::Cancelled,
                    reason: None,
                },
                json!({"type": "mission.status_changed", "v": 1, "payload": {
                    "from": "PENDING", "to": "CANCELLED"}}),
            ),
            (
                MissionEvent::ProgressUpdated { from: 10, to: 55 },
                json!({"type": "mission.progress_updated", "v": 1, "payload": {
                    "from": 10, "to": 55}}),
            ),
            (
                MissionEvent::Assigned {
                    agent_id: other,
                    previous: Some(agent),
                },
                json!({"type": "mission.assigned", "v": 1, "payload": {
                    "agentId": "00000000-0000-0000-0000-000000000003",
                    "previous": "00000000-0000-0000-0000-000000000002"}}),
            ),
            (
                MissionEvent::Assigned {
                    agent_id: agent,
                    previous: None,
                },
                json!({"type": "mission.assigned", "v": 1, "payload": {
                    "agentId": "00000000-0000-0000-0000-000000000002"}}),
            ),
            (
                MissionEvent::Unassigned { agent_id: agent },
                json!({"type": "mission.unassigned", "v": 1, "payload": {
                    "agentId": "00000000-0000-0000-0000-000000000002"}}),
            ),
            (
                MissionEvent::Deleted,
                json!({"type": "mission.deleted", "v": 1, "payload": {}}),
            ),
        ];
        for (event, expected) in cases {
            let (t, v, p) = event.to_stored();
            assert_eq!(json!({"type": t, "v": v, "payload": p}), expected);
            assert_eq!(super::super::current_version(t), Some(v));
            assert_eq!(MissionEvent::from_stored(t, v, p).unwrap(), event);
        }
    }

    #[test]
    fn unknown_future_and_bad_payloads_are_errors() {
        assert!(matches!(
            MissionEvent::from_stored("mission.exploded", 1, json!({})),
            Err(SchemaError::UnknownType { .. })
        ));
        assert!(matches!(
            MissionEvent::from_stored(DELETED, 2, json!({})),
            Err(SchemaError::FutureVersion { .. })
        ));
        assert!(matches!(
            MissionEvent::from_stored(STATUS_CHANGED, 1, json!({"from": "PENDING", "to": "DONE"})),
            Err(SchemaError::BadPayload { .. })
        ));
        assert!(matches!(
            MissionEvent::from_stored(PROGRESS_UPDATED, 1, json!({"from": 0, "to": -1})),
            Err(SchemaError::BadPayload { .. })
        ));
        assert!(matches!(
            MissionEvent::from_stored(ASSIGNED, 1, json!({"agentId": "nope"})),
            Err(SchemaError::BadPayload { .. })
        ));
    }
}
