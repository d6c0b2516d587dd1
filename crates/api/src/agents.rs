//! `/api/v1/agents`: register, list, get, update, remove.

use crate::auth::{Caller, Routes};
use crate::extract::{if_match, Body, Fields, QueryParams};
use crate::problem::ApiError;
use crate::read;
use crate::respond;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use mc_domain::agent::{AgentStatus, RegisterAgent, UpdateAgent};
use mc_domain::ids::AgentId;
use mc_domain::values::{parse_reason, Capabilities, Description, Metadata, Name};
use mc_domain::FieldError;
use mc_projections::agents as model;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

pub fn routes(r: Routes) -> Routes {
    r.get("/agents", list)
        .post("/agents", create)
        .get("/agents/{id}", fetch)
        .patch("/agents/{id}", update)
        .delete("/agents/{id}", remove)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = AgentRegistration)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    metadata: Value,
    status: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = AgentChange)]
pub struct PatchBody {
    name: Option<String>,
    description: Option<String>,
    capabilities: Option<Vec<String>>,
    metadata: Option<Value>,
    status: Option<String>,
    /// Why the status changes (kept in the event).
    reason: Option<String>,
}

fn status(s: &str) -> Result<AgentStatus, FieldError> {
    s.parse().map_err(|m: String| FieldError::new("status", m))
}

fn capabilities(c: &[String]) -> Result<Capabilities, Vec<FieldError>> {
    Capabilities::parse(c, "capabilities")
}

async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let cmd = parse_register(body)?;
    let id = cmd.id;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.agents.register(&ctx, cmd).await?;
    Ok(respond::command(
        StatusCode::CREATED,
        id,
        &done,
        Some("agents"),
    ))
}

/// Parse a registration (HTTP body or NATS command) into the domain command.
pub fn parse_register(body: CreateBody) -> Result<RegisterAgent, ApiError> {
    let mut f = Fields::default();
    let name = f.take(Name::parse(&body.name, "name"));
    let description = f.take(Description::parse(&body.description, "description"));
    let caps = f.take_all(capabilities(&body.capabilities));
    let metadata = f.take(Metadata::parse(body.metadata, "metadata"));
    let st = match body.status.as_deref() {
        Some(s) => f.take(status(s)),
        None => Some(AgentStatus::Idle),
    };
    f.finish(|| {
        Some(RegisterAgent {
            id: AgentId::from_uuid(Uuid::now_v7()),
            name: name?,
            description: description?,
            capabilities: caps?,
            metadata: metadata?,
            status: st?,
        })
    })
}

/// Parse an update (HTTP PATCH body or NATS command): the changes and the status reason.
pub fn parse_update(body: PatchBody) -> Result<(UpdateAgent, Option<String>), ApiError> {
    let mut f = Fields::default();
    let cmd = UpdateAgent {
        name: body.name.and_then(|n| f.take(Name::parse(&n, "name"))),
        description: body
            .description
            .and_then(|d| f.take(Description::parse(&d, "description"))),
        capabilities: body.capabilities.and_then(|c| f.take_all(capabilities(&c))),
        metadata: body
            .metadata
            .and_then(|m| f.take(Metadata::parse(m, "metadata"))),
        status: body.status.and_then(|s| f.take(status(&s))),
    };
    let reason = match body.reason {
        Some(r) => f.take(parse_reason(&r, "reason")).map(Some),
        None => Some(None),
    };
    f.finish(|| Some((cmd, reason?)))
}

fn parse_id(raw: &str) -> Result<AgentId, ApiError> {
    AgentId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<PatchBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let check = if_match(&headers)?;
    let (cmd, reason) = parse_update(body)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = match (reason, cmd.status) {
        // A status with its reason and nothing else is a status change with that reason.
        (Some(reason), Some(status))
            if cmd.name.is_none()
                && cmd.description.is_none()
                && cmd.capabilities.is_none()
                && cmd.metadata.is_none() =>
        {
            state
                .agents
                .change_status(&ctx, id, check, status, Some(reason))
                .await?
        }
        (Some(_), _) => {
            return Err(ApiError::field(
                "reason",
                "goes only with status and no other field",
            ))
        }
        (None, _) => state.agents.update(&ctx, id, check, cmd).await?,
    };
    Ok(respond::command(StatusCode::OK, id, &done, None))
}

async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let check = if_match(&headers)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.agents.remove(&ctx, id, check).await?;
    Ok(respond::command(StatusCode::OK, id, &done, None))
}

async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let pool = state.pool.clone();
    respond::one(
        &state,
        model::NAME,
        params,
        "agent",
        model::get(&pool, id.as_uuid()),
    )
    .await
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let page = q.page();
    let status = q.enum_value::<AgentStatus>("status");
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, page.min_position).await?;
    let items = model::list(&state.pool, status, page.cursor, page.fetch()).await?;
    Ok(freshness.wrap(Json(page.render(items, |a| a.id.to_string()))))
}

impl respond::Versioned for model::AgentRow {
    fn version(&self) -> i64 {
        self.version
    }
}
