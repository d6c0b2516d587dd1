//! The Mission aggregate: a unit of work with a status life cycle, a priority, progress and
//! at most one assigned agent.
//!
//! Whether an agent exists and may take work spans aggregates, so it is not loaded here: the
//! command layer loads the agent and puts an [`AgentRef`] in the command.

use crate::agent::AgentStatus;
use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};
use crate::ids::{AgentId, MissionId};
use crate::values::{Metadata, MissionDescription, Progress, Title, PROGRESS_MAX};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

#[cfg(test)]
mod tests;

/// Where a mission is in its life cycle; see [`MissionStatus::can_go_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MissionStatus {
    #[default]
    Pending,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

impl MissionStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::InProgress,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// The one table of legal status transitions. Staying in the same status is not a
    /// transition (`decide` treats it as a no-op). Terminal statuses have no way out.
    pub const fn can_go_to(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::Pending, Self::InProgress | Self::Cancelled)
                | (
                    Self::InProgress,
                    Self::Pending | Self::Completed | Self::Failed | Self::Cancelled
                )
        )
    }

    /// COMPLETED, FAILED or CANCELLED: nothing leaves these.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// IN_PROGRESS: an agent is working on it.
    pub const fn is_active(self) -> bool {
        matches!(self, Self::InProgress)
    }
}

impl fmt::Display for MissionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MissionStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| one_of(Self::ALL.map(Self::as_str)))
    }
}

/// How urgent a mission is; ordered from LOW to URGENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Self; 4] = [Self::Low, Self::Medium, Self::High, Self::Urgent];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Urgent => "URGENT",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| one_of(Self::ALL.map(Self::as_str)))
    }
}

/// `must be one of A, B, C`: the error message of the enums' `FromStr`.
pub(crate) fn one_of<const N: usize>(names: [&str; N]) -> String {
    format!("must be one of {}", names.join(", "))
}

/// What the command layer found when it loaded an agent a command refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAvailability {
    /// Registered and not removed, with its current status.
    Available(AgentStatus),
    /// No such agent was ever registered.
    Missing,
    /// The agent was removed.
    Removed,
}

/// An agent a command refers to, loaded before `decide` (DESIGN decision 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentRef {
    pub id: AgentId,
    pub state: AgentAvailability,
}

/// Client field name of a referenced agent.
const AGENT_FIELD: &str = "agentId";

impl AgentRef {
    /// The agent exists (registered, not removed).
    pub fn check_exists(&self) -> Result<AgentId, FieldError> {
        match self.state {
            AgentAvailability::Available(_) => Ok(self.id),
            AgentAvailability::Missing | AgentAvailability::Removed => {
                Err(FieldError::new(AGENT_FIELD, "agent does not exist"))
            }
        }
    }

    /// The agent exists and is not OFFLINE, so it may be given a mission.
    pub fn check_assignable(&self) -> Result<AgentId, FieldError> {
        match self.state {
            AgentAvailability::Available(AgentStatus::Offline) => Err(FieldError::new(
                AGENT_FIELD,
                format!("agent is {}", AgentStatus::Offline),
            )),
            _ => self.check_exists(),
        }
    }
}

/// The created mission.
#[derive(Debug, Clone, PartialEq)]
pub struct MissionData {
    pub id: MissionId,
    pub title: String,
    pub description: String,
    pub status: MissionStatus,
    pub priority: Priority,
    /// Percent, 0..=100.
    pub progress: u8,
    pub agent_id: Option<AgentId>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Mission {
    #[default]
    Absent,
    Active(MissionData),
    Deleted(MissionData),
}

impl Mission {
    /// The mission, unless it is absent or deleted.
    pub fn data(&self) -> Option<&MissionData> {
        match self {
            Self::Active(d) => Some(d),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateMission {
    pub id: MissionId,
    pub title: Title,
    pub description: MissionDescription,
    pub priority: Priority,
    pub metadata: Metadata,
    /// The agent to assign at once, if any.
    pub agent: Option<AgentRef>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateMission {
    pub title: Option<Title>,
    pub description: Option<MissionDescription>,
    pub priority: Option<Priority>,
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MissionCommand {
    Create(CreateMission),
    Update(UpdateMission),
    /// Move along [`MissionStatus::can_go_to`]; the current status again is a no-op.
    ChangeStatus {
        to: MissionStatus,
        reason: Option<String>,
    },
    /// Refused in terminal statuses; the current value again is a no-op.
    UpdateProgress {
        progress: Progress,
    },
    /// Refused in terminal statuses and for a missing, removed or OFFLINE agent; the
    /// assigned agent again is a no-op.
    Assign {
        agent: AgentRef,
    },
    /// Allowed in every status (releasing an agent is always safe); no agent is a no-op.
    Unassign,
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MissionEvent {
    /// A new mission: always PENDING with progress 0.
    Created {
        id: MissionId,
        title: String,
        description: String,
        status: MissionStatus,
        priority: Priority,
        progress: u8,
        metadata: Map<String, Value>,
        agent_id: Option<AgentId>,
    },
    /// Only the changed fields are `Some`.
    Updated {
        title: Option<String>,
        description: Option<String>,
        priority: Option<Priority>,
        metadata: Option<Map<String, Value>>,
    },
    /// A legal transition (see [`MissionStatus::can_go_to`]). Reaching COMPLETED also sets
    /// progress to 100, without a separate `ProgressUpdated`.
    StatusChanged {
        from: MissionStatus,
        to: MissionStatus,
        reason: Option<String>,
    },
    ProgressUpdated {
        from: u8,
        to: u8,
    },
    Assigned {
        agent_id: AgentId,
        previous: Option<AgentId>,
    },
    Unassigned {
        agent_id: AgentId,
    },
    Deleted,
}

const MISSION: &str = "mission";

impl Aggregate for Mission {
    const TYPE: &'static str = MISSION;
    type Command = MissionCommand;
    type Event = MissionEvent;

    fn decide(&self, command: &MissionCommand) -> Result<Vec<MissionEvent>, DomainError> {
        match (self, command) {
            (Self::Absent, MissionCommand::Create(c)) => create(c),
            (_, MissionCommand::Create(_)) => {
                Err(DomainError::AlreadyExists { aggregate: MISSION })
            }
            (Self::Absent | Self::Deleted(_), _) => {
                Err(DomainError::NotFound { aggregate: MISSION })
            }
            (Self::Active(m), MissionCommand::Update(u)) => Ok(decide_update(m, u)),
            (Self::Active(m), MissionCommand::ChangeStatus { to, reason }) => {
                change_status(m, *to, reason)
            }
            (Self::Active(m), MissionCommand::UpdateProgress { progress }) => {
                refuse_if_terminal(m, "progress update")?;
                let to = progress.get();
                Ok(if to == m.progress {
                    vec![]
                } else {
                    vec![MissionEvent::ProgressUpdated {
                        from: m.progress,
                        to,
                    }]
                })
            }
            (Self::Active(m), MissionCommand::Assign { agent }) => {
                refuse_if_terminal(m, "assignment")?;
                let agent_id = agent.check_assignable().map_err(one_field)?;
                Ok(if m.agent_id == Some(agent_id) {
                    vec![]
                } else {
                    vec![MissionEvent::Assigned {
                        agent_id,
                        previous: m.agent_id,
                    }]
                })
            }
            (Self::Active(m), MissionCommand::Unassign) => Ok(m
                .agent_id
                .map(|agent_id| MissionEvent::Unassigned { agent_id })
                .into_iter()
                .collect()),
            (Self::Active(_), MissionCommand::Delete) => Ok(vec![MissionEvent::Deleted]),
        }
    }

    fn evolve(self, event: &MissionEvent) -> Self {
        match (self, event) {
            (
                Self::Absent,
                MissionEvent::Created {
                    id,
                    title,
                    description,
                    status,
                    priority,
                    progress,
                    metadata,
                    agent_id,
                },
            ) => Self::Active(MissionData {
                id: *id,
                title: title.clone(),
                description: description.clone(),
                status: *status,
                priority: *priority,
                progress: (*progress).min(PROGRESS_MAX),
                agent_id: *agent_id,
                metadata: metadata.clone(),
            }),
            (
                Self::Active(mut m),
                MissionEvent::Updated {
                    title,
                    description,
                    priority,
                    metadata,
                },
            ) => {
                if let Some(v) = title {
                    m.title.clone_from(v);
                }
                if let Some(v) = description {
                    m.description.clone_from(v);
                }
                if let Some(v) = priority {
                    m.priority = *v;
                }
                if let Some(v) = metadata {
                    m.metadata.clone_from(v);
                }
                Self::Active(m)
            }
            (Self::Active(mut m), MissionEvent::StatusChanged { to, .. }) => {
                m.status = *to;
                if *to == MissionStatus::Completed {
                    m.progress = PROGRESS_MAX;
                }
                Self::Active(m)
            }
            (Self::Active(mut m), MissionEvent::ProgressUpdated { to, .. }) => {
                m.progress = (*to).min(PROGRESS_MAX);
                Self::Active(m)
            }
            (Self::Active(mut m), MissionEvent::Assigned { agent_id, .. }) => {
                m.agent_id = Some(*agent_id);
                Self::Active(m)
            }
            (Self::Active(mut m), MissionEvent::Unassigned { .. }) => {
                m.agent_id = None;
                Self::Active(m)
            }
            (Self::Active(m), MissionEvent::Deleted) => Self::Deleted(m),
            // Events that do not fit the state leave it unchanged; decide never emits them.
            (state, _) => state,
        }
    }
}

fn one_field(error: FieldError) -> DomainError {
    DomainError::Validation(vec![error])
}

fn create(c: &CreateMission) -> Result<Vec<MissionEvent>, DomainError> {
    let agent_id = c
        .agent
        .as_ref()
        .map(AgentRef::check_assignable)
        .transpose()
        .map_err(one_field)?;
    Ok(vec![MissionEvent::Created {
        id: c.id,
        title: c.title.as_str().to_owned(),
        description: c.description.as_str().to_owned(),
        status: MissionStatus::Pending,
        priority: c.priority,
        progress: Progress::ZERO.get(),
        metadata: c.metadata.clone().into_map(),
        agent_id,
    }])
}

fn decide_update(m: &MissionData, u: &UpdateMission) -> Vec<MissionEvent> {
    let title = u
        .title
        .as_ref()
        .map(|t| t.as_str().to_owned())
        .filter(|t| *t != m.title);
    let description = u
        .description
        .as_ref()
        .map(|d| d.as_str().to_owned())
        .filter(|d| *d != m.description);
    let priority = u.priority.filter(|p| *p != m.priority);
    let metadata = u
        .metadata
        .clone()
        .map(Metadata::into_map)
        .filter(|v| *v != m.metadata);
    if title.is_none() && description.is_none() && priority.is_none() && metadata.is_none() {
        return vec![];
    }
    vec![MissionEvent::Updated {
        title,
        description,
        priority,
        metadata,
    }]
}

/// Same status: no event. Otherwise only what [`MissionStatus::can_go_to`] allows.
fn change_status(
    m: &MissionData,
    to: MissionStatus,
    reason: &Option<String>,
) -> Result<Vec<MissionEvent>, DomainError> {
    if m.status == to {
        return Ok(vec![]);
    }
    if !m.status.can_go_to(to) {
        return Err(DomainError::InvalidTransition {
            aggregate: MISSION,
            from: m.status.as_str().to_owned(),
            to: to.as_str().to_owned(),
        });
    }
    Ok(vec![MissionEvent::StatusChanged {
        from: m.status,
        to,
        reason: reason.clone(),
    }])
}

/// A finished mission takes no more progress or assignments (`what` names the attempt).
fn refuse_if_terminal(m: &MissionData, what: &str) -> Result<(), DomainError> {
    if m.status.is_terminal() {
        Err(DomainError::InvalidTransition {
            aggregate: MISSION,
            from: m.status.as_str().to_owned(),
            to: what.to_owned(),
        })
    } else {
        Ok(())
    }
}
