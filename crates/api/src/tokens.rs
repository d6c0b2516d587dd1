//! `/tokens`: issue (the secret is in the answer, once), list and revoke API tokens (admin).

use crate::auth::{Caller, Routes};
use crate::extract::Body;
use crate::problem::ApiError;
use crate::spacecraft::parse_time;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_auth::tokens::{self, NewToken};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/tokens", list)
        .post("/tokens", create)
        .delete("/tokens/{id}", revoke)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = TokenRequest)]
pub(crate) struct CreateBody {
    name: String,
    role: String,
    #[serde(default)]
    spacecraft: Vec<String>,
    /// RFC 3339 or epoch milliseconds.
    expires_at: Option<Value>,
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tokens = state.auth.tokens();
    Ok(Json(json!({"items": tokens.list(), "position": tokens.position()})).into_response())
}

async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let expires_at = body
        .expires_at
        .as_ref()
        .map(|v| parse_time(v, "expiresAt"))
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        // A replay cannot show the secret again: it was shown once.
        Err(replayed) => return Ok(replayed),
    };
    let new = NewToken {
        name: body.name,
        role: body.role,
        spacecraft: body.spacecraft,
        expires_at,
    };
    let (secret, done) = tokens::issue(&state.tokens, &ctx, new).await?;
    let mut body = json!({
        "id": secret.id.to_string(),
        "token": secret.expose(),
        "version": done.version,
        "position": done.position,
    });
    if let mc_domain::token::Token::Active(d) = &done.state {
        body["name"] = json!(d.name);
        body["role"] = json!(d.role.as_str());
        body["spacecraft"] = json!(d.spacecraft);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = tokens::parse_id(&id).map_err(|e| ApiError::Validation(vec![e]))?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state
        .tokens
        .revoke(&ctx, id, Some(format!("revoked by {}", caller.actor())))
        .await?;
    Ok(crate::respond::command(StatusCode::OK, id, &done, None))
}
