//! Tasks and the tools their runs may call: a [`Tool`] is a registry entry (description, risk,
//! JSON Schema of its arguments), a [`Task`] the definition a run follows (prompt, allowed
//! tools, approval policy, budget). Runs are in [`run`].
//!
//! The JSON Schema of a tool is checked (it compiles) and arguments are validated against it
//! by the caller (`mc-tasks`) before a command reaches these decisions: that needs a
//! validator this crate does not carry.

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldError};
use crate::values::{check_text, Text};
use std::fmt;

pub mod budget;
pub mod pricing;
pub mod run;
mod step;
#[cfg(test)]
mod tests;

pub const TOOL_NAME_MAX: usize = 64;
pub const TOOL_DESCRIPTION_MAX: usize = 2_000;
pub const TASK_TITLE_MAX: usize = 200;
pub const TASK_PROMPT_MAX: usize = 100_000;
pub const TOOLS_PER_TASK_MAX: usize = 100;
/// Largest budget accepted: a billion dollars (in nano-dollars).
pub const USD_MAX_NANOS: u64 = 1_000_000_000 * 1_000_000_000;

/// How much a tool call can change: decides whether it waits for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Risk {
    /// Reads only: approved automatically.
    ReadOnly,
    /// Changes something recoverable: approved automatically or by an operator, per task.
    SafeMutate,
    /// Changes something that cannot be undone: always waits for an operator.
    Destructive,
}

impl Risk {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "READ_ONLY",
            Self::SafeMutate => "SAFE_MUTATE",
            Self::Destructive => "DESTRUCTIVE",
        }
    }

    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        match input {
            "READ_ONLY" => Ok(Self::ReadOnly),
            "SAFE_MUTATE" => Ok(Self::SafeMutate),
            "DESTRUCTIVE" => Ok(Self::Destructive),
            _ => Err(FieldError::new(
                field,
                "must be READ_ONLY, SAFE_MUTATE or DESTRUCTIVE",
            )),
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who approves a task's `SAFE_MUTATE` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SafeMutate {
    /// Approved automatically, like reads.
    #[default]
    Auto,
    /// Wait for an operator, like destructive calls.
    Operator,
}

impl SafeMutate {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Operator => "operator",
        }
    }

    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        match input {
            "auto" => Ok(Self::Auto),
            "operator" => Ok(Self::Operator),
            _ => Err(FieldError::new(field, "must be auto or operator")),
        }
    }
}

/// An amount of US dollars, exact to the nano-dollar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(u64);

impl Usd {
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// A JSON number of dollars: finite, not negative, at most a billion, at most nine
    /// decimals.
    pub fn parse(input: f64, field: &str) -> Result<Self, FieldError> {
        if !input.is_finite() || input < 0.0 {
            return Err(FieldError::new(
                field,
                "must be a non-negative number of dollars",
            ));
        }
        let nanos = (input * 1e9).round();
        if nanos > USD_MAX_NANOS as f64 {
            return Err(FieldError::new(field, "must be at most 1000000000"));
        }
        Ok(Self(nanos as u64))
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

/// A tool's name: 1..=64 of `A-Z a-z 0-9 _ -`, starting with a letter (it is a NATS subject
/// token of its events, so no dot).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ToolName(String);

impl ToolName {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let ok = input.len() <= TOOL_NAME_MAX
            && input.starts_with(|c: char| c.is_ascii_alphabetic())
            && input
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "must be 1 to 64 letters, digits, _ or -, starting with a letter",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tool as registered.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub description: String,
    pub risk: Risk,
    /// JSON Schema of the arguments (checked by the caller: it compiles).
    pub schema: serde_json::Value,
}

impl ToolDef {
    pub fn parse(
        description: &str,
        risk: &str,
        schema: serde_json::Value,
    ) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let description = Text::parse(description, "description", TOOL_DESCRIPTION_MAX)
            .map_err(|e| errors.push(e))
            .ok();
        let risk = Risk::parse(risk, "risk").map_err(|e| errors.push(e)).ok();
        if !schema.is_object() && !schema.is_boolean() {
            errors.push(FieldError::new(
                "schema",
                "must be a JSON Schema (an object or a boolean)",
            ));
        }
        match (description, risk) {
            (Some(d), Some(risk)) if errors.is_empty() => Ok(Self {
                description: d.into_string(),
                risk,
                schema,
            }),
            _ => Err(DomainError::Validation(errors)),
        }
    }
}

/// A registry entry; redefining it (a new description, risk or schema) is a new version.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Tool {
    #[default]
    Absent,
    Defined(ToolDef),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolCommand {
    Define(ToolDef),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolEvent {
    Defined(ToolDef),
}

impl Aggregate for Tool {
    const TYPE: &'static str = "tool";
    type Command = ToolCommand;
    type Event = ToolEvent;

    fn decide(&self, command: &ToolCommand) -> Result<Vec<ToolEvent>, DomainError> {
        let ToolCommand::Define(def) = command;
        match self {
            // The same definition again changes nothing.
            Self::Defined(current) if current == def => Ok(vec![]),
            _ => Ok(vec![ToolEvent::Defined(def.clone())]),
        }
    }

    fn evolve(self, event: &ToolEvent) -> Self {
        let ToolEvent::Defined(def) = event;
        Self::Defined(def.clone())
    }
}

/// A task as defined.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDef {
    pub title: String,
    pub prompt: String,
    /// Tools its runs may call (each registered when the task was defined).
    pub allowed_tools: Vec<ToolName>,
    pub safe_mutate: SafeMutate,
    /// The most its runs may cost together (`None`: no limit).
    pub budget: Option<Usd>,
}

impl TaskDef {
    /// Check what the client sent; every field at fault is named.
    pub fn parse(
        title: &str,
        prompt: &str,
        allowed_tools: &[String],
        safe_mutate: Option<&str>,
        budget_usd: Option<f64>,
    ) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let title_ok = title.trim();
        if title_ok.is_empty() {
            errors.push(FieldError::new("title", "must not be empty"));
        } else if let Err(e) = check_text(title_ok, "title", TASK_TITLE_MAX) {
            errors.push(e);
        }
        if let Err(e) = check_text(prompt, "prompt", TASK_PROMPT_MAX) {
            errors.push(e);
        }
        if allowed_tools.len() > TOOLS_PER_TASK_MAX {
            errors.push(FieldError::new(
                "allowedTools",
                format!("must list at most {TOOLS_PER_TASK_MAX} tools"),
            ));
        }
        let mut tools: Vec<ToolName> = Vec::new();
        for (i, t) in allowed_tools.iter().enumerate().take(TOOLS_PER_TASK_MAX) {
            match ToolName::parse(t, &format!("allowedTools[{i}]")) {
                Ok(t) if !tools.contains(&t) => tools.push(t),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        let safe_mutate = match safe_mutate {
            None => Some(SafeMutate::default()),
            Some(s) => SafeMutate::parse(s, "safeMutateApproval")
                .map_err(|e| errors.push(e))
                .ok(),
        };
        let budget = match budget_usd {
            None => Some(None),
            Some(b) => Usd::parse(b, "budgetUsd")
                .map(Some)
                .map_err(|e| errors.push(e))
                .ok(),
        };
        match (safe_mutate, budget) {
            (Some(safe_mutate), Some(budget)) if errors.is_empty() => Ok(Self {
                title: title_ok.to_owned(),
                prompt: prompt.to_owned(),
                allowed_tools: tools,
                safe_mutate,
                budget,
            }),
            _ => Err(DomainError::Validation(errors)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Task {
    #[default]
    Absent,
    Defined(TaskDef),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskCommand {
    Create(TaskDef),
    /// Raise, lower or lift (`None`) the budget of the task's runs together.
    SetBudget(Option<Usd>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskEvent {
    Created(TaskDef),
    BudgetChanged(Option<Usd>),
}

impl Aggregate for Task {
    const TYPE: &'static str = "task";
    type Command = TaskCommand;
    type Event = TaskEvent;

    fn decide(&self, command: &TaskCommand) -> Result<Vec<TaskEvent>, DomainError> {
        match (self, command) {
            (Self::Absent, TaskCommand::Create(def)) => Ok(vec![TaskEvent::Created(def.clone())]),
            (Self::Defined(_), TaskCommand::Create(_)) => {
                Err(DomainError::AlreadyExists { aggregate: "task" })
            }
            (Self::Absent, TaskCommand::SetBudget(_)) => {
                Err(DomainError::NotFound { aggregate: "task" })
            }
            (Self::Defined(def), TaskCommand::SetBudget(b)) if def.budget == *b => Ok(vec![]),
            (Self::Defined(_), TaskCommand::SetBudget(b)) => Ok(vec![TaskEvent::BudgetChanged(*b)]),
        }
    }

    fn evolve(self, event: &TaskEvent) -> Self {
        match (self, event) {
            (_, TaskEvent::Created(def)) => Self::Defined(def.clone()),
            (Self::Defined(mut def), TaskEvent::BudgetChanged(b)) => {
                def.budget = *b;
                Self::Defined(def)
            }
            (state, _) => state,
        }
    }
}
