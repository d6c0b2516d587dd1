//! Process managers: workers that react to events with commands. They run on the projection
//! runtime (position-checkpointed, their own state in the same transaction), so after a
//! restart they resume where they stopped.
//!
//! Architecture Invariant: a process manager's commands are idempotent against the current
//! state (they check it before acting), because a crash between sending a command and
//! committing the checkpoint replays the batch.

mod agent_status;
mod shelve_expiry;

pub use agent_status::{AgentStatusManager, NAME as AGENT_STATUS};
pub use shelve_expiry::ShelveExpiry;
