//! Command handling: load → decide → append, with optimistic concurrency, bounded retries,
//! an aggregate cache, and unique-name reservations.
//!
//! Architecture Invariant: the only writes are appends to the event log; this crate never
//! touches Postgres. Read models learn of every change through projections.

mod agents;
mod error;
mod handler;
mod names;

pub use agents::AgentService;
pub use error::CommandError;
pub use handler::{CommandContext, Executed, Handler};
pub use names::NameRegistry;
