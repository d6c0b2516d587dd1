//! Agents read model: the `agents` table, its projection and its queries.

use crate::support::{decode, Decoded};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mc_domain::agent::{AgentEvent, AgentStatus};
use mc_eventlog::RecordedCommit;
use mc_projection::{ApplyError, Projection};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub const NAME: &str = "agents";

pub struct Agents;

impl Projection for Agents {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.agent.>"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["agents"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            for rc in commits {
                if let Some(d) = decode::<AgentEvent>(rc, "agent")? {
                    apply_commit(tx, d).await?;
                }
            }
            Ok(())
        })
    }
}

async fn apply_commit(tx: &mut PgConnection, d: Decoded<AgentEvent>) -> Result<(), ApplyError> {
    let (id, position, at) = (d.id, d.position, d.at);
    for (event, version) in &d.events {
        let version = *version;
        match event {
            AgentEvent::Registered {
                name,
                description,
                capabilities,
                metadata,
                status,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO agents (id, name, description, capabilities, metadata, status, \
                     version, position, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(name)
                .bind(description)
                .bind(sqlx::types::Json(capabilities))
                .bind(sqlx::types::Json(metadata))
                .bind(status.as_str())
                .bind(version)
                .bind(position)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            AgentEvent::Updated {
                name,
                description,
                capabilities,
                metadata,
            } => {
                sqlx::query(
                    "UPDATE agents SET name = COALESCE($2, name), \
                     description = COALESCE($3, description), \
                     capabilities = COALESCE($4, capabilities), metadata = COALESCE($5, metadata), \
                     version = $6, position = $7, updated_at = $8 WHERE id = $1",
                )
                .bind(id)
                .bind(name)
                .bind(description)
                .bind(capabilities.as_ref().map(sqlx::types::Json))
                .bind(metadata.as_ref().map(sqlx::types::Json))
                .bind(version)
                .bind(position)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            AgentEvent::StatusChanged { to, .. } => {
                sqlx::query(
                    "UPDATE agents SET status = $2, version = $3, position = $4, updated_at = $5 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(to.as_str())
                .bind(version)
                .bind(position)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            AgentEvent::Removed { .. } => {
                sqlx::query("DELETE FROM agents WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    Ok(())
}

/// An agent as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AgentRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub capabilities: sqlx::types::Json<Vec<String>>,
    pub metadata: sqlx::types::Json<Value>,
    pub status: String,
    pub version: i64,
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, description, capabilities, metadata, status, version, position, \
                       created_at, updated_at";

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM agents WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// One page in id order after `after`, optionally of one status.
pub async fn list(
    pool: &PgPool,
    status: Option<AgentStatus>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM agents WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(status.map(AgentStatus::as_str))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
