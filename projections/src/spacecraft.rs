//! Spacecraft read model: `spacecraft` and the history of their limits in `spacecraft_limits`.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mc_domain::spacecraft::SpacecraftEvent;
use mc_eventlog::{EventSchema, RecordedCommit};
use mc_projection::{ApplyError, Projection};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

pub const NAME: &str = "spacecraft";

pub struct SpacecraftRegistry;

impl Projection for SpacecraftRegistry {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.spacecraft.>"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["spacecraft", "spacecraft_limits"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            for rc in commits {
                // Spacecraft ids are text, not uuids: decode without the uuid id check.
                if rc.commit.aggregate_type != "spacecraft" {
                    continue;
                }
                let c = &rc.commit;
                let events: Vec<SpacecraftEvent> =
                    c.domain_events().map_err(|e| ApplyError::Poison {
                        position: rc.position,
                        reason: e.to_string(),
                    })?;
                for (event, stored) in events.iter().zip(&c.events) {
                    apply(
                        tx,
                        &c.aggregate_id,
                        event,
                        stored.aggregate_version as i64,
                        rc.position as i64,
                        c.meta.occurred_at,
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }
}

async fn apply(
    tx: &mut PgConnection,
    id: &str,
    event: &SpacecraftEvent,
    version: i64,
    position: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    match event {
        SpacecraftEvent::Registered { name, metadata, .. } => {
            sqlx::query(
                "INSERT INTO spacecraft (id, name, metadata, version, position, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(name)
            .bind(Json(metadata))
            .bind(version)
            .bind(position)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        SpacecraftEvent::LimitsConfigured { effective_at, .. } => {
            // Store the parameters in their stored-schema form (camelCase, as the API shows).
            let (_, _, payload) = event.to_stored();
            let effective = DateTime::<Utc>::from_timestamp_millis(*effective_at).unwrap_or(at);
            sqlx::query(
                "INSERT INTO spacecraft_limits (spacecraft_id, version, effective_at, parameters, position, configured_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(version)
            .bind(effective)
            .bind(&payload["parameters"])
            .bind(position)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE spacecraft SET version = $2, position = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(version)
            .bind(position)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpacecraftRow {
    pub id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub metadata: Json<Value>,
    pub version: i64,
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, metadata, version, position, created_at, updated_at";

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<SpacecraftRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM spacecraft WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// One page in id order after `after`.
pub async fn list(
    pool: &PgPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<SpacecraftRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM spacecraft WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A limits configuration as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsRow {
    pub spacecraft_id: String,
    pub version: i64,
    pub effective_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub parameters: Json<Value>,
    pub configured_at: DateTime<Utc>,
}

/// The limits in force at `at`: the latest effective time not after it (latest version on ties).
pub async fn limits_at(
    pool: &PgPool,
    id: &str,
    at: DateTime<Utc>,
) -> Result<Option<LimitsRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT spacecraft_id, version, effective_at, parameters, configured_at FROM spacecraft_limits \
         WHERE spacecraft_id = $1 AND effective_at <= $2 ORDER BY effective_at DESC, version DESC LIMIT 1",
    )
    .bind(id)
    .bind(at)
    .fetch_optional(pool)
    .await
}

/// Every limits configuration of a spacecraft, oldest first.
pub async fn limits_history(pool: &PgPool, id: &str) -> Result<Vec<LimitsRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT spacecraft_id, version, effective_at, parameters, configured_at FROM spacecraft_limits \
         WHERE spacecraft_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}
