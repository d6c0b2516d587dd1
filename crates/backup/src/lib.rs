//! Backups of the event log (`MC_EVENTS`): [`create`] exports a consistent range of positions
//! into zstd segments with a SHA-256 manifest; [`manifest::verify`] re-hashes and decodes every
//! byte; [`restore`] verifies first, then writes into an empty stream (or resumes its own
//! unfinished restore) so that every message keeps its position.
//!
//! Layout of a backup: `<dir>/<id>/manifest.json`, `manifest.sha256`, `events-000001.zst`, ….
//! It is written in `<dir>/<id>.partial/` and renamed once complete, so a crash never leaves a
//! directory that looks like a backup.

pub mod manifest;
pub mod segment;

mod create;
pub mod record;
mod restore;
pub mod service;
mod telemetry;

pub use create::{create, new_id, prune, CreateOptions, Draft};
pub use manifest::{ArchiveHead, Manifest, TelemetryPart, Verified};
pub use restore::{restore, RestoreOptions, Restored, RestoredStream, Until, GAP_SUBJECT};
pub use service::{BackupService, ServiceConfig};
pub use telemetry::TelemetryRange;

/// The stream a backup holds.
pub const EVENTS_STREAM: &str = mc_eventlog::streams::EVENTS;
/// The stream a backup holds a time range of, when asked.
pub const TELEMETRY_STREAM: &str = mc_eventlog::streams::TELEMETRY;

/// Progress of a long operation: `done` of `total` messages.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no backup {0}")]
    UnknownBackup(String),
    #[error("backup {0} was never finished (its writer stopped): create a new one")]
    Incomplete(String),
    #[error("the backup is corrupt: {0}")]
    Corrupt(String),
    #[error("the backup comes from a newer version: {0}")]
    Newer(String),
    #[error("{0}")]
    Refused(String),
    #[error("nats: {0}")]
    Nats(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl BackupError {
    fn nats(e: impl std::fmt::Display) -> Self {
        Self::Nats(e.to_string())
    }
}
