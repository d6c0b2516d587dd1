//! `/api/v1/missions`: create, list with filters, get, change, delete, progress.

use crate::auth::{Caller, Routes};
use crate::extract::{if_match, parse_enum, Body, Fields, QueryParams};
use crate::problem::ApiError;
use crate::read;
use crate::respond;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use mc_commands::{MissionChanges, NewMission};
use mc_domain::ids::{AgentId, MissionId};
use mc_domain::mission::{MissionStatus, Priority, UpdateMission};
use mc_domain::values::{parse_reason, Metadata, MissionDescription, Progress, Title};
use mc_projections::missions as model;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

pub fn routes(r: Routes) -> Routes {
    r.get("/missions", list)
        .post("/missions", create)
        .get("/missions/{id}", fetch)
        .patch("/missions/{id}", change)
        .delete("/missions/{id}", remove)
        .get("/missions/{id}/progress", progress)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = MissionCreate)]
pub struct CreateBody {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub priority: Option<String>,
    #[serde(default)]
    pub metadata: Value,
    pub agent_id: Option<String>,
}

/// A PATCH body. `agentId: null` unassigns; an absent field is left as it is.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = MissionChange)]
pub struct ChangeBody {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<String>,
    pub metadata: Option<Value>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub progress: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub agent_id: Option<Option<String>>,
}

/// Distinguish `"agentId": null` (Some(None)) from an absent field (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub fn parse_create(body: CreateBody) -> Result<NewMission, ApiError> {
    let mut f = Fields::default();
    let title = f.take(Title::parse(&body.title, "title"));
    let description = f.take(MissionDescription::parse(&body.description, "description"));
    let priority = match body.priority.as_deref() {
        Some(p) => f.take(parse_enum::<Priority>(p, "priority")),
        None => Some(Priority::default()),
    };
    let metadata = f.take(Metadata::parse(body.metadata, "metadata"));
    let agent_id = match body.agent_id.as_deref() {
        Some(a) => f.take(AgentId::parse(a, "agentId")).map(Some),
        None => Some(None),
    };
    f.finish(|| {
        Some(NewMission {
            id: MissionId::from_uuid(Uuid::now_v7()),
            title: title?,
            description: description?,
            priority: priority?,
            metadata: metadata?,
            agent_id: agent_id?,
        })
    })
}

pub fn parse_change(body: ChangeBody) -> Result<MissionChanges, ApiError> {
    let mut f = Fields::default();
    let reason = match body.reason.as_deref() {
        Some(r) => f.take(parse_reason(r, "reason")).map(Some),
        None => Some(None),
    };
    let changes = MissionChanges {
        update: UpdateMission {
            title: body.title.and_then(|t| f.take(Title::parse(&t, "title"))),
            description: body
                .description
                .and_then(|d| f.take(MissionDescription::parse(&d, "description"))),
            priority: body
                .priority
                .and_then(|p| f.take(parse_enum::<Priority>(&p, "priority"))),
            metadata: body
                .metadata
                .and_then(|m| f.take(Metadata::parse(m, "metadata"))),
        },
        agent: match body.agent_id {
            Some(Some(a)) => f.take(AgentId::parse(&a, "agentId")).map(Some),
            Some(None) => Some(None),
            None => None,
        },
        progress: body
            .progress
            .and_then(|p| f.take(Progress::parse(p, "progress"))),
        status: body
            .status
            .and_then(|s| f.take(parse_enum::<MissionStatus>(&s, "status")))
            .map(|s| (s, reason.flatten())),
    };
    f.finish(|| Some(changes))
}

fn parse_id(raw: &str) -> Result<MissionId, ApiError> {
    MissionId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let mission = parse_create(body)?;
    let id = mission.id;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.missions.create(&ctx, mission).await?;
    Ok(respond::command(
        StatusCode::CREATED,
        id,
        &done,
        Some("missions"),
    ))
}

async fn change(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ChangeBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let check = if_match(&headers)?;
    let changes = parse_change(body)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.missions.change(&ctx, id, check, changes).await?;
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
    let done = state.missions.delete(&ctx, id, check).await?;
    Ok(respond::command(StatusCode::OK, id, &done, None))
}

async fn load(
    state: &AppState,
    id: &str,
    params: HashMap<String, String>,
) -> Result<(read::Freshness, model::MissionRow), ApiError> {
    let id = parse_id(id)?;
    let mut q = QueryParams::new(params);
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(state, model::NAME, min_position).await?;
    let mission = model::get(&state.pool, id.as_uuid())
        .await?
        .ok_or(ApiError::NotFound { what: "mission" })?;
    Ok((freshness, mission))
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
        "mission",
        model::get(&pool, id.as_uuid()),
    )
    .await
}

async fn progress(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (freshness, m) = load(&state, &id, params).await?;
    let body = json!({
        "id": m.id, "progress": m.progress, "status": m.status, "agentId": m.agent_id,
        "version": m.version, "updatedAt": m.updated_at,
    });
    Ok(freshness.wrap(Json(body)))
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let page = q.page();
    let filter = model::Filter {
        status: q.enum_value::<MissionStatus>("status"),
        priority: q.enum_value::<Priority>("priority"),
        agent_id: q.uuid("agentId", "must be a uuid"),
    };
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, page.min_position).await?;
    let items = model::list(&state.pool, &filter, page.cursor, page.fetch()).await?;
    Ok(freshness.wrap(Json(page.render(items, |m| m.id.to_string()))))
}

impl respond::Versioned for model::MissionRow {
    fn version(&self) -> i64 {
        self.version
    }
}
