//! Stored schema of the Tool, Task and TaskRun events.

use super::{payload, to_value, EventSchema, SchemaError};
use mc_domain::ids::{AgentId, TaskId, ToolCallId};
use mc_domain::task::pricing::Tokens;
use mc_domain::task::run::{Artifact, LlmCall, LogLevel, RunEvent, RunSpec};
use mc_domain::task::{Risk, SafeMutate, ToolDef, ToolEvent, ToolName, Usd};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub const TOOL_DEFINED: &str = "tool.defined";
pub const RUN_CREATED: &str = "task_run.created";
pub const RUN_STARTED: &str = "task_run.started";
pub const CALL_REQUESTED: &str = "task_run.tool_call_requested";
pub const CALL_APPROVED: &str = "task_run.tool_call_approved";
pub const CALL_DENIED: &str = "task_run.tool_call_denied";
pub const CALL_FINISHED: &str = "task_run.tool_call_finished";
pub const LOGGED: &str = "task_run.logged";
pub const ARTIFACT_ADDED: &str = "task_run.artifact_added";
pub const LLM_CALLED: &str = "task_run.llm_called";
pub const BUDGET_EXCEEDED: &str = "task_run.budget_exceeded";
pub const BUDGET_APPROVED: &str = "task_run.budget_approved";
pub const SUCCEEDED: &str = "task_run.succeeded";
pub const FAILED: &str = "task_run.failed";
pub const CANCELLED: &str = "task_run.cancelled";

pub(super) const VERSIONS: &[(&str, u32)] = &[
    (TOOL_DEFINED, 1),
    (RUN_CREATED, 1),
    (RUN_STARTED, 1),
    (CALL_REQUESTED, 1),
    (CALL_APPROVED, 1),
    (CALL_DENIED, 1),
    (CALL_FINISHED, 1),
    (LOGGED, 1),
    (ARTIFACT_ADDED, 1),
    (LLM_CALLED, 1),
    (BUDGET_EXCEEDED, 1),
    (BUDGET_APPROVED, 1),
    (SUCCEEDED, 1),
    (FAILED, 1),
    (CANCELLED, 1),
];
pub(super) const UPCASTERS: &[super::Upcaster] = &[];

pub(super) fn bad(event_type: &str, reason: impl Into<String>) -> SchemaError {
    SchemaError::BadPayload {
        event_type: event_type.to_owned(),
        reason: reason.into(),
    }
}

fn risk(event_type: &str, s: &str) -> Result<Risk, SchemaError> {
    Risk::parse(s, "risk").map_err(|e| bad(event_type, e.to_string()))
}

pub(super) fn tool_name(event_type: &str, s: &str) -> Result<ToolName, SchemaError> {
    ToolName::parse(s, "tool").map_err(|e| bad(event_type, e.to_string()))
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolDefinedV1 {
    description: String,
    risk: String,
    schema: Value,
}

impl EventSchema for ToolEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        let Self::Defined(d) = self;
        (
            TOOL_DEFINED,
            1,
            to_value(&ToolDefinedV1 {
                description: d.description.clone(),
                risk: d.risk.as_str().to_owned(),
                schema: d.schema.clone(),
            }),
        )
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        if event_type != TOOL_DEFINED {
            return Err(SchemaError::UnknownType {
                event_type: event_type.to_owned(),
            });
        }
        let p: ToolDefinedV1 = payload(event_type, value)?;
        Ok(Self::Defined(ToolDef {
            description: p.description,
            risk: risk(event_type, &p.risk)?,
            schema: p.schema,
        }))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunCreatedV1 {
    task_id: Uuid,
    agent_id: Option<Uuid>,
    allowed_tools: Vec<String>,
    safe_mutate_approval: String,
    budget_nanos: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Empty {}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallRequestedV1 {
    call_id: Uuid,
    tool: String,
    arguments: Value,
    risk: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallDecidedV1 {
    call_id: Uuid,
    by: String,
    reason: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallFinishedV1 {
    call_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct LoggedV1 {
    level: String,
    message: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactV1 {
    name: String,
    uri: String,
    content_type: String,
    sha256: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LlmCalledV1 {
    provider: String,
    model: String,
    input_tokens: u64,
    output_tokens: u64,
    cached_input_tokens: u64,
    reasoning_tokens: u64,
    latency_ms: u64,
    finish_reason: String,
    at_ms: i64,
    cost_nanos: Option<u64>,
    price_effective_from_ms: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct SucceededV1 {
    output: String,
}

#[derive(Serialize, Deserialize)]
struct ReasonV1 {
    reason: String,
}

#[derive(Serialize, Deserialize)]
struct ApprovedV1 {
    by: String,
    reason: String,
    waived: bool,
}

impl EventSchema for RunEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        let decided = |call: &ToolCallId, by: &str, reason: &str| {
            to_value(&CallDecidedV1 {
                call_id: call.as_uuid(),
                by: by.to_owned(),
                reason: reason.to_owned(),
            })
        };
        match self {
            Self::Created(s) => (
                RUN_CREATED,
                1,
                to_value(&RunCreatedV1 {
                    task_id: s.task.as_uuid(),
                    agent_id: s.agent.map(|a| a.as_uuid()),
                    allowed_tools: s.allowed_tools.iter().map(|t| t.to_string()).collect(),
                    safe_mutate_approval: s.safe_mutate.as_str().to_owned(),
                    budget_nanos: s.budget.map(Usd::nanos),
                }),
            ),
            Self::Started => (RUN_STARTED, 1, to_value(&Empty {})),
            Self::ToolCallRequested {
                call,
                tool,
                arguments,
                risk,
            } => (
                CALL_REQUESTED,
                1,
                to_value(&CallRequestedV1 {
                    call_id: call.as_uuid(),
                    tool: tool.to_string(),
                    arguments: arguments.clone(),
                    risk: risk.as_str().to_owned(),
                }),
            ),
            Self::ToolCallApproved { call, by, reason } => {
                (CALL_APPROVED, 1, decided(call, by, reason))
            }
            Self::ToolCallDenied { call, by, reason } => {
                (CALL_DENIED, 1, decided(call, by, reason))
            }
            Self::ToolCallFinished { call, outcome } => (
                CALL_FINISHED,
                1,
                to_value(&CallFinishedV1 {
                    call_id: call.as_uuid(),
                    result: outcome.as_ref().ok().cloned(),
                    error: outcome.as_ref().err().cloned(),
                }),
            ),
            Self::Logged { level, message } => (
                LOGGED,
                1,
                to_value(&LoggedV1 {
                    level: level.as_str().to_owned(),
                    message: message.clone(),
                }),
            ),
            Self::ArtifactAdded(a) => (
                ARTIFACT_ADDED,
                1,
                to_value(&ArtifactV1 {
                    name: a.name.clone(),
                    uri: a.uri.clone(),
                    content_type: a.content_type.clone(),
                    sha256: a.sha256.clone(),
                }),
            ),
            Self::LlmCalled(c) => (
                LLM_CALLED,
                1,
                to_value(&LlmCalledV1 {
                    provider: c.provider.clone(),
                    model: c.model.clone(),
                    input_tokens: c.tokens.input,
                    output_tokens: c.tokens.output,
                    cached_input_tokens: c.tokens.cached_input,
                    reasoning_tokens: c.tokens.reasoning,
                    latency_ms: c.latency_ms,
                    finish_reason: c.finish_reason.clone(),
                    at_ms: c.at_ms,
                    cost_nanos: c.cost.map(Usd::nanos),
                    price_effective_from_ms: c.price_from_ms,
                }),
            ),
            Self::BudgetExceeded { reason } => (
                BUDGET_EXCEEDED,
                1,
                to_value(&ReasonV1 {
                    reason: reason.clone(),
                }),
            ),
            Self::BudgetApproved { by, reason, waived } => (
                BUDGET_APPROVED,
                1,
                to_value(&ApprovedV1 {
                    by: by.clone(),
                    reason: reason.clone(),
                    waived: *waived,
                }),
            ),
            Self::Succeeded { output } => (
                SUCCEEDED,
                1,
                to_value(&SucceededV1 {
                    output: output.clone(),
                }),
            ),
            Self::Failed { reason } => (
                FAILED,
                1,
                to_value(&ReasonV1 {
                    reason: reason.clone(),
                }),
            ),
            Self::Cancelled { reason } => (
                CANCELLED,
                1,
                to_value(&ReasonV1 {
                    reason: reason.clone(),
                }),
            ),
        }
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        let call = ToolCallId::from_uuid;
        Ok(match event_type {
            RUN_CREATED => {
                let p: RunCreatedV1 = payload(event_type, value)?;
                Self::Created(RunSpec {
                    task: TaskId::from_uuid(p.task_id),
                    agent: p.agent_id.map(AgentId::from_uuid),
                    allowed_tools: p
                        .allowed_tools
                        .iter()
                        .map(|t| tool_name(event_type, t))
                        .collect::<Result<_, _>>()?,
                    safe_mutate: SafeMutate::parse(&p.safe_mutate_approval, "safeMutateApproval")
                        .map_err(|e| bad(event_type, e.to_string()))?,
                    budget: p.budget_nanos.map(Usd::from_nanos),
                })
            }
            RUN_STARTED => {
                let _: Empty = payload(event_type, value)?;
                Self::Started
            }
            CALL_REQUESTED => {
                let p: CallRequestedV1 = payload(event_type, value)?;
                Self::ToolCallRequested {
                    call: call(p.call_id),
                    tool: tool_name(event_type, &p.tool)?,
                    arguments: p.arguments,
                    risk: risk(event_type, &p.risk)?,
                }
            }
            CALL_APPROVED | CALL_DENIED => {
                let p: CallDecidedV1 = payload(event_type, value)?;
                let (call, by, reason) = (call(p.call_id), p.by, p.reason);
                if event_type == CALL_APPROVED {
                    Self::ToolCallApproved { call, by, reason }
                } else {
                    Self::ToolCallDenied { call, by, reason }
                }
            }
            CALL_FINISHED => {
                let p: CallFinishedV1 = payload(event_type, value)?;
                let outcome = match (p.result, p.error) {
                    (_, Some(e)) => Err(e),
                    (r, None) => Ok(r.unwrap_or(Value::Null)),
                };
                Self::ToolCallFinished {
                    call: call(p.call_id),
                    outcome,
                }
            }
            LOGGED => {
                let p: LoggedV1 = payload(event_type, value)?;
                Self::Logged {
                    level: LogLevel::parse(&p.level, "level")
                        .map_err(|e| bad(event_type, e.to_string()))?,
                    message: p.message,
                }
            }
            ARTIFACT_ADDED => {
                let p: ArtifactV1 = payload(event_type, value)?;
                Self::ArtifactAdded(Artifact {
                    name: p.name,
                    uri: p.uri,
                    content_type: p.content_type,
                    sha256: p.sha256,
                })
            }
            LLM_CALLED => {
                let p: LlmCalledV1 = payload(event_type, value)?;
                Self::LlmCalled(LlmCall {
                    provider: p.provider,
                    model: p.model,
                    tokens: Tokens {
                        input: p.input_tokens,
                        output: p.output_tokens,
                        cached_input: p.cached_input_tokens,
                        reasoning: p.reasoning_tokens,
                    },
                    latency_ms: p.latency_ms,
                    finish_reason: p.finish_reason,
                    at_ms: p.at_ms,
                    cost: p.cost_nanos.map(Usd::from_nanos),
                    price_from_ms: p.price_effective_from_ms,
                })
            }
            BUDGET_EXCEEDED => {
                let p: ReasonV1 = payload(event_type, value)?;
                Self::BudgetExceeded { reason: p.reason }
            }
            BUDGET_APPROVED => {
                let p: ApprovedV1 = payload(event_type, value)?;
                Self::BudgetApproved {
                    by: p.by,
                    reason: p.reason,
                    waived: p.waived,
                }
            }
            SUCCEEDED => {
                let p: SucceededV1 = payload(event_type, value)?;
                Self::Succeeded { output: p.output }
            }
            FAILED | CANCELLED => {
                let p: ReasonV1 = payload(event_type, value)?;
                if event_type == FAILED {
                    Self::Failed { reason: p.reason }
                } else {
                    Self::Cancelled { reason: p.reason }
                }
            }
            other => {
                return Err(SchemaError::UnknownType {
                    event_type: other.to_owned(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Snapshot of the stored form: renaming a variant or field must not change these.
    #[test]
    fn stored_form_is_stable() {
        let id = |n: u128| Uuid::from_u128(n);
        super::super::assert_round_trip(
            ToolEvent::Defined(ToolDef {
                description: "reads".into(),
                risk: Risk::ReadOnly,
                schema: json!({"type": "object"}),
            }),
            json!({"type": "tool.defined", "v": 1, "payload": {"description": "reads",
                "risk": "READ_ONLY", "schema": {"type": "object"}}}),
        );
        let read = ToolName::parse("read", "t").unwrap();
        let c = ToolCallId::from_uuid(id(7));
        let cases = [
            (
                RunEvent::Created(RunSpec {
                    task: TaskId::from_uuid(id(1)),
                    agent: Some(AgentId::from_uuid(id(2))),
                    allowed_tools: vec![read.clone()],
                    safe_mutate: SafeMutate::Auto,
                    budget: None,
                }),
                json!({"type": "task_run.created", "v": 1, "payload": {"taskId": id(1),
                    "agentId": id(2), "allowedTools": ["read"], "safeMutateApproval": "auto",
                    "budgetNanos": null}}),
            ),
            (
                RunEvent::Started,
                json!({"type": "task_run.started", "v": 1, "payload": {}}),
            ),
            (
                RunEvent::ToolCallRequested {
                    call: c,
                    tool: read,
                    arguments: json!({"a": 1}),
                    risk: Risk::Destructive,
                },
                json!({"type": "task_run.tool_call_requested", "v": 1, "payload": {"callId": id(7),
                    "tool": "read", "arguments": {"a": 1}, "risk": "DESTRUCTIVE"}}),
            ),
            (
                RunEvent::ToolCallApproved {
                    call: c,
                    by: "policy".into(),
                    reason: "r".into(),
                },
                json!({"type": "task_run.tool_call_approved", "v": 1, "payload": {"callId": id(7),
                    "by": "policy", "reason": "r"}}),
            ),
            (
                RunEvent::ToolCallDenied {
                    call: c,
                    by: "op".into(),
                    reason: "no".into(),
                },
                json!({"type": "task_run.tool_call_denied", "v": 1, "payload": {"callId": id(7),
                    "by": "op", "reason": "no"}}),
            ),
            (
                RunEvent::ToolCallFinished {
                    call: c,
                    outcome: Ok(json!([1])),
                },
                json!({"type": "task_run.tool_call_finished", "v": 1, "payload": {"callId": id(7),
                    "result": [1]}}),
            ),
            (
                RunEvent::ToolCallFinished {
                    call: c,
                    outcome: Err("boom".into()),
                },
                json!({"type": "task_run.tool_call_finished", "v": 1, "payload": {"callId": id(7),
                    "error": "boom"}}),
            ),
            (
                RunEvent::Logged {
                    level: LogLevel::Warn,
                    message: "m".into(),
                },
                json!({"type": "task_run.logged", "v": 1, "payload": {"level": "warn", "message": "m"}}),
            ),
            (
                RunEvent::ArtifactAdded(Artifact {
                    name: "n".into(),
                    uri: "u".into(),
                    content_type: "text/plain".into(),
                    sha256: "ab".repeat(32),
                }),
                json!({"type": "task_run.artifact_added", "v": 1, "payload": {"name": "n", "uri": "u",
                    "contentType": "text/plain", "sha256": "ab".repeat(32)}}),
            ),
            (
                RunEvent::LlmCalled(LlmCall {
                    provider: "anthropic".into(),
                    model: "claude-sonnet-4".into(),
                    tokens: Tokens {
                        input: 10,
                        output: 5,
                        cached_input: 4,
                        reasoning: 2,
                    },
                    latency_ms: 800,
                    finish_reason: "end_turn".into(),
                    at_ms: 6,
                    cost: Some(Usd::from_nanos(99)),
                    price_from_ms: Some(7),
                }),
                json!({"type": "task_run.llm_called", "v": 1, "payload": {"provider": "anthropic",
                    "model": "claude-sonnet-4", "inputTokens": 10, "outputTokens": 5,
                    "cachedInputTokens": 4, "reasoningTokens": 2, "latencyMs": 800,
                    "finishReason": "end_turn", "atMs": 6, "costNanos": 99, "priceEffectiveFromMs": 7}}),
            ),
            (
                RunEvent::Succeeded { output: "o".into() },
                json!({"type": "task_run.succeeded", "v": 1, "payload": {"output": "o"}}),
            ),
            (
                RunEvent::BudgetExceeded { reason: "b".into() },
                json!({"type": "task_run.budget_exceeded", "v": 1, "payload": {"reason": "b"}}),
            ),
            (
                RunEvent::BudgetApproved {
                    by: "op".into(),
                    reason: "ok".into(),
                    waived: true,
                },
                json!({"type": "task_run.budget_approved", "v": 1, "payload": {"by": "op", "reason": "ok", "waived": true}}),
            ),
            (
                RunEvent::Failed { reason: "f".into() },
                json!({"type": "task_run.failed", "v": 1, "payload": {"reason": "f"}}),
            ),
            (
                RunEvent::Cancelled { reason: "c".into() },
                json!({"type": "task_run.cancelled", "v": 1, "payload": {"reason": "c"}}),
            ),
        ];
        for (event, expected) in cases {
            super::super::assert_round_trip(event, expected);
        }
    }
}
