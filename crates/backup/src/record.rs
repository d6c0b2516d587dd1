//! Every backup is recorded in the event log (`backup.completed` with its positions and the
//! manifest's SHA-256, or `backup.failed` with why), with the principal or schedule that
//! started it as the actor. The command id comes from the backup id, so recording twice is one
//! record.

use crate::Manifest;
use mc_commands::{BackupLog, CommandContext};
use mc_domain::backup::BackupSummary;
use uuid::Uuid;

const NAMESPACE: Uuid = Uuid::from_u128(0x6d63_6261_636b_7570_7265_636f_7264_0001);

fn ctx(actor: &str, id: &str, what: &str) -> CommandContext {
    CommandContext::new(
        actor,
        Some(Uuid::new_v5(&NAMESPACE, format!("{what}/{id}").as_bytes())),
    )
}

/// Record a completed backup. A failure to record is logged, never fatal: the backup on disk
/// stands on its own.
pub async fn completed(log: &BackupLog, actor: &str, m: &Manifest, digest: &str, scheduled: bool) {
    let summary = BackupSummary {
        id: m.id.clone(),
        first: m.first,
        last: m.last,
        messages: m.messages,
        compressed_bytes: m.compressed_bytes,
        manifest_sha256: digest.to_owned(),
        scheduled,
    };
    if let Err(e) = log
        .completed(&ctx(actor, &m.id, "completed"), summary)
        .await
    {
        tracing::warn!(id = %m.id, error = %e, "backup completed but could not be recorded in the log");
    }
}

/// Record a failed backup with its reason.
pub async fn failed(log: &BackupLog, actor: &str, id: &str, reason: &str, scheduled: bool) {
    if let Err(e) = log
        .failed(&ctx(actor, id, "failed"), id, reason.to_owned(), scheduled)
        .await
    {
        tracing::warn!(id, error = %e, "backup failure could not be recorded in the log");
    }
}
