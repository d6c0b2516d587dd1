//! Fleet metrics: who is working, who is stuck, how healthy the system is.
//!
//! - [`fold`]: the pure fold of the log into per-agent and system rows and minute buckets,
//!   and the metric alarms it decides;
//! - [`metrics`]: the metrics derived from those rows and the health score's formula;
//! - [`projection`]: the `fleet` projection (checkpointed, replayable) that loads, folds and
//!   stores them, and sends the alarms;
//! - [`liveness`]: heartbeats (kept out of the log) and the sweeper that marks silent agents
//!   OFFLINE;
//! - [`read`]: the queries behind the agents' and system's metric routes.

pub mod fold;
pub mod liveness;
pub mod metrics;
pub mod projection;
pub mod read;

pub use liveness::{Liveness, LivenessConfig};
pub use projection::FleetProjection;
