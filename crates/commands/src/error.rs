//! Errors of the command path, each mapping to one HTTP status / NATS error code.

use mc_domain::{ConflictError, DomainError};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// `If-Match` named another version than the current one.
    #[error("precondition failed: {0}")]
    Precondition(ConflictError),
    /// Concurrent writers kept winning; the bounded retries are used up.
    #[error("concurrent modification: expected version {expected}, actual {actual}")]
    Concurrency { expected: u64, actual: u64 },
    #[error("name {name:?} is already taken")]
    NameTaken { name: String },
    /// NATS (or the log) cannot be reached; the outcome may be unknown.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// The aggregate's history holds a message that is not a readable commit: retrying cannot
    /// help, and nothing was appended.
    #[error("history cannot be read: {0}")]
    Corrupt(String),
}

impl CommandError {
    /// Whether the command definitely did not take effect (its side reservations may be undone).
    pub fn is_definite(&self) -> bool {
        !matches!(self, Self::Unavailable(_))
    }
}
