//! `/api/v1/task-runs`: runs of tasks and the steps their runner reports (tool calls through
//! the policy gate, results, logs, artifacts, the end of the run) and the operators'
//! approvals. Glue over `mc_tasks::TaskService`; a run's whole history is its events in the
//! archive (`GET /task-runs/{id}/events`, the audit query of that aggregate).

use crate::auth::{Caller, Routes};
use crate::extract::{etag, if_match, Body, QueryParams};
use crate::problem::ApiError;
use crate::read;
use crate::respond;
use crate::state::AppState;
use crate::task_run_steps::{parse_create, parse_step, run_id, run_step};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_domain::ids::TaskRunId;
use mc_domain::task::run::RunState;
use mc_projections::tasks as model;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

pub fn routes(r: Routes) -> Routes {
    r.get("/task-runs", list)
        .post("/task-runs", create)
        .get("/task-runs/{id}", fetch)
        .get("/task-runs/{id}/events", events)
        .get("/task-runs/{id}/events/stream", stream)
        .post("/task-runs/{id}/llm-calls", llm_call)
        .post("/task-runs/{id}/tool-calls", tool_call)
        .post("/task-runs/{id}/tool-calls/{call}/approve", approve)
        .post("/task-runs/{id}/tool-calls/{call}/deny", deny)
        .post("/task-runs/{id}/tool-calls/{call}/result", result)
        .post("/task-runs/{id}/logs", log)
        .post("/task-runs/{id}/artifacts", artifact)
        .post("/task-runs/{id}/complete", complete)
        .post("/task-runs/{id}/fail", fail)
        .post("/task-runs/{id}/cancel", cancel)
        .post("/task-runs/{id}/budget/approve", budget_approve)
}

#[allow(clippy::too_many_arguments)]
async fn step_route(
    state: AppState,
    caller: mc_auth::Principal,
    id: String,
    call: Option<String>,
    headers: HeaderMap,
    body: Value,
    step: &str,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let parsed = parse_step(step, call.as_deref(), caller.actor(), body)?;
    let check = if_match(&headers)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let (body, version) = run_step(&state, &ctx, id, check, parsed).await?;
    Ok((status, [(header::ETAG, etag(version))], Json(body)).into_response())
}

/// `POST /task-runs/{id}/<step>` for the steps without a call id.
macro_rules! run_route {
    ($name:ident, $step:literal, $status:expr) => {
        async fn $name(
            State(state): State<AppState>,
            Caller(caller): Caller,
            Path(id): Path<String>,
            headers: HeaderMap,
            Body(body): Body<Value>,
        ) -> Result<Response, ApiError> {
            step_route(state, caller, id, None, headers, body, $step, $status).await
        }
    };
}

/// `POST /task-runs/{id}/tool-calls/{call}/<step>`.
macro_rules! call_route {
    ($name:ident, $step:literal) => {
        async fn $name(
            State(state): State<AppState>,
            Caller(caller): Caller,
            Path((id, call)): Path<(String, String)>,
            headers: HeaderMap,
            Body(body): Body<Value>,
        ) -> Result<Response, ApiError> {
            step_route(
                state,
                caller,
                id,
                Some(call),
                headers,
                body,
                $step,
                StatusCode::OK,
            )
            .await
        }
    };
}

run_route!(llm_call, "llm-call", StatusCode::CREATED);
run_route!(tool_call, "tool-call", StatusCode::CREATED);
run_route!(log, "log", StatusCode::OK);
run_route!(artifact, "artifact", StatusCode::OK);
run_route!(complete, "complete", StatusCode::OK);
run_route!(fail, "fail", StatusCode::OK);
run_route!(cancel, "cancel", StatusCode::OK);
run_route!(budget_approve, "budget-approve", StatusCode::OK);
call_route!(approve, "approve");
call_route!(deny, "deny");
call_route!(result, "result");

/// Queue a run of a task `{taskId, agentId?}` → 201 `{id, version, position}`.
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    let new = parse_create(body)?;
    let id = TaskRunId::from_uuid(uuid::Uuid::now_v7());
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.tasks.create_run(&ctx, id, new).await?;
    Ok(respond::command(
        StatusCode::CREATED,
        id,
        &done,
        Some("task-runs"),
    ))
}

/// A run with its tool calls in order (`toolCalls`).
async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let pool = state.pool.clone();
    respond::one(&state, model::NAME, params, "task run", async move {
        let run = model::run_with_calls(&pool, id.as_uuid()).await?;
        Ok((!run.is_null()).then_some(RunView(run)))
    })
    .await
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct RunView(Value);

impl respond::Versioned for RunView {
    fn version(&self) -> i64 {
        self.0["version"].as_i64().unwrap_or(0)
    }
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let page = q.page();
    let filter = model::RunFilter {
        task_id: q.uuid("taskId", "must be a uuid"),
        agent_id: q.uuid("agentId", "must be a uuid"),
        state: q.parse("state", |s| {
            RunState::parse(s, "state")
                .map(|s| s.as_str().to_owned())
                .map_err(|e| e.message)
        }),
    };
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, page.min_position).await?;
    let items = model::runs(&state.pool, &filter, page.cursor, page.fetch()).await?;
    Ok(freshness.wrap(Json(page.render(items, |r| r.id.to_string()))))
}

/// The run's events from the archive, oldest first: the audit query of this one aggregate
/// (same paging, `format=ndjson|csv` exports).
async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    for fixed in ["aggregate", "id"] {
        if params.contains_key(fixed) {
            return Err(ApiError::field(fixed, "is set by the path"));
        }
    }
    params.insert("aggregate".into(), "task_run".into());
    params.insert("id".into(), id.to_string());
    crate::audit::events(State(state), headers, Query(params)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

/// The run's events live over SSE (the relay's `task-run:<id>` topic, `taskRunEvent` frames),
/// resuming after `Last-Event-ID` (or `?lastEventId=`) with no gap and no duplicate.
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    if !state.tasks.run_exists(id).await? {
        return Err(ApiError::NotFound { what: "task run" });
    }
    let query = crate::live::StreamQuery {
        topics: Some(format!("task-run:{id}")),
        last_event_id: params.last_event_id,
    };
    crate::live::sse(State(state), caller, headers, Query(query)).await
}
