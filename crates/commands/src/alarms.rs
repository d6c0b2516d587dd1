//! Alarm commands: transitions from the anomaly processor and the stale sweeper, and the
//! operator actions (acknowledge, clear, shelve, unshelve).

use crate::error::CommandError;
use crate::handler::{CommandContext, Executed, Handler};
use mc_domain::alarm::{Alarm, AlarmCommand};
use mc_domain::ids::AlarmId;
use mc_domain::Check;

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
}
