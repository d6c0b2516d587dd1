//! Projection runtime: a projector reads `MC_EVENTS` from its Postgres checkpoint + 1 and
//! applies each batch together with its new checkpoint in one transaction.
//!
//! Architecture Invariant: the checkpoint row in `projection_checkpoints` is the truth about
//! what a read model contains; the consumer is ephemeral (ordered, no acks) and is recreated
//! from the checkpoint on every start.
//! Architecture Invariant: each batch transaction locks its checkpoint row and skips commits at
//! or below it, so two processes running the same projector never apply a commit twice.

mod checkpoint;
mod poison;
pub mod rebuild;
mod runner;
mod stream;
mod wait;

pub use checkpoint::{
    create_checkpoint, load_checkpoint, lock_checkpoint, store_checkpoint, CHECKPOINT_TABLE,
};
pub use poison::{classify, PoisonPolicy, SinkError};
pub use rebuild::{Progress, Rebuild, RebuildError};
pub use runner::Projector;
pub use stream::{
    CheckpointedStream, Monitor, ProjectorError, ProjectorStatus, Sink, StreamConfig, StreamMessage,
};
pub use wait::Positions;

use futures::future::BoxFuture;
use mc_eventlog::RecordedCommit;
use sqlx::PgConnection;

/// A read model fed from the event log.
pub trait Projection: Send + Sync + 'static {
    /// Unique name; the checkpoint key.
    fn name(&self) -> &'static str;

    /// Version of the projection's code and tables.
    fn version(&self) -> u32 {
        1
    }

    /// Subjects it reads (every projector reads all of `MC_EVENTS` and skips the rest).
    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.>"]
    }

    /// Tables it owns.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Before each batch: positions up to `position` are a replay of history (the projection's
    /// first run over an existing log, or a rebuild). Process managers must rebuild their state
    /// there without side effects; read models ignore it.
    fn replay_until(&self, position: u64) {
        let _ = position;
    }

    /// Apply `commits` (in position order, all above the checkpoint) inside the batch
    /// transaction. An error rolls back the whole batch.
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>>;
}

/// Why a projection could not apply a commit.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The commit's content cannot be applied (undecodable, unknown type, broken invariant).
    #[error("cannot apply position {position}: {reason}")]
    Poison { position: u64, reason: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A dependency (NATS) failed; the batch is rolled back and retried.
    #[error("transient failure: {0}")]
    Transient(String),
}
