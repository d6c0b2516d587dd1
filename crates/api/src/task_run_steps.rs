//! The steps of a task run, parsed and executed the same way over HTTP
//! (`POST /task-runs/{id}/<step>`) and NATS (`mc.cmd.task-run.<step>`): one parser per step
//! from its JSON fields, one executor, one answer shape `{id, version, position, state,
//! spentUsd, callId?, callState?, costUsd?}`.

use crate::extract::{parse_value, Fields};
use crate::problem::ApiError;
use crate::state::AppState;
use mc_commands::CommandContext;
use mc_domain::alarm::{AlarmCommand, AlarmKey, AlarmKind};
use mc_domain::ids::AlarmId;
use mc_domain::ids::{AgentId, TaskId, TaskRunId, ToolCallId};
use mc_domain::spacecraft::SpacecraftId;
use mc_domain::task::budget::Scope;
use mc_domain::task::pricing::{parse_name, Tokens, ANY_MODEL};
use mc_domain::task::run::{Artifact, LogLevel, RunCommand, TaskRun};
use mc_domain::task::{ToolName, Usd};
use mc_domain::telemetry::Severity;
use mc_domain::{Check, FieldError};
use mc_tasks::NewRun;
use serde::Deserialize;
use serde_json::{json, Value};

pub(crate) fn run_id(raw: &str) -> Result<TaskRunId, ApiError> {
    TaskRunId::parse(raw, "id").map_err(|e| ApiError::Validation(vec![e]))
}

pub(crate) fn call_id(raw: &str) -> Result<ToolCallId, ApiError> {
    ToolCallId::parse(raw, "callId").map_err(|e| ApiError::Validation(vec![e]))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = RunStart)]
pub(crate) struct CreateBody {
    task_id: String,
    agent_id: Option<String>,
}

/// `{taskId, agentId?}`.
pub(crate) fn parse_create(body: Value) -> Result<NewRun, ApiError> {
    let b: CreateBody = parse_value(body)?;
    let mut f = Fields::default();
    let task = f.take(TaskId::parse(&b.task_id, "taskId"));
    let agent = match &b.agent_id {
        Some(a) => f.take(AgentId::parse(a, "agentId")).map(Some),
        None => Some(None),
    };
    f.finish(|| {
        Some(NewRun {
            task: task?,
            agent: agent?,
        })
    })
}

/// A parsed step.
pub(crate) enum Step {
    Llm {
        provider: String,
        model: String,
        tokens: Tokens,
        latency_ms: u64,
        finish_reason: String,
    },
    ToolCall {
        tool: ToolName,
        arguments: Value,
    },
    Command(RunCommand),
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = LlmCall)]
pub(crate) struct LlmCallBody {
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ToolCallRequest)]
pub(crate) struct ToolCallBody {
    tool: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Reason)]
pub(crate) struct ReasonBody {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ToolCallResult)]
pub(crate) struct ResultBody {
    result: Option<Value>,
    error: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LogLine)]
pub(crate) struct LogBody {
    #[serde(default)]
    level: Option<String>,
    message: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = Artifact)]
pub(crate) struct ArtifactBody {
    name: String,
    uri: String,
    content_type: String,
    sha256: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RunCompletion)]
pub(crate) struct CompleteBody {
    #[serde(default)]
    output: String,
}

fn one(e: FieldError) -> ApiError {
    ApiError::Validation(vec![e])
}

/// Parse step `step` (one of [`STEPS`]) from its fields; `call` names the tool call of
/// `approve`, `deny` and `result`; `by` is the authenticated principal (the approver).
pub(crate) fn parse_step(
    step: &str,
    call: Option<&str>,
    by: String,
    body: Value,
) -> Result<Step, ApiError> {
    let call = || call_id(call.unwrap_or_default());
    Ok(match step {
        "llm-call" => {
            let b: LlmCallBody = parse_value(body)?;
            let mut f = Fields::default();
            let provider = f.take(parse_name(&b.provider, "provider"));
            let model = f.take(parse_name(&b.model, "model").and_then(|m| {
                if m == ANY_MODEL {
                    Err(FieldError::new("model", "must name a model"))
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
            let latency_ms = f.take(
                u64::try_from(b.latency_ms)
                    .map_err(|_| FieldError::new("latencyMs", "must not be negative")),
            );
            let (provider, model, tokens, latency_ms) =
                f.finish(|| Some((provider?, model?, tokens?, latency_ms?)))?;
            Step::Llm {
                provider,
                model,
                tokens,
                latency_ms,
                finish_reason: b.finish_reason,
            }
        }
        "tool-call" => {
            let b: ToolCallBody = parse_value(body)?;
            Step::ToolCall {
                tool: ToolName::parse(&b.tool, "tool").map_err(one)?,
                arguments: b.arguments,
            }
        }
        "approve" | "deny" => {
            let b: ReasonBody = parse_value(body)?;
            let (call, reason) = (call()?, b.reason);
            Step::Command(if step == "approve" {
                RunCommand::Approve { call, by, reason }
            } else {
                RunCommand::Deny { call, by, reason }
            })
        }
        "result" => {
            let b: ResultBody = parse_value(body)?;
            let outcome = match (b.result, b.error) {
                (result, None) => Ok(result.unwrap_or(Value::Null)),
                (None, Some(error)) => Err(error),
                (Some(_), Some(_)) => {
                    return Err(ApiError::field("error", "give either result or error"))
                }
            };
            Step::Command(RunCommand::RecordResult {
                call: call()?,
                outcome,
            })
        }
        "log" => {
            let b: LogBody = parse_value(body)?;
            let level =
                LogLevel::parse(b.level.as_deref().unwrap_or("info"), "level").map_err(one)?;
            Step::Command(RunCommand::Log {
                level,
                message: b.message,
            })
        }
        "artifact" => {
            let b: ArtifactBody = parse_value(body)?;
            Step::Command(RunCommand::AddArtifact(Artifact {
                name: b.name,
                uri: b.uri,
                content_type: b.content_type,
                sha256: b.sha256,
            }))
        }
        "complete" => {
            let b: CompleteBody = parse_value(body)?;
            Step::Command(RunCommand::Complete { output: b.output })
        }
        "budget-approve" => {
            let b: ReasonBody = parse_value(body)?;
            Step::Command(RunCommand::ApproveBudget {
                by,
                reason: b.reason,
                waive: true,
            })
        }
        "fail" | "cancel" => {
            let reason = parse_value::<ReasonBody>(body)?.reason;
            Step::Command(if step == "fail" {
                RunCommand::Fail { reason }
            } else {
                RunCommand::Cancel { reason }
            })
        }
        other => {
            return Err(ApiError::field(
                "step",
                format!("{other:?} is not a step of a task run"),
            ))
        }
    })
}

/// Execute a parsed step: the answer's JSON and the run's new version.
pub(crate) async fn run_step(
    state: &AppState,
    ctx: &CommandContext,
    id: TaskRunId,
    check: Check,
    step: Step,
) -> Result<(Value, u64), ApiError> {
    let (done, call, cost) = match step {
        Step::Llm {
            provider,
            model,
            tokens,
            latency_ms,
            finish_reason,
        } => {
            let spec = state
                .tasks
                .run_spec(id)
                .await?
                .ok_or(ApiError::NotFound { what: "task run" })?;
            let agent = spec.agent.map(|a| a.as_uuid());
            let (task_nanos, agent_nanos) =
                mc_projections::usage::spent(&state.pool, spec.task.as_uuid(), agent).await?;
            let spent = mc_tasks::Spent {
                task: Usd::from_nanos(task_nanos.max(0) as u64),
                agent: Usd::from_nanos(agent_nanos.max(0) as u64),
            };
            let (done, cost, crossed) = state
                .tasks
                .record_llm_call(
                    ctx,
                    id,
                    provider,
                    model,
                    tokens,
                    latency_ms,
                    finish_reason,
                    spent,
                )
                .await?;
            if let (Some(c), Some(position)) = (crossed, done.position) {
                let source = match c.scope {
                    Scope::Task => format!("task-{}", spec.task),
                    Scope::Agent => format!(
                        "agent-{}",
                        spec.agent.map(|a| a.to_string()).unwrap_or_default()
                    ),
                };
                budget_alarm(state, &source, true, c.spent, position).await;
            }
            (done, None, Some(cost.map(|c| c.as_f64())))
        }
        Step::ToolCall { tool, arguments } => {
            // Derived from the command id: a retried request names the same call.
            let call = ToolCallId::from_uuid(uuid::Uuid::new_v5(&ctx.command_id, b"tool-call"));
            let done = state
                .tasks
                .request_tool_call(ctx, id, call, tool, arguments)
                .await?;
            (done, Some(call), None)
        }
        Step::Command(command) => (state.tasks.run(ctx, id, check, command).await?, None, None),
    };
    let mut body =
        json!({"id": id.to_string(), "version": done.version, "position": done.position});
    describe(&mut body, &done.state, call);
    if let Some(cost) = cost {
        body["costUsd"] = cost.into();
    }
    Ok((body, done.version))
}

/// Raise (`raise`) or return to normal the BUDGET alarm of `source` (`task-<id>` or
/// `agent-<id>`), with the spend as its value and a log position as its ordinal. An alarm that
/// cannot be written is logged; the step it follows stands.
pub(crate) async fn budget_alarm(
    state: &AppState,
    source: &str,
    raise: bool,
    spent: Usd,
    ordinal: u64,
) {
    let Ok(spacecraft) = SpacecraftId::parse(source, "source") else {
        return;
    };
    let key = AlarmKey {
        spacecraft,
        parameter: "budgetUsd".into(),
        kind: AlarmKind::Budget,
    };
    let id = AlarmId::for_key(&key);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let value = json!(spent.as_f64());
    let command = if raise {
        AlarmCommand::Raise {
            key,
            severity: Severity::Warning,
            value,
            sample_time_ms: now_ms,
            ordinal,
        }
    } else {
        AlarmCommand::ReturnToNormal {
            value,
            sample_time_ms: now_ms,
            ordinal,
        }
    };
    let command_id = uuid::Uuid::new_v5(&id.as_uuid(), format!("{raise}/{ordinal}").as_bytes());
    let ctx = CommandContext::new("system:budgets", Some(command_id));
    if let Err(e) = state.alarms.execute(&ctx, id, Check::Any, command).await {
        tracing::warn!(source, error = %e, "budget alarm not written");
    }
}

/// The run's state and spend (and a call's status) in an answer.
fn describe(body: &mut Value, run: &TaskRun, call: Option<ToolCallId>) {
    if let Some(r) = &run.0 {
        body["state"] = r.state.as_str().into();
        body["spentUsd"] = r.spent.as_f64().into();
        if r.budget_blocked {
            body["budgetExceeded"] = true.into();
        }
        if let Some(c) = call.and_then(|c| r.call(c)) {
            body["callId"] = c.id.to_string().into();
            body["callState"] = c.status.as_str().into();
        }
    }
}

/// Parse a `task-run.<action>` command's fields without executing it (the fuzz target).
pub(crate) fn parse_nats(action: &str, mut rest: Value) -> Result<(), ApiError> {
    let step = action.strip_prefix("task-run.").unwrap_or_default();
    if step == "create" {
        return parse_create(rest).map(drop);
    }
    let call = rest
        .as_object_mut()
        .and_then(|m| m.remove("callId"))
        .and_then(|c| c.as_str().map(str::to_owned));
    parse_step(step, call.as_deref(), String::new(), rest).map(drop)
}

/// `mc.cmd.task-run.<action>`: `create` (`{taskId, agentId?}`) or a step with the run's `id`
/// (and `callId` for `approve`, `deny` and `result`); the reply is the HTTP answer plus `ok`.
pub(crate) async fn nats(
    state: &AppState,
    action: &str,
    id: Option<String>,
    check: Check,
    ctx: &CommandContext,
    by: String,
    mut rest: Value,
) -> Result<Value, ApiError> {
    let step = action.strip_prefix("task-run.").unwrap_or_default();
    if step == "create" {
        let new = parse_create(rest)?;
        let id = TaskRunId::from_uuid(uuid::Uuid::now_v7());
        let done = state.tasks.create_run(ctx, id, new).await?;
        return Ok(
            json!({"ok": true, "id": id.to_string(), "version": done.version, "position": done.position}),
        );
    }
    let id = run_id(&id.ok_or_else(|| ApiError::field("id", "is required"))?)?;
    let call = match rest.as_object_mut().and_then(|m| m.remove("callId")) {
        Some(Value::String(c)) => Some(c),
        None | Some(Value::Null) => None,
        Some(_) => return Err(ApiError::field("callId", "must be a string")),
    };
    if matches!(step, "approve" | "deny" | "result") && call.is_none() {
        return Err(ApiError::field("callId", "is required"));
    }
    let parsed = parse_step(step, call.as_deref(), by, rest)?;
    let (mut body, _) = run_step(state, ctx, id, check, parsed).await?;
    body["ok"] = json!(true);
    Ok(body)
}
