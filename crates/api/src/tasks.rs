//! `/api/v1/tools` and `/api/v1/tasks`: glue over `mc_tasks::TaskService` (the tool registry,
//! task definitions) and their read models.

use crate::auth::{Caller, Routes};
use crate::extract::{parse_value, Body, Fields, QueryParams, DEFAULT_LIMIT, MAX_LIMIT};
use crate::problem::ApiError;
use crate::read;
use crate::respond;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use mc_domain::ids::{AgentId, TaskId, TaskRunId};
use mc_domain::task::run::RunCommand;
use mc_domain::task::{TaskDef, ToolDef, ToolName, Usd};
use mc_domain::Check;
use mc_projections::tasks as model;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

pub fn routes(r: Routes) -> Routes {
    r.get("/tools", list_tools)
        .post("/tools", define_tool)
        .get("/tools/{name}", fetch_tool)
        .get("/tasks", list_tasks)
        .post("/tasks", create_task)
        .get("/tasks/{id}", fetch_task)
        .put("/tasks/{id}/budget", task_budget)
        .put("/agents/{id}/budget", agent_budget)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ToolDefinition)]
pub(crate) struct ToolBody {
    name: String,
    #[serde(default)]
    description: String,
    risk: String,
    schema: Value,
}

/// A tool definition from its fields (`POST /tools`, `mc.cmd.tool.define`).
pub(crate) fn parse_tool(body: Value) -> Result<(ToolName, ToolDef), ApiError> {
    let body: ToolBody = parse_value(body)?;
    let mut f = Fields::default();
    let name = f.take(ToolName::parse(&body.name, "name"));
    let def = match ToolDef::parse(&body.description, &body.risk, body.schema) {
        Ok(d) => Some(d),
        Err(mc_domain::DomainError::Validation(e)) => {
            f.0.extend(e);
            None
        }
        Err(e) => return Err(mc_commands::CommandError::from(e).into()),
    };
    f.finish(|| Some((name?, def?)))
}

/// Register a tool, or redefine it (a new version; the same definition again changes nothing).
async fn define_tool(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    let (name, def) = parse_tool(body)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.tasks.define_tool(&ctx, &name, def).await?;
    let status = if done.version == 1 && done.position.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(respond::command(status, &name, &done, Some("tools")))
}

async fn fetch_tool(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let name = ToolName::parse(&name, "name").map_err(|e| ApiError::Validation(vec![e]))?;
    let pool = state.pool.clone();
    respond::one(&state, model::NAME, params, "tool", async move {
        model::tool(&pool, name.as_str()).await
    })
    .await
}

/// Tools by name; `cursor` is the last name of the previous page.
async fn list_tools(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let limit = q.u64("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let cursor = q.parse("cursor", |s| {
        ToolName::parse(s, "cursor")
            .map(|n| n.as_str().to_owned())
            .map_err(|_| "is not a cursor returned by this API".to_owned())
    });
    let min_position = q.min_position();
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, min_position).await?;
    let items = model::tools(&state.pool, cursor.as_deref(), limit as i64 + 1).await?;
    let page = crate::extract::Page {
        limit,
        cursor: None,
        min_position,
    };
    Ok(freshness.wrap(Json(page.render(items, |t| t.name.clone()))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = TaskDefinition)]
pub(crate) struct TaskBody {
    title: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    allowed_tools: Vec<String>,
    budget_usd: Option<f64>,
    /// `auto` (default) or `operator`: who approves the task's SAFE_MUTATE calls.
    safe_mutate_approval: Option<String>,
}

/// A task definition from its fields (`POST /tasks`, `mc.cmd.task.create`).
pub(crate) fn parse_task(body: Value) -> Result<TaskDef, ApiError> {
    let body: TaskBody = parse_value(body)?;
    TaskDef::parse(
        &body.title,
        &body.prompt,
        &body.allowed_tools,
        body.safe_mutate_approval.as_deref(),
        body.budget_usd,
    )
    .map_err(|e| mc_commands::CommandError::from(e).into())
}

async fn create_task(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    let def = parse_task(body)?;
    let id = TaskId::from_uuid(uuid::Uuid::now_v7());
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let done = state.tasks.create_task(&ctx, id, def).await?;
    Ok(respond::command(
        StatusCode::CREATED,
        id,
        &done,
        Some("tasks"),
    ))
}

async fn fetch_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = TaskId::parse(&id, "id").map_err(|e| ApiError::Validation(vec![e]))?;
    let pool = state.pool.clone();
    respond::one(&state, model::NAME, params, "task", async move {
        model::task(&pool, id.as_uuid()).await
    })
    .await
}

async fn list_tasks(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = QueryParams::new(params);
    let page = q.page();
    q.finish()?;
    let freshness = read::wait(&state, model::NAME, page.min_position).await?;
    let items = model::tasks(&state.pool, page.cursor, page.fetch()).await?;
    Ok(freshness.wrap(Json(page.render(items, |t| t.id.to_string()))))
}

impl respond::Versioned for model::ToolRow {
    fn version(&self) -> i64 {
        self.version
    }
}

impl respond::Versioned for model::TaskRow {
    fn version(&self) -> i64 {
        self.version
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = Budget)]
pub(crate) struct BudgetBody {
    /// Dollars; `null` lifts the limit.
    budget_usd: Option<f64>,
}

fn parse_budget(b: BudgetBody) -> Result<Option<Usd>, ApiError> {
    b.budget_usd
        .map(|v| Usd::parse(v, "budgetUsd"))
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))
}

/// Set a task's budget (its runs' LLM spend together); runs it blocked whose spend is now
/// within every budget go on, and the task's BUDGET alarm returns to normal.
async fn task_budget(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<BudgetBody>,
) -> Result<Response, ApiError> {
    let id = TaskId::parse(&id, "id").map_err(|e| ApiError::Validation(vec![e]))?;
    set_budget(state, caller, headers, body, Whose::Task(id)).await
}

/// Set an agent's budget (the LLM spend of all the runs it executes), like [`task_budget`].
async fn agent_budget(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<BudgetBody>,
) -> Result<Response, ApiError> {
    let id = AgentId::parse(&id, "id").map_err(|e| ApiError::Validation(vec![e]))?;
    set_budget(state, caller, headers, body, Whose::Agent(id)).await
}

#[derive(Clone, Copy)]
enum Whose {
    Task(TaskId),
    Agent(AgentId),
}

async fn set_budget(
    state: AppState,
    caller: mc_auth::Principal,
    headers: HeaderMap,
    body: BudgetBody,
    whose: Whose,
) -> Result<Response, ApiError> {
    let budget = parse_budget(body)?;
    let ctx = match crate::idempotency::begin(&state, &headers, &caller).await? {
        Ok(ctx) => ctx,
        Err(replayed) => return Ok(replayed),
    };
    let (id, scope, position, mut response, blocked, spent) = match whose {
        Whose::Task(id) => {
            let done = state.tasks.set_task_budget(&ctx, id, budget).await?;
            let blocked = model::budget_blocked_runs(&state.pool, Some(id.as_uuid()), None).await?;
            let (spent, _) = mc_projections::usage::spent(&state.pool, id.as_uuid(), None).await?;
            let response = respond::command(StatusCode::OK, id, &done, None);
            (
                id.as_uuid(),
                "task",
                done.position,
                response,
                blocked,
                spent,
            )
        }
        Whose::Agent(id) => {
            let done = state.tasks.set_agent_budget(&ctx, id, budget).await?;
            let blocked = model::budget_blocked_runs(&state.pool, None, Some(id.as_uuid())).await?;
            let (_, spent) =
                mc_projections::usage::spent(&state.pool, uuid::Uuid::nil(), Some(id.as_uuid()))
                    .await?;
            let response = respond::command(StatusCode::OK, id, &done, None);
            (
                id.as_uuid(),
                "agent",
                done.position,
                response,
                blocked,
                spent,
            )
        }
    };
    let resumed = resume_within_budget(&state, &caller, blocked, scope, budget).await?;
    let spent = Usd::from_nanos(spent.max(0) as u64);
    if let Some(position) = position {
        if budget.is_none_or(|b| spent <= b) {
            let source = format!("{scope}-{id}");
            crate::task_run_steps::budget_alarm(&state, &source, false, spent, position).await;
        }
    }
    add_resumed(&mut response, resumed).await;
    Ok(response)
}

/// Let the blocked runs go on whose task and agent spend is within their budgets now.
async fn resume_within_budget(
    state: &AppState,
    caller: &mc_auth::Principal,
    blocked: Vec<(uuid::Uuid, uuid::Uuid, Option<uuid::Uuid>)>,
    scope: &str,
    budget: Option<Usd>,
) -> Result<Vec<String>, ApiError> {
    let mut resumed = Vec::new();
    for (run, task, agent) in blocked {
        let (task_spent, agent_spent) =
            mc_projections::usage::spent(&state.pool, task, agent).await?;
        let task_budget = state.tasks.task_budget_now(TaskId::from_uuid(task)).await?;
        let agent_budget = match agent {
            Some(a) => state.tasks.agent_budget(AgentId::from_uuid(a)).await?,
            None => None,
        };
        let within =
            |b: Option<Usd>, spent: i64| b.is_none_or(|b| spent.max(0) as u64 <= b.nanos());
        if !(within(task_budget, task_spent) && within(agent_budget, agent_spent)) {
            continue;
        }
        let reason = match budget {
            Some(b) => format!("the {scope} budget was raised to ${:.6}", b.as_f64()),
            None => format!("the {scope} budget was lifted"),
        };
        let command = RunCommand::ApproveBudget {
            by: caller.actor(),
            reason,
            waive: false,
        };
        let ctx = mc_commands::CommandContext::new(caller.actor(), None);
        match state
            .tasks
            .run(&ctx, TaskRunId::from_uuid(run), Check::Any, command)
            .await
        {
            Ok(_) => resumed.push(run.to_string()),
            // Approved or ended meanwhile: nothing to resume.
            Err(mc_commands::CommandError::Domain(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(resumed)
}

async fn add_resumed(response: &mut Response, resumed: Vec<String>) {
    let body = std::mem::take(response.body_mut());
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    value["resumedRuns"] = resumed.into();
    *response.body_mut() = axum::body::Body::from(value.to_string());
}
