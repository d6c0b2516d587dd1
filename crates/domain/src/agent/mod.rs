//! The Agent aggregate: an AI agent or worker with a unique name, capabilities and a status.
//!
//! Name uniqueness spans aggregates, so it is not decided here: the command layer reserves
//! the name before `decide` (see ARCHITECTURE.md, "Unique names").

use crate::aggregate::Aggregate;
use crate::error::DomainError;
use crate::ids::AgentId;
use crate::values::{Capabilities, Description, Metadata, Name};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AgentStatus {
    #[default]
    Idle,
    Busy,
    Offline,
    Error,
}

impl AgentStatus {
    pub const ALL: [Self; 4] = [Self::Idle, Self::Busy, Self::Offline, Self::Error];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "IDLE",
            Self::Busy => "BUSY",
            Self::Offline => "OFFLINE",
            Self::Error => "ERROR",
        }
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| "must be one of IDLE, BUSY, OFFLINE, ERROR".to_owned())
    }
}

/// The registered agent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentData {
    pub id: Option<AgentId>,
    pub name: String,
    pub description: String,
    pub capabilities: Vec<String>,
    pub metadata: Map<String, Value>,
    pub status: AgentStatus,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Agent {
    #[default]
    Unregistered,
    Active(AgentData),
    Removed(AgentData),
}

impl Agent {
    pub fn data(&self) -> Option<&AgentData> {
        match self {
            Self::Active(d) => Some(d),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegisterAgent {
    pub id: AgentId,
    pub name: Name,
    pub description: Description,
    pub capabilities: Capabilities,
    pub metadata: Metadata,
    pub status: AgentStatus,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateAgent {
    pub name: Option<Name>,
    pub description: Option<Description>,
    pub capabilities: Option<Capabilities>,
    pub metadata: Option<Metadata>,
    pub status: Option<AgentStatus>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AgentCommand {
    Register(RegisterAgent),
    Update(UpdateAgent),
    ChangeStatus {
        status: AgentStatus,
        reason: Option<String>,
    },
    Remove,
    /// A heartbeat: an OFFLINE agent is back (IDLE); any other status stays. Heartbeats of a
    /// live agent decide nothing, so they never reach the log.
    Heartbeat,
    /// The liveness sweeper's verdict: neither a heartbeat nor any activity for
    /// `silent_seconds`. An agent already OFFLINE stays as it is.
    MarkOffline {
        silent_seconds: u64,
    },
}

/// The reason recorded when a heartbeat brings an OFFLINE agent back.
pub const HEARTBEAT_REASON: &str = "heartbeat";

#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    Registered {
        id: AgentId,
        name: String,
        description: String,
        capabilities: Vec<String>,
        metadata: Map<String, Value>,
        status: AgentStatus,
    },
    /// Only the changed fields are `Some`.
    Updated {
        name: Option<String>,
        description: Option<String>,
        capabilities: Option<Vec<String>>,
        metadata: Option<Map<String, Value>>,
    },
    StatusChanged {
        from: AgentStatus,
        to: AgentStatus,
        reason: Option<String>,
    },
    Removed {
        name: String,
    },
}

const AGENT: &str = "agent";

impl Aggregate for Agent {
    const TYPE: &'static str = AGENT;
    type Command = AgentCommand;
    type Event = AgentEvent;

    fn decide(&self, command: &AgentCommand) -> Result<Vec<AgentEvent>, DomainError> {
        match (self, command) {
            (Self::Unregistered, AgentCommand::Register(c)) => Ok(vec![AgentEvent::Registered {
                id: c.id,
                name: c.name.as_str().to_owned(),
                description: c.description.clone().into_string(),
                capabilities: c.capabilities.clone().into_vec(),
                metadata: c.metadata.clone().into_map(),
                status: c.status,
            }]),
            (_, AgentCommand::Register(_)) => Err(DomainError::AlreadyExists { aggregate: AGENT }),
            (Self::Unregistered | Self::Removed(_), _) => {
                Err(DomainError::NotFound { aggregate: AGENT })
            }
            (Self::Active(agent), AgentCommand::Update(u)) => Ok(decide_update(agent, u)),
            (Self::Active(agent), AgentCommand::ChangeStatus { status, reason }) => {
                Ok(status_change(agent, *status, reason.clone())
                    .into_iter()
                    .collect())
            }
            (Self::Active(agent), AgentCommand::Remove) => Ok(vec![AgentEvent::Removed {
                name: agent.name.clone(),
            }]),
            (Self::Active(agent), AgentCommand::Heartbeat) => {
                Ok(if agent.status == AgentStatus::Offline {
                    status_change(agent, AgentStatus::Idle, Some(HEARTBEAT_REASON.to_owned()))
                        .into_iter()
                        .collect()
                } else {
                    Vec::new()
                })
            }
            (Self::Active(agent), AgentCommand::MarkOffline { silent_seconds }) => {
                let reason = format!("no heartbeat or activity for {silent_seconds} s");
                Ok(status_change(agent, AgentStatus::Offline, Some(reason))
                    .into_iter()
                    .collect())
            }
        }
    }

    fn evolve(self, event: &AgentEvent) -> Self {
        match (self, event) {
            (
                _,
                AgentEvent::Registered {
                    id,
                    name,
                    description,
                    capabilities,
                    metadata,
                    status,
                },
            ) => Self::Active(AgentData {
                id: Some(*id),
                name: name.clone(),
                description: description.clone(),
                capabilities: capabilities.clone(),
                metadata: metadata.clone(),
                status: *status,
            }),
            (
                Self::Active(mut a),
                AgentEvent::Updated {
                    name,
                    description,
                    capabilities,
                    metadata,
                },
            ) => {
                if let Some(v) = name {
                    a.name.clone_from(v);
                }
                if let Some(v) = description {
                    a.description.clone_from(v);
                }
                if let Some(v) = capabilities {
                    a.capabilities.clone_from(v);
                }
                if let Some(v) = metadata {
                    a.metadata.clone_from(v);
                }
                Self::Active(a)
            }
            (Self::Active(mut a), AgentEvent::StatusChanged { to, .. }) => {
                a.status = *to;
                Self::Active(a)
            }
            (Self::Active(a), AgentEvent::Removed { .. }) => Self::Removed(a),
            // Events that do not fit the state leave it unchanged; decide never emits them.
            (state, _) => state,
        }
    }
}

fn decide_update(agent: &AgentData, u: &UpdateAgent) -> Vec<AgentEvent> {
    let name = u
        .name
        .as_ref()
        .map(|n| n.as_str().to_owned())
        .filter(|n| *n != agent.name);
    let description = u
        .description
        .clone()
        .map(Description::into_string)
        .filter(|d| *d != agent.description);
    let capabilities = u
        .capabilities
        .clone()
        .map(Capabilities::into_vec)
        .filter(|c| *c != agent.capabilities);
    let metadata = u
        .metadata
        .clone()
        .map(Metadata::into_map)
        .filter(|m| *m != agent.metadata);
    let mut events = Vec::new();
    if name.is_some() || description.is_some() || capabilities.is_some() || metadata.is_some() {
        events.push(AgentEvent::Updated {
            name,
            description,
            capabilities,
            metadata,
        });
    }
    if let Some(status) = u.status {
        events.extend(status_change(agent, status, None));
    }
    events
}

/// Any status may follow any other; setting the current status again is a no-op.
fn status_change(agent: &AgentData, to: AgentStatus, reason: Option<String>) -> Option<AgentEvent> {
    (agent.status != to).then_some(AgentEvent::StatusChanged {
        from: agent.status,
        to,
        reason,
    })
}
