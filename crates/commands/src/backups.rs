//! Recording backups in the log (`backup.completed`, `backup.failed`): audited like any change
//! and restored with everything else.

use crate::error::CommandError;
use crate::handler::{CommandContext, Executed, Handler};
use mc_domain::backup::{Backup, BackupCommand, BackupSummary};
use mc_domain::Check;

#[derive(Clone)]
pub struct BackupLog {
    handler: Handler,
}

impl BackupLog {
    pub fn new(handler: Handler) -> Self {
        Self { handler }
    }

    /// Record a completed backup (once; recording it again changes nothing).
    pub async fn completed(
        &self,
        ctx: &CommandContext,
        summary: BackupSummary,
    ) -> Result<Executed<Backup>, CommandError> {
        let id = summary.id.clone();
        self.handler
            .execute::<Backup>(ctx, &id, Check::Any, &BackupCommand::Complete(summary))
            .await
    }

    /// Record a backup that failed, with why.
    pub async fn failed(
        &self,
        ctx: &CommandContext,
        id: &str,
        reason: String,
        scheduled: bool,
    ) -> Result<Executed<Backup>, CommandError> {
        self.handler
            .execute::<Backup>(
                ctx,
                id,
                Check::Any,
                &BackupCommand::Fail { reason, scheduled },
            )
            .await
    }
}
