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
            // Registrations are gathered into one multi-row insert; any other event first
            // flushes them, so the order of events per agent is kept.
            let mut registrations = Registrations::default();
            for rc in commits {
                let Some(d) = decode::<AgentEvent>(rc, "agent")? else {
                    continue;
                };
                if let [(AgentEvent::Registered { .. }, _)] = d.events.as_slice() {
                    registrations.push(&d);
                    continue;
                }
                registrations.flush(tx).await?;
                apply_commit(tx, d).await?;
            }
            registrations.flush(tx).await?;
            Ok(())
        })
    }
}

/// Column arrays of registrations waiting for one `INSERT … SELECT * FROM UNNEST(…)`.
#[derive(Default)]
struct Registrations {
    id: Vec<Uuid>,
    name: Vec<String>,
    description: Vec<String>,
    capabilities: Vec<Value>,
    metadata: Vec<Value>,
    status: Vec<&'static str>,
    version: Vec<i64>,
    position: Vec<i64>,
    at: Vec<DateTime<Utc>>,
}

impl Registrations {
    fn push(&mut self, d: &Decoded<AgentEvent>) {
        for (event, version) in &d.events {
            if let AgentEvent::Registered {
                name,
                description,
                capabilities,
                metadata,
                status,
                ..
            } = event
            {
                self.id.push(d.id);
                self.name.push(name.clone());
                self.description.push(description.clone());
                self.capabilities.push(Value::from(capabilities.clone()));
                self.metadata.push(Value::Object(metadata.clone()));
                self.status.push(status.as_str());
                self.version.push(*version);
                self.position.push(d.position);
                self.at.push(d.at);
            }
        }
    }

    async fn flush(&mut self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO agents (id, name, description, capabilities, metadata, status, version, \
             position, created_at, updated_at) \
             SELECT i, n, d, c, m, s, v, p, t, t FROM UNNEST($1::uuid[], $2::text[], $3::text[], \
             $4::jsonb[], $5::jsonb[], $6::text[], $7::bigint[], $8::bigint[], $9::timestamptz[]) \
             AS r(i, n, d, c, m, s, v, p, t) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&self.id)
        .bind(&self.name)
        .bind(&self.description)
        .bind(&self.capabilities)
        .bind(&self.metadata)
        .bind(&self.status)
        .bind(&self.version)
        .bind(&self.position)
        .bind(&self.at)
        .execute(&mut *tx)
        .await?;
        *self = Self::default();
        Ok(())
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
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    #[schema(value_type = Vec<String>)]
    pub capabilities: sqlx::types::Json<Vec<String>>,
    #[schema(value_type = Object)]
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
