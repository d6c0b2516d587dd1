//! Command handling: load → decide → append, with optimistic concurrency, bounded retries,
//! an aggregate cache, and unique-name reservations.
//!
//! Architecture Invariant: the only writes are appends to the event log; this crate never
//! touches Postgres. Read models learn of every change through projections.

mod agents;
mod alarms;
mod backups;
mod comments;
mod error;
mod handler;
mod missions;
mod names;
mod refs;
mod spacecraft;
mod tokens;

pub use agents::AgentService;
pub use alarms::AlarmService;
pub use backups::BackupLog;
pub use comments::{CommentService, NewComment};
pub use error::CommandError;
pub use handler::{CommandContext, Executed, Handler};
pub use missions::{MissionChanges, MissionService, NewMission};
pub use names::NameRegistry;
pub use spacecraft::SpacecraftService;
pub use tokens::TokenService;
