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
pub mod rows;
mod store;

pub use liveness::{Liveness, LivenessConfig};
pub use projection::FleetProjection;
pub use store::time;

use mc_commands::{CommandContext, CommandError, Executed, Handler};
use mc_domain::fleet::{Fleet, FleetCommand, FleetLimits, FLEET_ID};
use mc_domain::Check;

/// Set the limits on fleet metrics (the same limits again append nothing).
pub async fn configure_limits(
    handler: &Handler,
    ctx: &CommandContext,
    check: Check,
    limits: FleetLimits,
) -> Result<Executed<Fleet>, CommandError> {
    handler
        .execute::<Fleet>(ctx, FLEET_ID, check, &FleetCommand::ConfigureLimits(limits))
        .await
}

/// The limits in force as the read model has them, in their stored form
/// (`{"agent": {…}, "system": {…}}`).
pub async fn limits(pool: &sqlx::PgPool) -> Result<serde_json::Value, sqlx::Error> {
    let stored: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT limits FROM fleet_system WHERE id = 1")
            .fetch_optional(pool)
            .await?;
    Ok(stored
        .filter(|v| v.get("agent").is_some())
        .unwrap_or_else(|| serde_json::json!({"agent": {}, "system": {}})))
}
