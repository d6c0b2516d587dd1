//! Comments read model: the `comments` table, its projection and its queries.

use crate::support::decode;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mc_domain::comment::{CommentEvent, CommentType};
use mc_eventlog::RecordedCommit;
use mc_projection::{ApplyError, Projection};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub const NAME: &str = "comments";

pub struct Comments;

impl Projection for Comments {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &["mc.events.comment.>"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["comments"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            for rc in commits {
                let Some(d) = decode::<CommentEvent>(rc, "comment")? else {
                    continue;
                };
                for (event, version) in &d.events {
                    let q = match event {
                        CommentEvent::Posted {
                            content,
                            comment_type,
                            agent_id,
                            mission_id,
                            metadata,
                            ..
                        } => sqlx::query(
                            "INSERT INTO comments (id, version, position, created_at, updated_at, content, \
                             type, agent_id, mission_id, metadata) \
                             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                        )
                        .bind(d.id)
                        .bind(version)
                        .bind(d.position)
                        .bind(d.at)
                        .bind(content)
                        .bind(comment_type.as_str())
                        .bind(agent_id.map(|a| a.as_uuid()))
                        .bind(mission_id.map(|m| m.as_uuid()))
                        .bind(Json(metadata)),
                        CommentEvent::Edited {
                            content,
                            comment_type,
                            metadata,
                        } => sqlx::query(
                            "UPDATE comments SET version = $2, position = $3, updated_at = $4, \
                             content = COALESCE($5, content), type = COALESCE($6, type), \
                             metadata = COALESCE($7, metadata) WHERE id = $1",
                        )
                        .bind(d.id)
                        .bind(version)
                        .bind(d.position)
                        .bind(d.at)
                        .bind(content)
                        .bind(comment_type.map(CommentType::as_str))
                        .bind(metadata.as_ref().map(Json)),
                        CommentEvent::Deleted => sqlx::query("DELETE FROM comments WHERE id = $1").bind(d.id),
                    };
                    q.execute(&mut *tx).await?;
                }
            }
            Ok(())
        })
    }
}

/// A comment as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentRow {
    pub id: Uuid,
    pub content: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub comment_type: String,
    pub agent_id: Option<Uuid>,
    pub mission_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub metadata: Json<Value>,
    pub version: i64,
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, content, type, agent_id, mission_id, metadata, version, position, \
                       created_at, updated_at";

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<CommentRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM comments WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Filters of `GET /comments`; `None` means any.
#[derive(Debug, Default)]
pub struct Filter {
    pub agent_id: Option<Uuid>,
    pub mission_id: Option<Uuid>,
    pub comment_type: Option<CommentType>,
}

pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CommentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM comments WHERE ($1::uuid IS NULL OR agent_id = $1) \
         AND ($2::uuid IS NULL OR mission_id = $2) AND ($3::text IS NULL OR type = $3) \
         AND ($4::uuid IS NULL OR id > $4) ORDER BY id LIMIT $5"
    ))
    .bind(filter.agent_id)
    .bind(filter.mission_id)
    .bind(filter.comment_type.map(CommentType::as_str))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
