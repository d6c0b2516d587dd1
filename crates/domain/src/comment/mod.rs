//! The Comment aggregate: a note about a mission, an agent, both, or neither.
//!
//! The agent and mission it refers to live in other aggregates: the command layer loads them
//! and puts an [`AgentRef`] / [`MissionRef`] in the command, so `decide` can refuse dangling
//! references.

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};
use crate::ids::{AgentId, CommentId, MissionId};
use crate::mission::{one_of, AgentRef};
use crate::values::{Content, Metadata};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

#[cfg(test)]
mod tests;

/// What kind of comment it is (client field `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CommentType {
    #[default]
    Note,
    System,
    Error,
    Warning,
    Success,
}

impl CommentType {
    pub const ALL: [Self; 5] = [
        Self::Note,
        Self::System,
        Self::Error,
        Self::Warning,
        Self::Success,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Note => "NOTE",
            Self::System => "SYSTEM",
            Self::Error => "ERROR",
            Self::Warning => "WARNING",
            Self::Success => "SUCCESS",
        }
    }
}

impl fmt::Display for CommentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommentType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| one_of(Self::ALL.map(Self::as_str)))
    }
}

/// A mission a command refers to, loaded before `decide`: `exists` is false when the
/// mission was never created or was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissionRef {
    pub id: MissionId,
    pub exists: bool,
}

impl MissionRef {
    pub fn check_exists(&self) -> Result<MissionId, FieldError> {
        if self.exists {
            Ok(self.id)
        } else {
            Err(FieldError::new("missionId", "mission does not exist"))
        }
    }
}

/// The posted comment.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentData {
    pub id: CommentId,
    pub content: String,
    pub comment_type: CommentType,
    pub agent_id: Option<AgentId>,
    pub mission_id: Option<MissionId>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Comment {
    #[default]
    Absent,
    Active(CommentData),
    Deleted(CommentData),
}

impl Comment {
    /// The comment, unless it is absent or deleted.
    pub fn data(&self) -> Option<&CommentData> {
        match self {
            Self::Active(d) => Some(d),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostComment {
    pub id: CommentId,
    pub content: Content,
    pub comment_type: CommentType,
    /// The agent it is about or by, if any; must exist.
    pub agent: Option<AgentRef>,
    /// The mission it is about, if any; must exist.
    pub mission: Option<MissionRef>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommentCommand {
    Post(PostComment),
    /// A partial edit; `None` leaves a field as it is, nothing changed emits nothing.
    Edit {
        content: Option<Content>,
        comment_type: Option<CommentType>,
        metadata: Option<Metadata>,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommentEvent {
    Posted {
        id: CommentId,
        content: String,
        comment_type: CommentType,
        agent_id: Option<AgentId>,
        mission_id: Option<MissionId>,
        metadata: Map<String, Value>,
    },
    /// Only the changed fields are `Some`.
    Edited {
        content: Option<String>,
        comment_type: Option<CommentType>,
        metadata: Option<Map<String, Value>>,
    },
    Deleted,
}

const COMMENT: &str = "comment";

impl Aggregate for Comment {
    const TYPE: &'static str = COMMENT;
    type Command = CommentCommand;
    type Event = CommentEvent;

    fn decide(&self, command: &CommentCommand) -> Result<Vec<CommentEvent>, DomainError> {
        match (self, command) {
            (Self::Absent, CommentCommand::Post(p)) => post(p),
            (_, CommentCommand::Post(_)) => Err(DomainError::AlreadyExists { aggregate: COMMENT }),
            (Self::Absent | Self::Deleted(_), _) => {
                Err(DomainError::NotFound { aggregate: COMMENT })
            }
            (
                Self::Active(c),
                CommentCommand::Edit {
                    content,
                    comment_type,
                    metadata,
                },
            ) => {
                let content = content
                    .as_ref()
                    .map(|v| v.as_str().to_owned())
                    .filter(|v| *v != c.content);
                let comment_type = comment_type.filter(|v| *v != c.comment_type);
                let metadata = metadata
                    .clone()
                    .map(Metadata::into_map)
                    .filter(|v| *v != c.metadata);
                if content.is_none() && comment_type.is_none() && metadata.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![CommentEvent::Edited {
                    content,
                    comment_type,
                    metadata,
                }])
            }
            (Self::Active(_), CommentCommand::Delete) => Ok(vec![CommentEvent::Deleted]),
        }
    }

    fn evolve(self, event: &CommentEvent) -> Self {
        match (self, event) {
            (
                Self::Absent,
                CommentEvent::Posted {
                    id,
                    content,
                    comment_type,
                    agent_id,
                    mission_id,
                    metadata,
                },
            ) => Self::Active(CommentData {
                id: *id,
                content: content.clone(),
                comment_type: *comment_type,
                agent_id: *agent_id,
                mission_id: *mission_id,
                metadata: metadata.clone(),
            }),
            (
                Self::Active(mut c),
                CommentEvent::Edited {
                    content,
                    comment_type,
                    metadata,
                },
            ) => {
                if let Some(v) = content {
                    c.content.clone_from(v);
                }
                if let Some(v) = comment_type {
                    c.comment_type = *v;
                }
                if let Some(v) = metadata {
                    c.metadata.clone_from(v);
                }
                Self::Active(c)
            }
            (Self::Active(c), CommentEvent::Deleted) => Self::Deleted(c),
            // Events that do not fit the state leave it unchanged; decide never emits them.
            (state, _) => state,
        }
    }
}

/// Both references are checked, so the client hears about every dangling one at once.
fn post(p: &PostComment) -> Result<Vec<CommentEvent>, DomainError> {
    let agent_id = p.agent.as_ref().map(AgentRef::check_exists).transpose();
    let mission_id = p.mission.as_ref().map(MissionRef::check_exists).transpose();
    match (agent_id, mission_id) {
        (Ok(agent_id), Ok(mission_id)) => Ok(vec![CommentEvent::Posted {
            id: p.id,
            content: p.content.as_str().to_owned(),
            comment_type: p.comment_type,
            agent_id,
            mission_id,
            metadata: p.metadata.clone().into_map(),
        }]),
        (agent, mission) => Err(DomainError::Validation(
            agent.err().into_iter().chain(mission.err()).collect(),
        )),
    }
}
