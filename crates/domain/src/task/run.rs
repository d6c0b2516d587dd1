//! The TaskRun aggregate: one run of a task, reported step by step by its runner, with the
//! policy gate on tool calls. States: `queued` → `running` ⇄ `awaiting_approval` → …
//! → `succeeded` | `failed` | `cancelled`; only the transitions of [`RunState::may_become`].
//!
//! Policy: a `READ_ONLY` call is approved at once, a `SAFE_MUTATE` call too unless the task
//! says an operator approves them, a `DESTRUCTIVE` call always waits. While a call waits the
//! run is `awaiting_approval` and goes no further: only an approval, a denial (which fails the
//! run), a failure, a cancellation or a log line are accepted.

pub use super::step::{Artifact, CallStatus, LlmCall, LogLevel, ToolCall};
use super::{Risk, SafeMutate, ToolName, Usd};
use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};
use crate::ids::{AgentId, TaskId, ToolCallId};
use std::fmt;

pub const LOG_MAX: usize = 10_000;
pub const OUTPUT_MAX: usize = 100_000;
pub const ARTIFACT_NAME_MAX: usize = 200;
pub const URI_MAX: usize = 2_000;
/// Tool calls a run may make.
pub const CALLS_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    Queued,
    Running,
    AwaitingApproval,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Running,
        Self::AwaitingApproval,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == input)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "must be queued, running, awaiting_approval, succeeded, failed or cancelled",
                )
            })
    }

    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The lifecycle: every state change a run may make.
    pub const fn may_become(self, to: Self) -> bool {
        use RunState::*;
        matches!(
            (self, to),
            (Queued, Running | Failed | Cancelled)
                | (Running, AwaitingApproval | Succeeded | Failed | Cancelled)
                | (AwaitingApproval, Running | Failed | Cancelled)
        )
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the run was created with, copied from its task so that later changes to the task do
/// not change a run under way.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub task: TaskId,
    pub agent: Option<AgentId>,
    pub allowed_tools: Vec<ToolName>,
    pub safe_mutate: SafeMutate,
    pub budget: Option<Usd>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub spec: RunSpec,
    pub state: RunState,
    pub calls: Vec<ToolCall>,
    /// What its LLM steps cost so far (priced ones).
    pub spent: Usd,
    /// A step crossed a budget: the run waits for an operator.
    pub budget_blocked: bool,
    /// An operator waived its budgets: it goes on past them without another stop.
    pub budget_approved: bool,
}

impl Run {
    pub fn call(&self, id: ToolCallId) -> Option<&ToolCall> {
        self.calls.iter().find(|c| c.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskRun(pub Option<Run>);

#[derive(Debug, Clone, PartialEq)]
pub enum RunCommand {
    Create(RunSpec),
    /// `arguments` were validated against the tool's schema and `risk` is the registry's.
    RequestToolCall {
        call: ToolCallId,
        tool: ToolName,
        arguments: serde_json::Value,
        risk: Risk,
    },
    Approve {
        call: ToolCallId,
        by: String,
        reason: String,
    },
    Deny {
        call: ToolCallId,
        by: String,
        reason: String,
    },
    /// The result of an approved call: `Ok(result)` or `Err(error)`.
    RecordResult {
        call: ToolCallId,
        outcome: Result<serde_json::Value, String>,
    },
    Log {
        level: LogLevel,
        message: String,
    },
    AddArtifact(Artifact),
    RecordLlmCall(LlmCall),
    /// The step just recorded crossed a budget (`reason` says whose and how far).
    BlockForBudget {
        reason: String,
    },
    /// A run blocked by a budget goes on: an operator waives its budgets for the rest of the
    /// run (`waive`), or a budget was raised (the run stays under its budgets).
    ApproveBudget {
        by: String,
        reason: String,
        waive: bool,
    },
    Complete {
        output: String,
    },
    Fail {
        reason: String,
    },
    Cancel {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Created(RunSpec),
    /// The runner's first step.
    Started,
    ToolCallRequested {
        call: ToolCallId,
        tool: ToolName,
        arguments: serde_json::Value,
        risk: Risk,
    },
    /// `by`: the principal who approved, or `policy` for an automatic approval.
    ToolCallApproved {
        call: ToolCallId,
        by: String,
        reason: String,
    },
    ToolCallDenied {
        call: ToolCallId,
        by: String,
        reason: String,
    },
    ToolCallFinished {
        call: ToolCallId,
        outcome: Result<serde_json::Value, String>,
    },
    Logged {
        level: LogLevel,
        message: String,
    },
    ArtifactAdded(Artifact),
    LlmCalled(LlmCall),
    BudgetExceeded {
        reason: String,
    },
    BudgetApproved {
        by: String,
        reason: String,
        waived: bool,
    },
    Succeeded {
        output: String,
    },
    Failed {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
}

/// The approver recorded for calls the policy approves.
pub const POLICY: &str = "policy";

impl RunCommand {
    /// How the command is named in a refusal.
    fn verb(&self) -> &'static str {
        match self {
            Self::Create(_) => "create",
            Self::RequestToolCall { .. } => "tool-call",
            Self::Approve { .. } => "approve",
            Self::Deny { .. } => "deny",
            Self::RecordResult { .. } => "result",
            Self::Log { .. } => "log",
            Self::AddArtifact(_) => "artifact",
            Self::RecordLlmCall(_) => "llm-call",
            Self::BlockForBudget { .. } => "block-for-budget",
            Self::ApproveBudget { .. } => "approve-budget",
            Self::Complete { .. } => "complete",
            Self::Fail { .. } => "fail",
            Self::Cancel { .. } => "cancel",
        }
    }
}

/// The free text and artifact fields of a command, each within its bounds.
fn check(command: &RunCommand) -> Result<(), DomainError> {
    use crate::values::{check_text, REASON_MAX_CHARS};
    let result = match command {
        RunCommand::Approve { reason, .. }
        | RunCommand::Deny { reason, .. }
        | RunCommand::Fail { reason }
        | RunCommand::Cancel { reason }
        | RunCommand::BlockForBudget { reason }
        | RunCommand::ApproveBudget { reason, .. } => {
            check_text(reason, "reason", REASON_MAX_CHARS)
        }
        RunCommand::RecordResult {
            outcome: Err(error),
            ..
        } => check_text(error, "error", OUTPUT_MAX),
        RunCommand::Log { message, .. } => check_text(message, "message", LOG_MAX),
        RunCommand::Complete { output } => check_text(output, "output", OUTPUT_MAX),
        RunCommand::RecordLlmCall(c) => {
            if c.latency_ms > super::pricing::LATENCY_MAX_MS {
                Err(FieldError::new(
                    "latencyMs",
                    "must be at most 86400000 (a day)",
                ))
            } else if c.finish_reason.chars().any(char::is_control) {
                Err(FieldError::new("finishReason", "must be a single line"))
            } else {
                check_text(&c.finish_reason, "finishReason", 64)
            }
        }
        RunCommand::AddArtifact(a) => {
            let mut errors = Vec::new();
            for (field, value, max) in [
                ("name", &a.name, ARTIFACT_NAME_MAX),
                ("uri", &a.uri, URI_MAX),
                ("contentType", &a.content_type, ARTIFACT_NAME_MAX),
            ] {
                if value.trim().is_empty() {
                    errors.push(FieldError::new(field, "must not be empty"));
                } else if let Err(e) = check_text(value, field, max) {
                    errors.push(e);
                } else if value.chars().any(char::is_control) {
                    errors.push(FieldError::new(field, "must be a single line"));
                }
            }
            let hex = a.sha256.len() == 64
                && a.sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !hex {
                errors.push(FieldError::new("sha256", "must be 64 lowercase hex digits"));
            }
            return if errors.is_empty() {
                Ok(())
            } else {
                Err(DomainError::Validation(errors))
            };
        }
        _ => Ok(()),
    };
    result.map_err(|e| DomainError::Validation(vec![e]))
}

fn refused(run: &Run, command: &RunCommand) -> DomainError {
    DomainError::InvalidTransition {
        aggregate: "task run",
        from: run.state.as_str().to_owned(),
        to: command.verb().to_owned(),
    }
}

impl Aggregate for TaskRun {
    const TYPE: &'static str = "task_run";
    type Command = RunCommand;
    type Event = RunEvent;

    fn decide(&self, command: &RunCommand) -> Result<Vec<RunEvent>, DomainError> {
        let run = match (&self.0, command) {
            (None, RunCommand::Create(spec)) => return Ok(vec![RunEvent::Created(spec.clone())]),
            (None, _) => {
                return Err(DomainError::NotFound {
                    aggregate: "task run",
                })
            }
            (Some(_), RunCommand::Create(_)) => {
                return Err(DomainError::AlreadyExists {
                    aggregate: "task run",
                })
            }
            (Some(run), _) => run,
        };
        if run.state.is_terminal() {
            return Err(refused(run, command));
        }
        check(command)?;
        let waiting = run.state == RunState::AwaitingApproval;
        // A runner's step on a queued run starts it.
        let mut events = Vec::new();
        let step = matches!(
            command,
            RunCommand::RequestToolCall { .. }
                | RunCommand::RecordResult { .. }
                | RunCommand::Log { .. }
                | RunCommand::AddArtifact(_)
                | RunCommand::RecordLlmCall(_)
                | RunCommand::Complete { .. }
        );
        if step && run.state == RunState::Queued {
            events.push(RunEvent::Started);
        }
        match command {
            RunCommand::Create(_) => unreachable!("handled above"),
            RunCommand::RequestToolCall {
                call,
                tool,
                arguments,
                risk,
            } => {
                if waiting {
                    return Err(refused(run, command));
                }
                if !run.spec.allowed_tools.contains(tool) {
                    return Err(DomainError::field(
                        "tool",
                        format!("{tool} is not an allowed tool of this task"),
                    ));
                }
                if run.call(*call).is_some() {
                    return Err(DomainError::AlreadyExists {
                        aggregate: "tool call",
                    });
                }
                if run.calls.len() >= CALLS_MAX {
                    return Err(DomainError::field(
                        "tool",
                        format!("a run makes at most {CALLS_MAX} tool calls"),
                    ));
                }
                events.push(RunEvent::ToolCallRequested {
                    call: *call,
                    tool: tool.clone(),
                    arguments: arguments.clone(),
                    risk: *risk,
                });
                let automatic = match risk {
                    Risk::ReadOnly => Some("READ_ONLY calls are approved automatically"),
                    Risk::SafeMutate if run.spec.safe_mutate == SafeMutate::Auto => {
                        Some("SAFE_MUTATE calls of this task are approved automatically")
                    }
                    _ => None,
                };
                if let Some(reason) = automatic {
                    events.push(RunEvent::ToolCallApproved {
                        call: *call,
                        by: POLICY.to_owned(),
                        reason: reason.to_owned(),
                    });
                }
            }
            RunCommand::Approve { call, by, reason } | RunCommand::Deny { call, by, reason } => {
                let c = run.call(*call).ok_or(DomainError::NotFound {
                    aggregate: "tool call",
                })?;
                if c.status != CallStatus::PendingApproval {
                    return Err(DomainError::InvalidTransition {
                        aggregate: "tool call",
                        from: c.status.as_str().to_owned(),
                        to: command.verb().to_owned(),
                    });
                }
                let (call, by, reason) = (*call, by.clone(), reason.clone());
                if matches!(command, RunCommand::Approve { .. }) {
                    events.push(RunEvent::ToolCallApproved { call, by, reason });
                } else {
                    let why = format!("tool call {call} ({}) denied by {by}: {reason}", c.tool);
                    events.push(RunEvent::ToolCallDenied { call, by, reason });
                    events.push(RunEvent::Failed { reason: why });
                }
            }
            RunCommand::RecordResult { call, outcome } => {
                let c = run.call(*call).ok_or(DomainError::NotFound {
                    aggregate: "tool call",
                })?;
                if c.status != CallStatus::Approved {
                    return Err(DomainError::InvalidTransition {
                        aggregate: "tool call",
                        from: c.status.as_str().to_owned(),
                        to: command.verb().to_owned(),
                    });
                }
                events.push(RunEvent::ToolCallFinished {
                    call: *call,
                    outcome: outcome.clone(),
                });
            }
            RunCommand::Log { level, message } => events.push(RunEvent::Logged {
                level: *level,
                message: message.clone(),
            }),
            RunCommand::AddArtifact(a) => {
                if waiting {
                    return Err(refused(run, command));
                }
                events.push(RunEvent::ArtifactAdded(a.clone()));
            }
            RunCommand::RecordLlmCall(c) => {
                if waiting {
                    return Err(refused(run, command));
                }
                events.push(RunEvent::LlmCalled(c.clone()));
            }
            RunCommand::BlockForBudget { reason } => {
                if run.state != RunState::Running || run.budget_approved {
                    return Err(refused(run, command));
                }
                events.push(RunEvent::BudgetExceeded {
                    reason: reason.clone(),
                });
            }
            RunCommand::ApproveBudget { by, reason, waive } => {
                if !run.budget_blocked {
                    return Err(refused(run, command));
                }
                events.push(RunEvent::BudgetApproved {
                    by: by.clone(),
                    reason: reason.clone(),
                    waived: *waive,
                });
            }
            RunCommand::Complete { output } => {
                if waiting {
                    return Err(refused(run, command));
                }
                events.push(RunEvent::Succeeded {
                    output: output.clone(),
                });
            }
            RunCommand::Fail { reason } => events.push(RunEvent::Failed {
                reason: reason.clone(),
            }),
            RunCommand::Cancel { reason } => events.push(RunEvent::Cancelled {
                reason: reason.clone(),
            }),
        }
        Ok(events)
    }

    fn evolve(self, event: &RunEvent) -> Self {
        let Some(mut run) = self.0 else {
            return match event {
                RunEvent::Created(spec) => Self(Some(Run {
                    spec: spec.clone(),
                    state: RunState::Queued,
                    calls: Vec::new(),
                    spent: Usd::default(),
                    budget_blocked: false,
                    budget_approved: false,
                })),
                _ => Self(None),
            };
        };
        let set_call = |run: &mut Run, id: ToolCallId, status: CallStatus| {
            if let Some(c) = run.calls.iter_mut().find(|c| c.id == id) {
                c.status = status;
            }
        };
        match event {
            RunEvent::Created(_) | RunEvent::Logged { .. } | RunEvent::ArtifactAdded(_) => {}
            RunEvent::Started => run.state = RunState::Running,
            RunEvent::BudgetExceeded { .. } => {
                run.budget_blocked = true;
                run.state = RunState::AwaitingApproval;
            }
            RunEvent::BudgetApproved { waived, .. } => {
                run.budget_blocked = false;
                run.budget_approved |= *waived;
                run.state = RunState::Running;
            }
            RunEvent::LlmCalled(c) => {
                let cost = c.cost.map_or(0, Usd::nanos);
                run.spent = Usd::from_nanos(run.spent.nanos().saturating_add(cost));
            }
            RunEvent::ToolCallRequested {
                call, tool, risk, ..
            } => {
                run.calls.push(ToolCall {
                    id: *call,
                    tool: tool.clone(),
                    risk: *risk,
                    status: CallStatus::PendingApproval,
                });
                run.state = RunState::AwaitingApproval;
            }
            RunEvent::ToolCallApproved { call, .. } => {
                set_call(&mut run, *call, CallStatus::Approved);
                run.state = RunState::Running;
            }
            RunEvent::ToolCallDenied { call, .. } => set_call(&mut run, *call, CallStatus::Denied),
            RunEvent::ToolCallFinished { call, outcome } => {
                let status = if outcome.is_ok() {
                    CallStatus::Succeeded
                } else {
                    CallStatus::Failed
                };
                set_call(&mut run, *call, status);
            }
            RunEvent::Succeeded { .. } => run.state = RunState::Succeeded,
            RunEvent::Failed { .. } => run.state = RunState::Failed,
            RunEvent::Cancelled { .. } => run.state = RunState::Cancelled,
        }
        Self(Some(run))
    }
}
