//! The Spacecraft aggregate: a telemetry source with a name, metadata and per-parameter limits.
//! A limits change takes effect at a given time (epoch milliseconds), so samples are judged by
//! the limits in force at their own timestamp.

mod limits;
#[cfg(test)]
mod tests;

pub use limits::{LimitsConfig, ParameterLimits, RawLimits};

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};
use crate::values::{Metadata, Name};
use serde_json::{Map, Value};
use std::fmt;

pub const SPACECRAFT_ID_MAX: usize = 64;

/// A spacecraft id such as `SC-001`: 1..=64 of `A-Z a-z 0-9 _ -`, starting with a letter or
/// digit. It is a NATS subject token (`mc.telemetry.<id>`), so no dots or wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpacecraftId(String);

impl SpacecraftId {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let ok = !input.is_empty()
            && input.len() <= SPACECRAFT_ID_MAX
            && input.starts_with(|c: char| c.is_ascii_alphanumeric())
            && input
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                format!("must be 1 to {SPACECRAFT_ID_MAX} of A-Z a-z 0-9 - _, starting with a letter or digit"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpacecraftId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpacecraftData {
    pub id: String,
    pub name: String,
    pub metadata: Map<String, Value>,
    /// The latest configured limits and the time they take effect.
    pub limits: LimitsConfig,
    pub limits_effective_at: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Spacecraft {
    #[default]
    Absent,
    Active(SpacecraftData),
}

impl Spacecraft {
    pub fn data(&self) -> Option<&SpacecraftData> {
        match self {
            Self::Active(d) => Some(d),
            Self::Absent => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SpacecraftCommand {
    Register {
        id: SpacecraftId,
        name: Name,
        metadata: Metadata,
    },
    /// Replace the limits, in force from `effective_at` (epoch ms). Configuring exactly the
    /// limits already in force from the same time is a no-op.
    ConfigureLimits {
        limits: LimitsConfig,
        effective_at: i64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SpacecraftEvent {
    Registered {
        id: String,
        name: String,
        metadata: Map<String, Value>,
    },
    LimitsConfigured {
        limits: LimitsConfig,
        effective_at: i64,
    },
}

const SPACECRAFT: &str = "spacecraft";

impl Aggregate for Spacecraft {
    const TYPE: &'static str = SPACECRAFT;
    type Command = SpacecraftCommand;
    type Event = SpacecraftEvent;

    fn decide(&self, command: &SpacecraftCommand) -> Result<Vec<SpacecraftEvent>, DomainError> {
        match (self, command) {
            (Self::Absent, SpacecraftCommand::Register { id, name, metadata }) => {
                Ok(vec![SpacecraftEvent::Registered {
                    id: id.as_str().to_owned(),
                    name: name.as_str().to_owned(),
                    metadata: metadata.clone().into_map(),
                }])
            }
            (Self::Active(_), SpacecraftCommand::Register { .. }) => {
                Err(DomainError::AlreadyExists {
                    aggregate: SPACECRAFT,
                })
            }
            (Self::Absent, SpacecraftCommand::ConfigureLimits { .. }) => {
                Err(DomainError::NotFound {
                    aggregate: SPACECRAFT,
                })
            }
            (
                Self::Active(s),
                SpacecraftCommand::ConfigureLimits {
                    limits,
                    effective_at,
                },
            ) => {
                if s.limits == *limits && s.limits_effective_at == *effective_at {
                    return Ok(vec![]);
                }
                Ok(vec![SpacecraftEvent::LimitsConfigured {
                    limits: limits.clone(),
                    effective_at: *effective_at,
                }])
            }
        }
    }

    fn evolve(self, event: &SpacecraftEvent) -> Self {
        match (self, event) {
            (Self::Absent, SpacecraftEvent::Registered { id, name, metadata }) => {
                Self::Active(SpacecraftData {
                    id: id.clone(),
                    name: name.clone(),
                    metadata: metadata.clone(),
                    ..SpacecraftData::default()
                })
            }
            (
                Self::Active(mut s),
                SpacecraftEvent::LimitsConfigured {
                    limits,
                    effective_at,
                },
            ) => {
                s.limits = limits.clone();
                s.limits_effective_at = *effective_at;
                Self::Active(s)
            }
            (state, _) => state,
        }
    }
}
