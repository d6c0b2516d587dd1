//! Missions read model: the `missions` table, its projection and its queries.

use crate::support::decode;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mc_domain::mission::{MissionEvent, MissionStatus, Priority};
use mc_eventlog::RecordedCommit;
use mc_projection::{ApplyError, Projection};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub const NAME: &str = "missions";

pub struct Missions;

impl Projection for Missions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.mission.>"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["missions"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            for rc in commits {
                if let Some(d) = decode::<MissionEvent>(rc, "mission")? {
                    for (event, version) in &d.events {
                        apply(tx, d.id, event, *version, d.position, d.at).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

async fn apply(
    tx: &mut PgConnection,
    id: Uuid,
    event: &MissionEvent,
    version: i64,
    position: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let q = match event {
        MissionEvent::Created {
            title,
            description,
            status,
            priority,
            progress,
            metadata,
            agent_id,
            ..
        } => sqlx::query(
            "INSERT INTO missions (id, version, position, created_at, updated_at, title, description, \
             status, priority, progress, agent_id, metadata) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(version)
        .bind(position)
        .bind(at)
        .bind(title)
        .bind(description)
        .bind(status.as_str())
        .bind(priority.as_str())
        .bind(i16::from(*progress))
        .bind(agent_id.map(|a| a.as_uuid()))
        .bind(Json(metadata)),
        MissionEvent::Updated {
            title,
            description,
            priority,
            metadata,
        } => sqlx::query("UPDATE missions SET version = $2, position = $3, updated_at = $4, title = COALESCE($5, title), description = COALESCE($6, description), priority = COALESCE($7, priority), metadata = COALESCE($8, metadata) WHERE id = $1")
        .bind(id)
        .bind(version)
        .bind(position)
        .bind(at)
        .bind(title)
        .bind(description)
        .bind(priority.map(Priority::as_str))
        .bind(metadata.as_ref().map(Json)),
        MissionEvent::StatusChanged { to, .. } => sqlx::query("UPDATE missions SET version = $2, position = $3, updated_at = $4, status = $5, progress = CASE WHEN $5 = 'COMPLETED' THEN 100 ELSE progress END WHERE id = $1")
        .bind(id)
        .bind(version)
        .bind(position)
        .bind(at)
        .bind(to.as_str()),
        MissionEvent::ProgressUpdated { to, .. } => {
            sqlx::query("UPDATE missions SET version = $2, position = $3, updated_at = $4, progress = $5 WHERE id = $1")
                .bind(id)
                .bind(version)
                .bind(position)
                .bind(at)
                .bind(i16::from(*to))
        }
        MissionEvent::Assigned { agent_id, .. } => {
            sqlx::query("UPDATE missions SET version = $2, position = $3, updated_at = $4, agent_id = $5 WHERE id = $1")
                .bind(id)
                .bind(version)
                .bind(position)
                .bind(at)
                .bind(agent_id.as_uuid())
        }
        MissionEvent::Unassigned { .. } => {
            sqlx::query("UPDATE missions SET version = $2, position = $3, updated_at = $4, agent_id = NULL WHERE id = $1")
                .bind(id)
                .bind(version)
                .bind(position)
                .bind(at)
        }
        MissionEvent::Deleted => sqlx::query("DELETE FROM missions WHERE id = $1").bind(id),
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

/// A mission as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MissionRow {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub progress: i16,
    pub agent_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub metadata: Json<Value>,
    pub version: i64,
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, title, description, status, priority, progress, agent_id, metadata, \
                       version, position, created_at, updated_at";

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<MissionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM missions WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Filters of `GET /missions`; `None` means any.
#[derive(Debug, Default)]
pub struct Filter {
    pub status: Option<MissionStatus>,
    pub priority: Option<Priority>,
    pub agent_id: Option<Uuid>,
}

pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<MissionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM missions WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::text IS NULL OR priority = $2) AND ($3::uuid IS NULL OR agent_id = $3) \
         AND ($4::uuid IS NULL OR id > $4) ORDER BY id LIMIT $5"
    ))
    .bind(filter.status.map(MissionStatus::as_str))
    .bind(filter.priority.map(Priority::as_str))
    .bind(filter.agent_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
