//! Identifier newtypes: uuids that parse from client input and print canonically.

use crate::error::FieldError;
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// Parse client input; `field` names the input in the error.
            pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
                Uuid::parse_str(input.trim())
                    .map(Self)
                    .map_err(|_| FieldError::new(field, "must be a uuid"))
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// An agent (AI agent or worker).
    AgentId
);
uuid_id!(
    /// A mission: a unit of work with a status, a priority and progress.
    MissionId
);
uuid_id!(
    /// A comment on a mission, an agent, or free-standing.
    CommentId
);
uuid_id!(
    /// An API token (the `<id>` of `mc_<id>_<secret>`).
    TokenId
);
uuid_id!(
    /// A command, used for idempotency (`Nats-Msg-Id`).
    CommandId
);
uuid_id!(
    /// A task: the definition a run follows (prompt, allowed tools, budget).
    TaskId
);
uuid_id!(
    /// One run of a task by a runner.
    TaskRunId
);
uuid_id!(
    /// A tool call inside a task run.
    ToolCallId
);
uuid_id!(
    /// An alarm: derived from its spacecraft, parameter and kind, so every process names the
    /// same alarm the same way without a lookup.
    AlarmId
);

/// Namespace of [`AlarmId::for_key`] (a fixed random uuid: changing it renames every alarm).
const ALARM_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2d0e_8a4b_4f5e_9c3d_1b7a_2e4f_6a80);

impl AlarmId {
    /// The id of the alarm on `key`: UUID v5 of `<spacecraft>/<parameter>/<KIND>`.
    pub fn for_key(key: &crate::alarm::AlarmKey) -> Self {
        let name = format!("{}/{}/{}", key.spacecraft, key.parameter, key.kind);
        Self(Uuid::new_v5(&ALARM_NAMESPACE, name.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uuid_and_rejects_garbage() {
        let id = AgentId::parse(" 0191e5a4-1c1e-7cc0-8000-000000000001 ", "id").unwrap();
        assert_eq!(id.to_string(), "0191e5a4-1c1e-7cc0-8000-000000000001");
        let err = AgentId::parse("nope", "agentId").unwrap_err();
        assert_eq!(err.field, "agentId");
    }
}
