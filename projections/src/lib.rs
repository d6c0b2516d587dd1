//! The read models: one module per read model with its SQL, plus the migrations.
//!
//! Architecture Invariant: read-model tables are written only by their projection, inside
//! the projector's batch transaction; the API only reads them.

pub mod agents;
pub mod alarms;
pub mod archive;
pub mod audit;
pub mod comments;
pub mod events;
pub mod missions;
pub mod spacecraft;
mod support;
pub mod tasks;
pub mod usage;

use mc_projection::Projection;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;
use std::sync::Arc;

/// Every projection that `serve` runs.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(archive::Archive),
        Arc::new(agents::Agents),
        Arc::new(missions::Missions),
        Arc::new(comments::Comments),
        Arc::new(spacecraft::SpacecraftRegistry),
        Arc::new(alarms::Alarms),
        Arc::new(tasks::Tasks),
        Arc::new(usage::Usage),
    ]
}

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "event archive",
        include_str!("../../migrations/0001_event_archive.sql"),
    ),
    (
        2,
        "agents",
        include_str!("../../migrations/0002_agents.sql"),
    ),
    (
        3,
        "missions and comments",
        include_str!("../../migrations/0003_missions_comments.sql"),
    ),
    (
        4,
        "event log identity",
        include_str!("../../migrations/0004_event_log_identity.sql"),
    ),
    (
        5,
        "replay until",
        include_str!("../../migrations/0005_replay_until.sql"),
    ),
    (
        6,
        "tamper-evident archive and roles",
        include_str!("../../migrations/0006_tamper_evident_archive.sql"),
    ),
    (
        7,
        "projection failures",
        include_str!("../../migrations/0007_projection_failures.sql"),
    ),
    (
        8,
        "projection rebuilds",
        include_str!("../../migrations/0008_projection_rebuilds.sql"),
    ),
    (
        9,
        "spacecraft",
        include_str!("../../migrations/0009_spacecraft.sql"),
    ),
    (
        10,
        "telemetry",
        include_str!("../../migrations/0010_telemetry.sql"),
    ),
    (
        11,
        "alarms",
        include_str!("../../migrations/0011_alarms.sql"),
    ),
    (
        12,
        "telemetry retention",
        include_str!("../../migrations/0012_telemetry_retention.sql"),
    ),
    (
        13,
        "least privilege",
        include_str!("../../migrations/0013_least_privilege.sql"),
    ),
    (
        14,
        "audit queries",
        include_str!("../../migrations/0014_audit_queries.sql"),
    ),
    (15, "tasks", include_str!("../../migrations/0015_tasks.sql")),
    (16, "usage", include_str!("../../migrations/0016_usage.sql")),
    (
        17,
        "budgets",
        include_str!("../../migrations/0017_budgets.sql"),
    ),
    (
        18,
        "fleet metrics",
        include_str!("../../migrations/0018_fleet.sql"),
    ),
];

/// The embedded migrations of `migrations/` (kept in this list in order).
pub fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Highest migration version this binary knows (readiness compares it to the database).
pub fn latest_migration() -> i64 {
    MIGRATIONS.iter().map(|(v, _, _)| *v).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
        let files = std::fs::read_dir(dir).unwrap().filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        });
        assert_eq!(files.count(), super::MIGRATIONS.len());
    }
}
