//! Stored schema of task definitions and budgets: `task.created`, `task.budget_changed` and
//! the agents' `agent_budget.set`.

use super::task::{bad, tool_name};
use super::{payload, to_value, EventSchema, SchemaError};
use mc_domain::task::budget::AgentBudgetSet;
use mc_domain::task::{SafeMutate, TaskDef, TaskEvent, Usd};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const TASK_CREATED: &str = "task.created";
pub const BUDGET_CHANGED: &str = "task.budget_changed";
pub const AGENT_BUDGET_SET: &str = "agent_budget.set";

pub(super) const VERSIONS: &[(&str, u32)] = &[
    (TASK_CREATED, 1),
    (BUDGET_CHANGED, 1),
    (AGENT_BUDGET_SET, 1),
];
pub(super) const UPCASTERS: &[super::Upcaster] = &[];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskCreatedV1 {
    title: String,
    prompt: String,
    allowed_tools: Vec<String>,
    safe_mutate_approval: String,
    /// Nano-dollars.
    budget_nanos: Option<u64>,
}

/// A budget in nano-dollars (`null`: no limit).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BudgetV1 {
    budget_nanos: Option<u64>,
}

impl EventSchema for TaskEvent {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        match self {
            Self::Created(d) => (
                TASK_CREATED,
                1,
                to_value(&TaskCreatedV1 {
                    title: d.title.clone(),
                    prompt: d.prompt.clone(),
                    allowed_tools: d.allowed_tools.iter().map(|t| t.to_string()).collect(),
                    safe_mutate_approval: d.safe_mutate.as_str().to_owned(),
                    budget_nanos: d.budget.map(Usd::nanos),
                }),
            ),
            Self::BudgetChanged(b) => (
                BUDGET_CHANGED,
                1,
                to_value(&BudgetV1 {
                    budget_nanos: b.map(Usd::nanos),
                }),
            ),
        }
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        match event_type {
            TASK_CREATED => {
                let p: TaskCreatedV1 = payload(event_type, value)?;
                Ok(Self::Created(TaskDef {
                    title: p.title,
                    prompt: p.prompt,
                    allowed_tools: p
                        .allowed_tools
                        .iter()
                        .map(|t| tool_name(event_type, t))
                        .collect::<Result<_, _>>()?,
                    safe_mutate: SafeMutate::parse(&p.safe_mutate_approval, "safeMutateApproval")
                        .map_err(|e| bad(event_type, e.to_string()))?,
                    budget: p.budget_nanos.map(Usd::from_nanos),
                }))
            }
            BUDGET_CHANGED => {
                let p: BudgetV1 = payload(event_type, value)?;
                Ok(Self::BudgetChanged(p.budget_nanos.map(Usd::from_nanos)))
            }
            other => Err(SchemaError::UnknownType {
                event_type: other.to_owned(),
            }),
        }
    }
}

impl EventSchema for AgentBudgetSet {
    fn to_stored(&self) -> (&'static str, u32, Value) {
        (
            AGENT_BUDGET_SET,
            1,
            to_value(&BudgetV1 {
                budget_nanos: self.0.map(Usd::nanos),
            }),
        )
    }

    fn from_current(event_type: &str, value: Value) -> Result<Self, SchemaError> {
        if event_type != AGENT_BUDGET_SET {
            return Err(SchemaError::UnknownType {
                event_type: event_type.to_owned(),
            });
        }
        let p: BudgetV1 = payload(event_type, value)?;
        Ok(Self(p.budget_nanos.map(Usd::from_nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_domain::task::ToolName;
    use serde_json::json;

    /// Snapshot of the stored form: renaming a variant or field must not change these.
    #[test]
    fn stored_form_is_stable() {
        super::super::assert_round_trip(
            TaskEvent::Created(TaskDef {
                title: "t".into(),
                prompt: "p".into(),
                allowed_tools: vec![ToolName::parse("read", "t").unwrap()],
                safe_mutate: SafeMutate::Operator,
                budget: Some(Usd::from_nanos(5)),
            }),
            json!({"type": "task.created", "v": 1, "payload": {"title": "t", "prompt": "p",
                "allowedTools": ["read"], "safeMutateApproval": "operator", "budgetNanos": 5}}),
        );
        super::super::assert_round_trip(
            TaskEvent::BudgetChanged(Some(Usd::from_nanos(7))),
            json!({"type": "task.budget_changed", "v": 1, "payload": {"budgetNanos": 7}}),
        );
        super::super::assert_round_trip(
            AgentBudgetSet(None),
            json!({"type": "agent_budget.set", "v": 1, "payload": {"budgetNanos": null}}),
        );
    }
}
