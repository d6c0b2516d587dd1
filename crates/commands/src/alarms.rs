//! Alarm commands: transitions from the anomaly processor and the stale sweeper, and the
//! operator actions (acknowledge, clear, shelve, unshelve).

use crate::error::CommandError;
use crate::handler::{CommandContext, Executed, Handler};
use mc_domain::alarm::{Alarm, AlarmCommand, AlarmKey};
use mc_domain::ids::AlarmId;
use mc_domain::telemetry::Transition;
use mc_domain::Check;
use uuid::Uuid;

/// Namespace of the command ids of evaluator transitions.
const TRANSITIONS: Uuid = Uuid::from_u128(0x6d63_616e_6f6d_616c_7974_7261_6e73_0001);

#[derive(Clone)]
pub struct AlarmService {
    handler: Handler,
}

impl AlarmService {
    pub fn new(handler: Handler) -> Self {
        Self { handler }
    }

    /// Decide `command` against the alarm `id` and append what it produces.
    pub async fn execute(
        &self,
        ctx: &CommandContext,
        id: AlarmId,
        check: Check,
        command: AlarmCommand,
    ) -> Result<Executed<Alarm>, CommandError> {
        self.handler
            .execute::<Alarm>(ctx, &id.to_string(), check, &command)
            .await
    }

    /// Send an evaluator's `transition` of the alarm `key` (a limit engine's verdict on a
    /// sample at `ordinal`). The command id is derived from the ordinal and the key, so a
    /// replayed batch sends the same command again and the log keeps it once; the alarm
    /// ignores an ordinal not above its last one.
    pub async fn judge(
        &self,
        actor: &str,
        key: AlarmKey,
        transition: Transition,
        value: serde_json::Value,
        sample_time_ms: i64,
        ordinal: u64,
    ) -> Result<Executed<Alarm>, CommandError> {
        let id = AlarmId::for_key(&key);
        let command_id = Uuid::new_v5(
            &TRANSITIONS,
            format!("{ordinal}/{}/{}", key.spacecraft.as_str(), key.parameter).as_bytes(),
        );
        let command = match transition {
            Transition::Raise(severity) | Transition::Escalate(severity) => AlarmCommand::Raise {
                key,
                severity,
                value,
                sample_time_ms,
                ordinal,
            },
            Transition::ReturnToNormal => AlarmCommand::ReturnToNormal {
                value,
                sample_time_ms,
                ordinal,
            },
        };
        let ctx = CommandContext::new(actor, Some(command_id));
        self.execute(&ctx, id, Check::Any, command).await
    }
}
