//! Task read models: `tools` (the registry), `tasks`, `task_runs` and `task_run_calls`, with
//! their queries. A run's full history (logs, results) is the archive's
//! (`GET /task-runs/{id}/events`); these tables hold what lists and dashboards show.

use crate::support::{decode, Decoded};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mc_domain::task::budget::AgentBudgetSet;
use mc_domain::task::run::{CallStatus, RunEvent};
use mc_domain::task::{TaskEvent, ToolEvent};
use mc_eventlog::RecordedCommit;
use mc_projection::{ApplyError, Projection};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub const NAME: &str = "tasks";

pub struct Tasks;

impl Projection for Tasks {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subjects(&self) -> &'static [&'static str] {
        &[
            "mc.events.tool.>",
            "mc.events.task.>",
            "mc.events.task_run.>",
            "mc.events.agent_budget.>",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "tools",
            "tasks",
            "task_runs",
            "task_run_calls",
            "agent_budgets",
        ]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        commits: &'a [RecordedCommit],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            for rc in commits {
                if rc.commit.aggregate_type == "tool" {
                    apply_tool(tx, rc).await?;
                } else if let Some(d) = decode::<TaskEvent>(rc, "task")? {
                    apply_task(tx, &d).await?;
                } else if let Some(d) = decode::<AgentBudgetSet>(rc, "agent_budget")? {
                    for (AgentBudgetSet(budget), _) in &d.events {
                        sqlx::query(
                            "INSERT INTO agent_budgets (agent_id, budget_nanos, position) VALUES ($1, $2, $3) \
                             ON CONFLICT (agent_id) DO UPDATE SET budget_nanos = EXCLUDED.budget_nanos, position = EXCLUDED.position",
                        )
                        .bind(d.id)
                        .bind(budget.map(|b| b.nanos() as i64))
                        .bind(d.position)
                        .execute(&mut *tx)
                        .await?;
                    }
                } else if let Some(d) = decode::<RunEvent>(rc, "task_run")? {
                    for (event, version) in &d.events {
                        apply_run(tx, &d, event, *version).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

async fn apply_tool(tx: &mut PgConnection, rc: &RecordedCommit) -> Result<(), ApplyError> {
    let c = &rc.commit;
    let events: Vec<ToolEvent> = c.domain_events().map_err(|e| ApplyError::Poison {
        position: rc.position,
        reason: e.to_string(),
    })?;
    for (event, stored) in events.iter().zip(&c.events) {
        let ToolEvent::Defined(d) = event;
        sqlx::query(
            "INSERT INTO tools (name, description, risk, schema, version, position, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO UPDATE SET \
             description = EXCLUDED.description, risk = EXCLUDED.risk, schema = EXCLUDED.schema, \
             version = EXCLUDED.version, position = EXCLUDED.position, updated_at = EXCLUDED.updated_at",
        )
        .bind(&c.aggregate_id)
        .bind(&d.description)
        .bind(d.risk.as_str())
        .bind(Json(&d.schema))
        .bind(stored.aggregate_version as i64)
        .bind(rc.position as i64)
        .bind(c.meta.occurred_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn apply_task(tx: &mut PgConnection, d: &Decoded<TaskEvent>) -> Result<(), sqlx::Error> {
    for (event, version) in &d.events {
        let t = match event {
            TaskEvent::Created(t) => t,
            TaskEvent::BudgetChanged(b) => {
                sqlx::query(
                    "UPDATE tasks SET budget_nanos = $2, version = $3, position = $4 WHERE id = $1",
                )
                .bind(d.id)
                .bind(b.map(|b| b.nanos() as i64))
                .bind(version)
                .bind(d.position)
                .execute(&mut *tx)
                .await?;
                continue;
            }
        };
        let tools: Vec<String> = t.allowed_tools.iter().map(|t| t.to_string()).collect();
        sqlx::query(
            "INSERT INTO tasks (id, title, prompt, allowed_tools, safe_mutate, budget_nanos, version, position, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        )
        .bind(d.id)
        .bind(&t.title)
        .bind(&t.prompt)
        .bind(&tools)
        .bind(t.safe_mutate.as_str())
        .bind(t.budget.map(|b| b.nanos() as i64))
        .bind(version)
        .bind(d.position)
        .bind(d.at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn set_call(
    tx: &mut PgConnection,
    run: Uuid,
    call: Uuid,
    status: CallStatus,
    sql: &str,
    at: DateTime<Utc>,
    values: (Option<&str>, Option<&str>, Option<&Value>),
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE task_run_calls SET status = $3, {sql} WHERE run_id = $1 AND call_id = $2"
    ))
    .bind(run)
    .bind(call)
    .bind(status.as_str())
    .bind(values.0)
    .bind(values.1)
    .bind(values.2.map(Json))
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply_run(
    tx: &mut PgConnection,
    d: &Decoded<RunEvent>,
    event: &RunEvent,
    version: i64,
) -> Result<(), sqlx::Error> {
    let (state, extra): (Option<&str>, &str) = match event {
        RunEvent::Created(spec) => {
            sqlx::query(
                "INSERT INTO task_runs (id, task_id, agent_id, state, created_at, version, position, updated_at) \
                 VALUES ($1, $2, $3, 'queued', $4, $5, $6, $4) ON CONFLICT (id) DO NOTHING",
            )
            .bind(d.id)
            .bind(spec.task.as_uuid())
            .bind(spec.agent.map(|a| a.as_uuid()))
            .bind(d.at)
            .bind(version)
            .bind(d.position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        RunEvent::Started => (Some("running"), ", started_at = $4"),
        RunEvent::ToolCallRequested {
            call,
            tool,
            arguments,
            risk,
        } => {
            sqlx::query(
                "INSERT INTO task_run_calls (run_id, call_id, seq, tool, risk, arguments, status, requested_at) \
                 VALUES ($1, $2, (SELECT count(*) FROM task_run_calls WHERE run_id = $1), $3, $4, $5, 'pending-approval', $6) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(d.id)
            .bind(call.as_uuid())
            .bind(tool.as_str())
            .bind(risk.as_str())
            .bind(Json(arguments))
            .bind(d.at)
            .execute(&mut *tx)
            .await?;
            (Some("awaiting_approval"), "")
        }
        RunEvent::ToolCallApproved { call, by, reason } => {
            set_call(
                tx,
                d.id,
                call.as_uuid(),
                CallStatus::Approved,
                "decided_by = $4, decided_reason = $5, decided_at = $7, result = $6",
                d.at,
                (Some(by), Some(reason), None),
            )
            .await?;
            (Some("running"), "")
        }
        RunEvent::ToolCallDenied { call, by, reason } => {
            set_call(
                tx,
                d.id,
                call.as_uuid(),
                CallStatus::Denied,
                "decided_by = $4, decided_reason = $5, decided_at = $7, result = $6",
                d.at,
                (Some(by), Some(reason), None),
            )
            .await?;
            (None, "")
        }
        RunEvent::ToolCallFinished { call, outcome } => {
            let (status, result, error) = match outcome {
                Ok(v) => (CallStatus::Succeeded, Some(v), None),
                Err(e) => (CallStatus::Failed, None, Some(e.as_str())),
            };
            set_call(
                tx,
                d.id,
                call.as_uuid(),
                status,
                "error = $4, decided_reason = coalesce(decided_reason, $5), result = $6, finished_at = $7",
                d.at,
                (error, None, result),
            )
            .await?;
            (None, "")
        }
        RunEvent::Logged { .. } => (None, ", logs = logs + 1"),
        RunEvent::BudgetExceeded { reason } => {
            sqlx::query("UPDATE task_runs SET blocked_reason = $2 WHERE id = $1")
                .bind(d.id)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
            (Some("awaiting_approval"), "")
        }
        RunEvent::BudgetApproved { .. } => (Some("running"), ", blocked_reason = NULL"),
        RunEvent::LlmCalled(c) => {
            sqlx::query(
                "UPDATE task_runs SET llm_calls = llm_calls + 1, cost_nanos = cost_nanos + $2 WHERE id = $1",
            )
            .bind(d.id)
            .bind(c.cost.map_or(0, |c| c.nanos() as i64))
            .execute(&mut *tx)
            .await?;
            (None, "")
        }
        RunEvent::ArtifactAdded(a) => {
            sqlx::query(
                "UPDATE task_runs SET artifacts = artifacts || $2 WHERE id = $1",
            )
            .bind(d.id)
            .bind(Json(json!([{"name": a.name, "uri": a.uri, "contentType": a.content_type, "sha256": a.sha256}])))
            .execute(&mut *tx)
            .await?;
            (None, "")
        }
        RunEvent::Succeeded { output } => {
            sqlx::query("UPDATE task_runs SET output = $2 WHERE id = $1")
                .bind(d.id)
                .bind(output)
                .execute(&mut *tx)
                .await?;
            (Some("succeeded"), ", finished_at = $4")
        }
        RunEvent::Failed { reason } | RunEvent::Cancelled { reason } => {
            sqlx::query("UPDATE task_runs SET reason = $2 WHERE id = $1")
                .bind(d.id)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
            let state = if matches!(event, RunEvent::Failed { .. }) {
                "failed"
            } else {
                "cancelled"
            };
            (Some(state), ", finished_at = $4")
        }
    };
    sqlx::query(&format!(
        "UPDATE task_runs SET state = coalesce($5, state), version = $2, position = $3, updated_at = $4{extra} WHERE id = $1"
    ))
    .bind(d.id)
    .bind(version)
    .bind(d.position)
    .bind(d.at)
    .bind(state)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolRow {
    pub name: String,
    pub description: String,
    pub risk: String,
    #[schema(value_type = Object)]
    pub schema: Json<Value>,
    pub version: i64,
    pub position: i64,
    pub updated_at: DateTime<Utc>,
}

const TOOL_COLUMNS: &str = "name, description, risk, schema, version, position, updated_at";

pub async fn tool(pool: &PgPool, name: &str) -> Result<Option<ToolRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {TOOL_COLUMNS} FROM tools WHERE name = $1"))
        .bind(name)
        .fetch_optional(pool)
        .await
}

/// Tools by name after `after`.
pub async fn tools(
    pool: &PgPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ToolRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TOOL_COLUMNS} FROM tools WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRow {
    pub id: Uuid,
    pub title: String,
    pub prompt: String,
    pub allowed_tools: Vec<String>,
    #[serde(rename = "safeMutateApproval")]
    pub safe_mutate: String,
    #[serde(skip)]
    pub budget_nanos: Option<i64>,
    /// `budget_nanos` in dollars.
    #[sqlx(skip)]
    pub budget_usd: Option<f64>,
    pub version: i64,
    pub position: i64,
    pub created_at: DateTime<Utc>,
}

const TASK_COLUMNS: &str =
    "id, title, prompt, allowed_tools, safe_mutate, budget_nanos, version, position, created_at";

fn with_budget(mut t: TaskRow) -> TaskRow {
    t.budget_usd = t.budget_nanos.map(|n| n as f64 / 1e9);
    t
}

pub async fn task(pool: &PgPool, id: Uuid) -> Result<Option<TaskRow>, sqlx::Error> {
    let row: Option<TaskRow> =
        sqlx::query_as(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(with_budget))
}

pub async fn tasks(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(with_budget).collect())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRow {
    pub id: Uuid,
    pub task_id: Uuid,
    pub agent_id: Option<Uuid>,
    pub state: String,
    pub output: Option<String>,
    pub reason: Option<String>,
    pub logs: i64,
    #[schema(value_type = Object)]
    pub artifacts: Json<Value>,
    pub llm_calls: i64,
    /// Why it waits for an operator when a step crossed a budget.
    pub blocked_reason: Option<String>,
    /// What its LLM steps cost when recorded, in nano-dollars (`costUsd` in dollars).
    #[serde(skip)]
    pub cost_nanos: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub position: i64,
    pub updated_at: DateTime<Utc>,
}

const RUN_COLUMNS: &str = "id, task_id, agent_id, state, output, reason, logs, artifacts, \
    llm_calls, blocked_reason, cost_nanos, created_at, started_at, finished_at, version, position, updated_at";

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallRow {
    #[serde(rename = "callId")]
    pub call_id: Uuid,
    pub tool: String,
    pub risk: String,
    #[schema(value_type = Object)]
    pub arguments: Json<Value>,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Json<Value>>,
    pub error: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn run(pool: &PgPool, id: Uuid) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM task_runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A run's tool calls in the order they were requested.
pub async fn calls(pool: &PgPool, run: Uuid) -> Result<Vec<CallRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT call_id, tool, risk, arguments, status, decided_by, decided_reason, result, error, \
         requested_at, decided_at, finished_at FROM task_run_calls WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Default)]
pub struct RunFilter {
    pub task_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub state: Option<String>,
}

pub async fn runs(
    pool: &PgPool,
    filter: &RunFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM task_runs WHERE ($1::uuid IS NULL OR task_id = $1) \
         AND ($2::uuid IS NULL OR agent_id = $2) AND ($3::text IS NULL OR state = $3) \
         AND ($4::uuid IS NULL OR id > $4) ORDER BY id LIMIT $5"
    ))
    .bind(filter.task_id)
    .bind(filter.agent_id)
    .bind(filter.state.as_deref())
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A run with its tool calls as one JSON value (`toolCalls`), `null` when there is no such run.
pub async fn run_with_calls(pool: &PgPool, id: Uuid) -> Result<Value, sqlx::Error> {
    let Some(run) = run(pool, id).await? else {
        return Ok(Value::Null);
    };
    let cost = run.cost_nanos as f64 / 1e9;
    let mut value = serde_json::to_value(run).unwrap_or(Value::Null);
    value["costUsd"] = json!(cost);
    value["toolCalls"] = serde_json::to_value(calls(pool, id).await?).unwrap_or(Value::Null);
    Ok(value)
}

/// The budget of agent `id` in nano-dollars (`None`: none set).
pub async fn agent_budget(pool: &PgPool, id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT budget_nanos FROM agent_budgets WHERE agent_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(b,)| b))
}

/// Runs waiting because a step crossed a budget: of task `task` and/or agent `agent`.
pub async fn budget_blocked_runs(
    pool: &PgPool,
    task: Option<Uuid>,
    agent: Option<Uuid>,
) -> Result<Vec<(Uuid, Uuid, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, task_id, agent_id FROM task_runs WHERE blocked_reason IS NOT NULL \
         AND state = 'awaiting_approval' AND ($1::uuid IS NULL OR task_id = $1) \
         AND ($2::uuid IS NULL OR agent_id = $2) ORDER BY id",
    )
    .bind(task)
    .bind(agent)
    .fetch_all(pool)
    .await
}
