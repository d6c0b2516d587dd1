//! Idempotent retries beyond NATS's 2-minute duplicate window: a command whose id
//! (`Idempotency-Key` header, or `commandId` on NATS) is already in the archive is answered
//! with its earlier outcome instead of being decided again.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_commands::CommandContext;
use serde_json::{json, Value};
use uuid::Uuid;

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");

/// The outcome of an earlier command with the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub aggregate_id: String,
    pub version: u64,
    pub position: u64,
}

impl Previous {
    /// The reply body both HTTP and NATS use, marked as a replay.
    pub fn body(&self) -> Value {
        json!({"id": self.aggregate_id, "version": self.version, "position": self.position, "replayed": true})
    }
}

/// The earlier outcome of `command_id`, if the archive has it.
pub async fn previous(state: &AppState, command_id: Uuid) -> Result<Option<Previous>, ApiError> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT aggregate_id, aggregate_version, position FROM events WHERE command_id = $1 \
         ORDER BY event_index DESC LIMIT 1",
    )
    .bind(command_id)
    .fetch_optional(&state.pool)
    .await?;
    Ok(row.map(|(aggregate_id, version, position)| Previous {
        aggregate_id,
        version: version as u64,
        position: position as u64,
    }))
}

/// The context of an HTTP command; `Err(response)` when its `Idempotency-Key` was seen before
/// (answer that response and do nothing).
pub async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    caller: &mc_auth::Principal,
) -> Result<Result<CommandContext, Response>, ApiError> {
    let actor = caller.actor();
    let Some(key) = headers.get(HEADER) else {
        return Ok(Ok(CommandContext::new(actor, None)));
    };
    let key = key
        .to_str()
        .ok()
        .and_then(|k| Uuid::parse_str(k.trim()).ok())
        .ok_or_else(|| ApiError::BadHeader {
            header: "Idempotency-Key",
            message: "must be a uuid".into(),
        })?;
    if let Some(prev) = previous(state, key).await? {
        return Ok(Err((StatusCode::OK, Json(prev.body())).into_response()));
    }
    Ok(Ok(CommandContext::new(actor, Some(key))))
}
