//! `/api/v1/task-runs`: runs of tasks and the steps their runner reports (tool calls through
//! the policy gate, results, logs, artifacts, the end of the run) and the operators'
//! approvals. Glue over `mc_tasks::TaskService`; a run's whole history is its events in the
//! archive (`GET /task-runs/{id}/events`, the audit query of that aggregate).

use crate::auth::{Caller, Routes};
use crate::extract::{if_match, Body, Fields, QueryParams};
use crate::problem::ApiError;
use crate::read;
use crate::respond;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_domain::ids::{AgentId, TaskId, TaskRunId, ToolCallId};
use mc_domain::task::run::{Artifact, LogLevel, RunCommand, RunState, TaskRun};
use mc_domain::task::ToolName;
use mc_projections::tasks as model;
use mc_tasks::NewRun;
use serde::Deserialize;
use serde_json::{json, Value};
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
}

fn run_id(raw: &str) -> Result<TaskRunId, ApiError> {
    TaskRunId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

fn call_id(raw: &str) -> Result<ToolCallId, ApiError> {
    ToolCallId::parse(raw, "callId").map_err(|e| ApiError::Validation(vec![e]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    task_id: String,
    agent_id: Option<String>,
}

/// Queue a run of a task → 201 `{id, version, position}`.
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let mut f = Fields::default();
    let task = f.take(TaskId::parse(&body.task_id, "taskId"));
    let agent = match &body.agent_id {
        Some(a) => f.take(AgentId::parse(a, "agentId")).map(Some),
        None => Some(None),
    };
    let new = f.finish(|| {
        Some(NewRun {
            task: task?,
            agent: agent?,
        })
    })?;
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

/// Run a run command with the caller's idempotency key and `If-Match`; `{id, version,
/// position, state}`.
async fn step(
    state: &AppState,
    caller: &mc_auth::Principal,
    headers: &HeaderMap,
    id: TaskRunId,
    command: RunCommand,
) -> Result<Response, ApiError> {
    let check = if_match(headers)?;
    let ctx = match crate::idempotency::begin(state, headers, caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.tasks.run(&ctx, id, check, command).await?;
    Ok(with_state(
        respond::command(StatusCode::OK, id, &done, None),
        &done.state,
        None,
    )
    .await)
}

/// Add the run's state (and a call's status) to a command's answer.
async fn with_state(response: Response, run: &TaskRun, call: Option<ToolCallId>) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    if let Some(r) = &run.0 {
        value["state"] = r.state.as_str().into();
        value["spentUsd"] = r.spent.as_f64().into();
        if let Some(c) = call.and_then(|c| r.call(c)) {
            value["callId"] = c.id.to_string().into();
            value["callState"] = c.status.as_str().into();
        }
    }
    (parts, Json(value)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LlmCallBody {
    provider: String,
    model: String,
    input_tokens: i64,
    output_tokens: i64,
    #[serde(default)]
    cached_input_tokens: i64,
    #[serde(default)]
    reasoning_tokens: i64,
    #[serde(default)]
    latency_ms: i64,
    #[serde(default)]
    finish_reason: String,
}

/// Record an LLM step → `{…, state, costUsd}`: priced now with the price in force (`costUsd`
/// null when no price of the model is known).
async fn llm_call(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(b): Body<LlmCallBody>,
) -> Result<Response, ApiError> {
    use mc_domain::task::pricing::{parse_name, Tokens};
    let id = run_id(&id)?;
    let mut f = Fields::default();
    let provider = f.take(parse_name(&b.provider, "provider"));
    let model = f.take(parse_name(&b.model, "model").and_then(|m| {
        if m == mc_domain::task::pricing::ANY_MODEL {
            Err(mc_domain::FieldError::new("model", "must name a model"))
        } else {
            Ok(m)
        }
    }));
    let tokens = f.take_all(Tokens::parse(
        b.input_tokens,
        b.output_tokens,
        b.cached_input_tokens,
        b.reasoning_tokens,
    ));
    let latency = f.take(
        u64::try_from(b.latency_ms)
            .map_err(|_| mc_domain::FieldError::new("latencyMs", "must not be negative")),
    );
    let (provider, model, tokens, latency) =
        f.finish(|| Some((provider?, model?, tokens?, latency?)))?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let (done, cost) = state
        .tasks
        .record_llm_call(&ctx, id, provider, model, tokens, latency, b.finish_reason)
        .await?;
    let response = with_state(
        respond::command(StatusCode::CREATED, id, &done, None),
        &done.state,
        None,
    )
    .await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    value["costUsd"] = cost.map(|c| c.as_f64()).into();
    Ok((parts, Json(value)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCallBody {
    tool: String,
    #[serde(default)]
    arguments: Value,
}

/// Request a tool call → `{callId, callState: approved | pending-approval, state, …}`; the
/// arguments are checked against the tool's schema first (422 naming each failing pointer).
async fn tool_call(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ToolCallBody>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let tool = ToolName::parse(&body.tool, "tool").map_err(|e| ApiError::Validation(vec![e]))?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    // Derived from the command id: a retried request names the same call.
    let call = ToolCallId::from_uuid(uuid::Uuid::new_v5(&ctx.command_id, b"tool-call"));
    let done = state
        .tasks
        .request_tool_call(&ctx, id, call, tool, body.arguments)
        .await?;
    Ok(with_state(
        respond::command(StatusCode::CREATED, id, &done, None),
        &done.state,
        Some(call),
    )
    .await)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    reason: String,
}

async fn decide(
    state: AppState,
    caller: mc_auth::Principal,
    id: String,
    call: String,
    headers: HeaderMap,
    body: DecisionBody,
    approve: bool,
) -> Result<Response, ApiError> {
    let (id, call) = (run_id(&id)?, call_id(&call)?);
    // The approver is the authenticated principal, never a name in the body.
    let (by, reason) = (caller.actor(), body.reason);
    let command = if approve {
        RunCommand::Approve { call, by, reason }
    } else {
        RunCommand::Deny { call, by, reason }
    };
    step(&state, &caller, &headers, id, command).await
}

async fn approve(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, call)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<DecisionBody>,
) -> Result<Response, ApiError> {
    decide(state, caller, id, call, headers, body, true).await
}

async fn deny(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, call)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<DecisionBody>,
) -> Result<Response, ApiError> {
    decide(state, caller, id, call, headers, body, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultBody {
    result: Option<Value>,
    error: Option<String>,
}

/// The outcome of an approved call: `{result}` or `{error}`.
async fn result(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, call)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<ResultBody>,
) -> Result<Response, ApiError> {
    let (id, call) = (run_id(&id)?, call_id(&call)?);
    let outcome = match (body.result, body.error) {
        (result, None) => Ok(result.unwrap_or(Value::Null)),
        (None, Some(error)) => Err(error),
        (Some(_), Some(_)) => return Err(ApiError::field("error", "give either result or error")),
    };
    step(
        &state,
        &caller,
        &headers,
        id,
        RunCommand::RecordResult { call, outcome },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogBody {
    #[serde(default = "info")]
    level: String,
    message: String,
}

fn info() -> String {
    "info".into()
}

async fn log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<LogBody>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let level = LogLevel::parse(&body.level, "level").map_err(|e| ApiError::Validation(vec![e]))?;
    let command = RunCommand::Log {
        level,
        message: body.message,
    };
    step(&state, &caller, &headers, id, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ArtifactBody {
    name: String,
    uri: String,
    content_type: String,
    sha256: String,
}

async fn artifact(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(b): Body<ArtifactBody>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let command = RunCommand::AddArtifact(Artifact {
        name: b.name,
        uri: b.uri,
        content_type: b.content_type,
        sha256: b.sha256,
    });
    step(&state, &caller, &headers, id, command).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    #[serde(default)]
    output: String,
}

async fn complete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<CompleteBody>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let command = RunCommand::Complete {
        output: body.output,
    };
    step(&state, &caller, &headers, id, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

async fn fail(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ReasonBody>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let command = RunCommand::Fail {
        reason: body.reason,
    };
    step(&state, &caller, &headers, id, command).await
}

async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ReasonBody>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let command = RunCommand::Cancel {
        reason: body.reason,
    };
    step(&state, &caller, &headers, id, command).await
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
