//! Projection runtime: a projector reads `MC_EVENTS` from its Postgres checkpoint + 1 and
//! applies each batch together with its new checkpoint in one transaction.
//!
//! Architecture Invariant: the checkpoint row in `projection_checkpoints` is the truth about
//! what a read model contains; the consumer is ephemeral (ordered, no acks) and is recreated
//! from the checkpoint on every start.
//! Architecture Invariant: each batch transaction locks its checkpoint row and skips commits at
//! or below it, so two processes running the same projector never apply a commit twice.

mod checkpoint;
mod runner;
mod wait;

pub use checkpoint::{load_checkpoint, CHECKPOINT_TABLE};
pub use runner::{Projector, ProjectorError, ProjectorStatus};
pub use wait::Positions;

use futures::future::BoxFuture;
use mc_eventlog::RecordedCommit;
use sqlx::PgConnection;

/// A read model fed from the event log.
pub trait Projection: Send + Sync + 'static {
    /// Unique name; the checkpoint key.
    fn name(&self) -> &'static str;

    /// Called each time the projector (re)starts, before any batch: its checkpoint and the
    /// log's last position at that moment. Process managers use it to stay silent while they
    /// replay history from the beginning.
    fn on_start(&self, checkpoint: u64, head: u64) {
        let _ = (checkpoint, head);
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
