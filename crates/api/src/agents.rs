//! `/api/v1/agents`: register, list, get, update, remove.

use crate::extract::{etag, if_match, Body, QueryParams};
use crate::problem::ApiError;
use crate::read;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mc_commands::{CommandContext, Executed};
use mc_domain::agent::{Agent, AgentStatus, RegisterAgent, UpdateAgent};
use mc_domain::ids::AgentId;
use mc_domain::values::{Capabilities, Description, Metadata, Name};
use mc_domain::FieldError;
use mc_projections::agents as model;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agents", get(list).post(create))
        .route("/agents/{id}", get(fetch).patch(update).delete(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    metadata: Value,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchBody {
    name: Option<String>,
    description: Option<String>,
    capabilities: Option<Vec<String>>,
    metadata: Option<Value>,
    status: Option<String>,
}

/// Collects field errors while parsing a body into domain values.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn take<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        match (self.0.is_empty(), value()) {
            (true, Some(v)) => Ok(v),
            _ => Err(ApiError::Validation(self.0)),
        }
    }
}

fn status(s: &str) -> Result<AgentStatus, FieldError> {
    s.parse().map_err(|m: String| FieldError::new("status", m))
}

fn capabilities(c: &[String]) -> Result<Capabilities, Vec<FieldError>> {
    Capabilities::parse(c, "capabilities")
}

fn actor(headers: &HeaderMap) -> String {
    headers
        .get("x-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map_or_else(|| "user:anonymous".to_owned(), |s| format!("user:{s}"))
}

fn command_response(status: StatusCode, id: AgentId, done: &Executed<Agent>) -> Response {
    let body = json!({"id": id.to_string(), "version": done.version, "position": done.position});
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(done.version));
    response
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let mut f = Fields::default();
    let name = f.take(Name::parse(&body.name, "name"));
    let description = f.take(Description::parse(&body.description, "description"));
    let caps = capabilities(&body.capabilities)
        .map_err(|e| f.0.extend(e))
        .ok();
    let metadata = f.take(Metadata::parse(body.metadata, "metadata"));
    let st = match body.status.as_deref() {
        Some(s) => f.take(status(s)),
        None => Some(AgentStatus::Idle),
    };
    let id = AgentId::from_uuid(Uuid::now_v7());
    let cmd = f.finish(|| {
        Some(RegisterAgent {
            id,
            name: name?,
            description: description?,
            capabilities: caps?,
            metadata: metadata?,
            status: st?,
        })
    })?;
    let ctx = CommandContext::new(actor(&headers), None);
    let done = state.agents.register(&ctx, cmd).await?;
    let mut response = command_response(StatusCode::CREATED, id, &done);
    if let Ok(location) = format!("/api/v1/agents/{id}").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn parse_id(raw: &str) -> Result<AgentId, ApiError> {
    AgentId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<PatchBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let check = if_match(&headers)?;
    let mut f = Fields::default();
    let cmd = UpdateAgent {
        name: body.name.and_then(|n| f.take(Name::parse(&n, "name"))),
        description: body
            .description
            .and_then(|d| f.take(Description::parse(&d, "description"))),
        capabilities: body
            .capabilities
            .and_then(|c| capabilities(&c).map_err(|e| f.0.extend(e)).ok()),
        metadata: body
            .metadata
            .and_then(|m| f.take(Metadata::parse(m, "metadata"))),
        status: body.status.and_then(|s| f.take(status(&s))),
    };
    let cmd = f.finish(|| Some(cmd))?;
    let ctx = CommandContext::new(actor(&headers), None);
    let done = state.agents.update(&ctx, id, check, cmd).await?;
    Ok(command_response(StatusCode::OK, id, &done))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let check = if_match(&headers)?;
    let ctx = CommandContext::new(actor(&headers), None);
    let done = state.agents.remove(&ctx, id, check).await?;
    Ok(command_response(StatusCode::OK, id, &done))
}

async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut q = QueryParams::new(params);
    let min_position = q.u64("minPosition", 0, i64::MAX as u64);
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, min_position).await?;
    let agent = model::get(&state.pool, id.as_uuid())
        .await?
        .ok_or(ApiError::NotFound { what: "agent" })?;
    let version = agent.version as u64;
    let mut response = freshness.wrap(Json(agent));
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(response)
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let limit = q.u64("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let status = q.parse("status", |s| s.parse::<AgentStatus>());
    let cursor = q.parse("cursor", |s| {
        Uuid::parse_str(s).map_err(|_| "is not a cursor returned by this API".to_owned())
    });
    let min_position = q.u64("minPosition", 0, i64::MAX as u64);
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, min_position).await?;
    let mut items = model::list(&state.pool, status, cursor, limit as i64 + 1).await?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|a| a.id.to_string())
    } else {
        None
    };
    Ok(freshness.wrap(Json(json!({"items": items, "nextCursor": next}))))
}
