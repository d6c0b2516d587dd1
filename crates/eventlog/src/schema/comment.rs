//! Stored schema of the Comment events.

use super::{payload, to_value, EventSchema, SchemaError, Upcaster};
use mc_domain::comment::{CommentEvent, CommentType};
use mc_domain::ids::{AgentId, CommentId, MissionId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub const POSTED: &str = "comment.posted";
pub const EDITED: &str = "comment.edited";
pub const DELETED: &str = "comment.deleted";

pub(super) const VERSIONS: &[(&str, u32)] = &[(POSTED, 1), (EDITED, 1), (DELETED, 1)];
pub(super) const UPCASTERS: &[Upcaster] = &[];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostedV1 {
    id: Uuid,
    content: String,
    #[serde(rename = "type")]
    comment_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mission_id: Option<Uuid>,
    metadata: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EditedV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    comment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
}

#[derive(Serialize, Deserialize)]
struct DeletedV1 {}

fn comment_type(event_type: &str, s: &str) -> Result<CommentType, SchemaError> {
    s.parse().map_err(|reason| SchemaError::BadPayload {
        event_type: event_type.to_owned(),
        reason,
    })
}

impl EventSchema for CommentEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        match self {
            Self::Posted {
                id,
                content,
                comment_type,
                agent_id,
                mission_id,
                metadata,
            } => (
                POSTED,
                1,
                to_value(&PostedV1 {
                    id: id.as_uuid(),
                    content: content.clone(),
                    comment_type: comment_type.as_str().to_owned(),
                    agent_id: agent_id.map(|a| a.as_uuid()),
                    mission_id: mission_id.map(|m| m.as_uuid()),
                    metadata: metadata.clone(),
                }),
            ),
            Self::Edited {
                content,
                comment_type,
                metadata,
            } => (
                EDITED,
                1,
                to_value(&EditedV1 {
                    content: content.clone(),
                    comment_type: comment_type.map(|t| t.as_str().to_owned()),
                    metadata: metadata.clone(),
                }),
            ),
            Self::Deleted => (DELETED, 1, to_value(&DeletedV1 {})),
        }
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        Ok(match event_type {
            POSTED => {
                let p: PostedV1 = payload(event_type, value)?;
                Self::Posted {
                    id: CommentId::from_uuid(p.id),
                    content: p.content,
                    comment_type: comment_type(event_type, &p.comment_type)?,
                    agent_id: p.agent_id.map(AgentId::from_uuid),
                    mission_id: p.mission_id.map(MissionId::from_uuid),
                    metadata: p.metadata,
                }
            }
            EDITED => {
                let p: EditedV1 = payload(event_type, value)?;
                Self::Edited {
                    content: p.content,
                    comment_type: p
                        .comment_type
                        .map(|s| comment_type(event_type, &s))
                        .transpose()?,
                    metadata: p.metadata,
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
        let id = CommentId::from_uuid(Uuid::from_u128(1));
        let agent = AgentId::from_uuid(Uuid::from_u128(2));
        let mission = MissionId::from_uuid(Uuid::from_u128(3));
        let mut meta = Map::new();
        meta.insert("k".into(), json!("v"));
        let cases = [
            (
                CommentEvent::Posted {
                    id,
                    content: "all clear".into(),
                    comment_type: CommentType::Warning,
                    agent_id: Some(agent),
                    mission_id: Some(mission),
                    metadata: meta.clone(),
                },
                json!({"type": "comment.posted", "v": 1, "payload": {
                    "id": "00000000-0000-0000-0000-000000000001", "content": "all clear",
                    "type": "WARNING", "agentId": "00000000-0000-0000-0000-000000000002",
                    "missionId": "00000000-0000-0000-0000-000000000003",
                    "metadata": {"k": "v"}}}),
            ),
            (
                CommentEvent::Posted {
                    id,
                    content: "free".into(),
                    comment_type: CommentType::Note,
                    agent_id: None,
                    mission_id: None,
                    metadata: Map::new(),
                },
                json!({"type": "comment.posted", "v": 1, "payload": {
                    "id": "00000000-0000-0000-0000-000000000001", "content": "free",
                    "type": "NOTE", "metadata": {}}}),
            ),
            (
                CommentEvent::Edited {
                    content: Some("c".into()),
                    comment_type: Some(CommentType::Success),
                    metadata: Some(meta),
                },
                json!({"type": "comment.edited", "v": 1, "payload": {
                    "content": "c", "type": "SUCCESS", "metadata": {"k": "v"}}}),
            ),
            (
                CommentEvent::Edited {
                    content: None,
                    comment_type: Some(CommentType::Error),
                    metadata: None,
                },
                json!({"type": "comment.edited", "v": 1, "payload": {"type": "ERROR"}}),
            ),
            (
                CommentEvent::Deleted,
                json!({"type": "comment.deleted", "v": 1, "payload": {}}),
            ),
        ];
        for (event, expected) in cases {
            let (t, v, p) = event.to_stored();
            assert_eq!(json!({"type": t, "v": v, "payload": p}), expected);
            assert_eq!(super::super::current_version(t), Some(v));
            assert_eq!(CommentEvent::from_stored(t, v, p).unwrap(), event);
        }
    }

    #[test]
    fn unknown_future_and_bad_payloads_are_errors() {
        assert!(matches!(
            CommentEvent::from_stored("comment.exploded", 1, json!({})),
            Err(SchemaError::UnknownType { .. })
        ));
        assert!(matches!(
            CommentEvent::from_stored(DELETED, 2, json!({})),
            Err(SchemaError::FutureVersion { .. })
        ));
        assert!(matches!(
            CommentEvent::from_stored(EDITED, 1, json!({"type": "note"})),
            Err(SchemaError::BadPayload { .. })
        ));
        assert!(matches!(
            CommentEvent::from_stored(POSTED, 1, json!({"content": "x"})),
            Err(SchemaError::BadPayload { .. })
        ));
    }
}
