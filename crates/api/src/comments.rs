//! `/api/v1/comments`: post, list with filters, get, edit, delete.

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
use mc_commands::NewComment;
use mc_domain::comment::CommentType;
use mc_domain::ids::{AgentId, CommentId, MissionId};
use mc_domain::values::{Content, Metadata};
use mc_projections::comments as model;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

pub fn routes(r: Routes) -> Routes {
    r.get("/comments", list)
        .post("/comments", create)
        .get("/comments/{id}", fetch)
        .patch("/comments/{id}", edit)
        .delete("/comments/{id}", remove)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = CommentPost)]
pub struct CreateBody {
    pub content: String,
    #[serde(rename = "type")]
    pub comment_type: Option<String>,
    pub agent_id: Option<String>,
    pub mission_id: Option<String>,
    #[serde(default)]
    pub metadata: Value,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = CommentEdit)]
pub struct EditBody {
    pub content: Option<String>,
    #[serde(rename = "type")]
    pub comment_type: Option<String>,
    pub metadata: Option<Value>,
}

/// The parsed fields of an edit.
pub struct Edit {
    pub content: Option<Content>,
    pub comment_type: Option<CommentType>,
    pub metadata: Option<Metadata>,
}

pub fn parse_create(body: CreateBody) -> Result<NewComment, ApiError> {
    let mut f = Fields::default();
    let content = f.take(Content::parse(&body.content, "content"));
    let comment_type = match body.comment_type.as_deref() {
        Some(t) => f.take(parse_enum::<CommentType>(t, "type")),
        None => Some(CommentType::Note),
    };
    let agent_id = match body.agent_id.as_deref() {
        Some(a) => f.take(AgentId::parse(a, "agentId")).map(Some),
        None => Some(None),
    };
    let mission_id = match body.mission_id.as_deref() {
        Some(m) => f.take(MissionId::parse(m, "missionId")).map(Some),
        None => Some(None),
    };
    let metadata = f.take(Metadata::parse(body.metadata, "metadata"));
    f.finish(|| {
        Some(NewComment {
            id: CommentId::from_uuid(Uuid::now_v7()),
            content: content?,
            comment_type: comment_type?,
            agent_id: agent_id?,
            mission_id: mission_id?,
            metadata: metadata?,
        })
    })
}

pub fn parse_edit(body: EditBody) -> Result<Edit, ApiError> {
    let mut f = Fields::default();
    let edit = Edit {
        content: body
            .content
            .and_then(|c| f.take(Content::parse(&c, "content"))),
        comment_type: body
            .comment_type
            .and_then(|t| f.take(parse_enum::<CommentType>(&t, "type"))),
        metadata: body
            .metadata
            .and_then(|m| f.take(Metadata::parse(m, "metadata"))),
    };
    f.finish(|| Some(edit))
}

fn parse_id(raw: &str) -> Result<CommentId, ApiError> {
    CommentId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let comment = parse_create(body)?;
    let id = comment.id;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.comments.post(&ctx, comment).await?;
    Ok(respond::command(
        StatusCode::CREATED,
        id,
        &done,
        Some("comments"),
    ))
}

async fn edit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<EditBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let check = if_match(&headers)?;
    let e = parse_edit(body)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state
        .comments
        .edit(&ctx, id, check, e.content, e.comment_type, e.metadata)
        .await?;
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
    let done = state.comments.delete(&ctx, id, check).await?;
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
        "comment",
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
    let filter = model::Filter {
        agent_id: q.uuid("agentId", "must be a uuid"),
        mission_id: q.uuid("missionId", "must be a uuid"),
        comment_type: q.enum_value::<CommentType>("type"),
    };
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, page.min_position).await?;
    let items = model::list(&state.pool, &filter, page.cursor, page.fetch()).await?;
    Ok(freshness.wrap(Json(page.render(items, |c| c.id.to_string()))))
}

impl respond::Versioned for model::CommentRow {
    fn version(&self) -> i64 {
        self.version
    }
}
